"""The embedded PostgreSQL: a real server from the ``pgserver`` wheel.

With no ``DATABASE_URL``, ``usermgmt serve`` runs PostgreSQL from the
binaries that ship inside the ``pgserver`` package, with its cluster under
``USERMGMT_DATA_DIR/pgdata``. The server listens only on a Unix socket in
the data directory (no TCP port to collide with), keeps its data across
restarts and is stopped by whoever started it.

One process at a time owns a data directory: :meth:`EmbeddedPostgres.start`
takes an exclusive ``flock`` on ``USERMGMT_DATA_DIR/usermgmt.lock`` and
holds it until :meth:`stop`, so a second server on the same directory gets
:class:`DataDirInUse` instead of sharing, or corrupting, the cluster.

Fork-safe: gunicorn forks its workers from inside ``usermgmt serve``, and
each worker inherits this object. Only the process that started the
server stops it; in any other, :meth:`stop` does nothing, and a forked
child lets go of its copy of the lock at once (without unlocking it for
the owner), so a worker that outlives a killed master never keeps the
data directory from the next ``usermgmt serve``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import stat
import subprocess
import tempfile
import warnings
import weakref
from pathlib import Path
from typing import IO

__all__ = ["DataDirInUse", "EmbeddedPostgres", "EmbeddedPostgresError"]

logger = logging.getLogger(__name__)

# PostgreSQL refuses to run as root; when we are root the cluster belongs
# to this unprivileged account (the same one pgserver itself uses).
SYSTEM_USER = "pgserver"
SOCKET_NAME = ".s.PGSQL.5432"
# sun_path is 108 bytes on Linux, including the terminating NUL.
MAX_SOCKET_PATH = 107
START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0


class EmbeddedPostgresError(RuntimeError):
    """The embedded PostgreSQL could not be initialised, started or stopped."""


class DataDirInUse(EmbeddedPostgresError):
    """Another process already runs a server on this data directory."""


# Servers holding their data directory's lock in this process (see
# _let_go_of_locks_after_fork).
_LOCKED: weakref.WeakSet[EmbeddedPostgres] = weakref.WeakSet()


def _let_go_of_locks_after_fork() -> None:
    """In a forked child: close the inherited lock files, keeping the parent's locks."""
    for server in list(_LOCKED):
        server._forget_lock()


os.register_at_fork(after_in_child=_let_go_of_locks_after_fork)


def _bin_dir() -> Path:
    try:
        with warnings.catch_warnings():
            # pgserver looks up an XDG runtime directory we do not use.
            warnings.simplefilter("ignore")
            from pgserver._commands import POSTGRES_BIN_PATH
    except ImportError as exc:  # pragma: no cover - pgserver is a dependency
        raise EmbeddedPostgresError("the pgserver package is not installed") from exc
    return Path(POSTGRES_BIN_PATH)


class EmbeddedPostgres:
    """Owns one PostgreSQL cluster in ``data_dir/pgdata``.

    Not thread-safe; meant for the process that serves (or tests) and
    nothing else. Use as a context manager or call :meth:`start` and
    :meth:`stop`.
    """

    def __init__(self, data_dir: Path | str) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.log_file = self.data_dir / "postgresql.log"
        self._lock_file: IO[str] | None = None
        # The process that started the server: the only one that stops it.
        self._owner_pid: int | None = None
        self._as_user = SYSTEM_USER if os.geteuid() == 0 else None

    # -- public ---------------------------------------------------------

    @property
    def socket_dir(self) -> Path:
        """Directory holding the server's Unix socket."""
        if len(str(self.pgdata / SOCKET_NAME)) <= MAX_SOCKET_PATH:
            return self.pgdata
        digest = hashlib.sha256(str(self.pgdata).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"usermgmt-{digest}"

    def url(self, dbname: str = "postgres") -> str:
        """A libpq connection string for the running server."""
        return f"postgresql://postgres@/{dbname}?host={self.socket_dir}"

    def start(self) -> str:
        """Lock the data directory, create the cluster if new, start it.

        Returns:
            The connection URL.

        Raises:
            DataDirInUse: if another process holds the data directory.
            EmbeddedPostgresError: if initdb or the server fails.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._acquire_lock()
        try:
            self._ensure_cluster()
            if not self.is_running():
                self._pg_ctl_start()
        except BaseException:
            self._release_lock()
            raise
        self._owner_pid = os.getpid()
        return self.url()

    def stop(self) -> None:
        """Stop the server (fast shutdown) and release the data directory.

        Does nothing unless this process started the server: a forked
        worker that inherited this object must never stop the database
        that its siblings and its master still use.
        """
        if self._owner_pid != os.getpid():
            return
        self._owner_pid = None
        try:
            if self.is_running():
                self.stop_server()
        finally:
            self._release_lock()

    def stop_server(self) -> None:
        """Stop PostgreSQL but keep holding the data directory.

        Used by fault-injection tests that stop and restart the database
        under a running service.
        """
        self._pg_ctl(["stop", "-m", "fast", "-w", "-t", str(int(STOP_TIMEOUT))])

    def start_server(self) -> None:
        """Start PostgreSQL again after :meth:`stop_server`."""
        if not self.is_running():
            self._pg_ctl_start()

    def is_running(self) -> bool:
        """Whether a postmaster runs on this cluster (``pg_ctl status``)."""
        if not (self.pgdata / "PG_VERSION").exists():
            return False
        result = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [str(_bin_dir() / "pg_ctl"), "-D", str(self.pgdata), "status"],
            capture_output=True,
            text=True,
            check=False,
            user=self._as_user,
        )
        return result.returncode == 0

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- internals ------------------------------------------------------

    def _acquire_lock(self) -> None:
        if self._lock_file is not None:
            return
        lock_file = open(self.data_dir / "usermgmt.lock", "a+")  # noqa: SIM115
        try:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.seek(0)
            holder = lock_file.read().strip() or "another process"
            lock_file.close()
            raise DataDirInUse(
                f"data directory {self.data_dir} is in use by {holder}; "
                "stop that server or set USERMGMT_DATA_DIR to another directory"
            ) from None
        lock_file.seek(0)
        lock_file.truncate()
        lock_file.write(f"pid {os.getpid()}\n")
        lock_file.flush()
        self._lock_file = lock_file
        _LOCKED.add(self)

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
        self._forget_lock()

    def _forget_lock(self) -> None:
        # Closing a descriptor does not release a flock that another
        # (the parent's) still holds; LOCK_UN would, for every holder.
        _LOCKED.discard(self)
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _ensure_cluster(self) -> None:
        self.pgdata.mkdir(exist_ok=True)
        self._grant_access()
        if (self.pgdata / "PG_VERSION").exists():
            return
        logger.info("initialising embedded PostgreSQL cluster in %s", self.pgdata)
        self._run(
            [
                str(_bin_dir() / "initdb"),
                "-D",
                str(self.pgdata),
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "-U",
                "postgres",
            ]
        )

    def _grant_access(self) -> None:
        if self._as_user is None:
            return
        import pwd

        try:
            entry = pwd.getpwnam(self._as_user)
        except KeyError:
            subprocess.run(  # noqa: S603 - fixed argv
                ["/usr/sbin/useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin",
                 self._as_user],
                check=True,
                capture_output=True,
            )
            entry = pwd.getpwnam(self._as_user)
        # The unprivileged server must be able to reach its directory, its
        # binaries and its socket directory.
        for path in (self.data_dir, _bin_dir().parent):
            for parent in [path, *path.parents]:
                mode = parent.stat().st_mode
                wanted = mode | stat.S_IXOTH | stat.S_IXGRP
                if wanted != mode:
                    parent.chmod(wanted)
        for path in (self.pgdata, self.data_dir / "postgresql.log"):
            if not path.exists():
                path.touch() if path.suffix == ".log" else path.mkdir()
            if path.stat().st_uid != entry.pw_uid:
                shutil.chown(path, entry.pw_uid, entry.pw_gid)
        self.pgdata.chmod(0o700)

    def _pg_ctl_start(self) -> None:
        socket_dir = self.socket_dir
        socket_dir.mkdir(parents=True, exist_ok=True)
        if self._as_user is not None and socket_dir != self.pgdata:
            socket_dir.chmod(0o1777)
        options = " ".join(
            [
                "-h ''",  # no TCP listener: nothing to collide with
                f"-k {socket_dir}",
                "-c max_connections=200",
                "-c shared_buffers=128MB",
            ]
        )
        self._pg_ctl(
            ["start", "-w", "-t", str(int(START_TIMEOUT)), "-l", str(self.log_file),
             "-o", options]
        )

    def _pg_ctl(self, args: list[str]) -> None:
        self._run([str(_bin_dir() / "pg_ctl"), "-D", str(self.pgdata), *args])

    def _run(self, argv: list[str]) -> None:
        # stdin/stdout to files, not pipes: pg_ctl leaves the postmaster
        # holding inherited pipes, which would hang a capture.
        with tempfile.TemporaryFile("w+") as out:
            result = subprocess.run(  # noqa: S603 - fixed argv, no shell
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                check=False,
                user=self._as_user,
                cwd=str(self.data_dir),
                timeout=START_TIMEOUT + 30,
                start_new_session=True,
            )
            if result.returncode != 0:
                out.seek(0)
                log_tail = ""
                if self.log_file.exists():
                    log_tail = self.log_file.read_text(errors="replace")[-2000:]
                raise EmbeddedPostgresError(
                    f"{Path(argv[0]).name} failed ({result.returncode}): {out.read()}\n{log_tail}"
                )
