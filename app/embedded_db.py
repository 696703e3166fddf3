"""The embedded PostgreSQL: a real server from the ``pgserver`` wheel.

With no ``DATABASE_URL``, ``usermgmt serve`` runs PostgreSQL from the
binaries that ship inside the ``pgserver`` package, with its cluster under
``USERMGMT_DATA_DIR/pgdata``. The server listens only on a Unix socket in
the data directory (no TCP port to collide with), keeps its data across
restarts and is stopped by whoever started it.

Private to its owner: only the operating-system user that runs usermgmt
may connect (peer authentication, mapped to the ``postgres`` role; no
``trust``), and the socket's directory is mode 0700, owned by the
server's account, wherever it lives. As root, the server runs as the
system user ``pgserver`` (PostgreSQL refuses root), which must be able to
reach the data directory and the binaries: when it cannot, start fails
with a message saying what to open; no directory's mode is changed.

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
import pwd
import shutil
import subprocess
import tempfile
import warnings
import weakref
from pathlib import Path
from typing import IO, Any

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


def _run_as(account: pwd.struct_passwd) -> dict[str, Any]:
    """``subprocess`` arguments that run a command as ``account``, with its groups only."""
    return {"user": account.pw_uid, "group": account.pw_gid,
            "extra_groups": os.getgrouplist(account.pw_name, account.pw_gid)}


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

        A server already running on the cluster (left by a ``usermgmt
        serve`` that was killed) is adopted: this object then stops it.

        Returns:
            The connection URL.

        Raises:
            DataDirInUse: if another process holds the data directory.
            EmbeddedPostgresError: if the data directory cannot be used, or
                initdb or the server fails.
        """
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EmbeddedPostgresError(
                f"cannot create the data directory {self.data_dir}: {exc.strerror}") from None
        self._acquire_lock()
        try:
            account = self._server_account()
            self._ensure_cluster(account)
            self._write_authentication()
            self._prepare_socket_dir(account)
            if self.is_running():
                self._pg_ctl(["reload"])  # the authentication files just written
            else:
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
            if self.socket_dir != self.pgdata:
                with contextlib.suppress(OSError):
                    self.socket_dir.rmdir()  # empty once the server is gone
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
            **self._run_as(),
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

    def _run_as(self) -> dict[str, Any]:
        """``subprocess`` arguments that run a command as the server's account."""
        return {} if self._as_user is None else _run_as(pwd.getpwnam(self._as_user))

    def _server_account(self) -> pwd.struct_passwd | None:
        """The account the server runs as when we are root (created if missing)."""
        if self._as_user is None:
            return None
        try:
            account = pwd.getpwnam(self._as_user)
        except KeyError:
            logger.warning(
                "creating the system user %s to run the embedded PostgreSQL "
                "(PostgreSQL refuses to run as root)", self._as_user,
                extra={"event": "system_user_created"})
            subprocess.run(  # noqa: S603 - fixed argv
                ["/usr/sbin/useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin",
                 self._as_user],
                check=True, capture_output=True,
            )
            account = pwd.getpwnam(self._as_user)
        self._check_reachable(account, self.data_dir)
        self._check_reachable(account, _bin_dir())
        return account

    def _check_reachable(self, account: pwd.struct_passwd, target: Path) -> None:
        """Fail, saying what to open, when ``account`` cannot get to ``target``.

        Asked of the system (a shell running as that account), so that
        ACLs and group memberships count as they will for the server.
        """
        ancestors = [str(path) for path in reversed([target, *target.parents])]
        first_closed = 'for d in "$@"; do [ -x "$d" ] || { printf %s "$d"; exit 1; }; done'
        result = subprocess.run(  # noqa: S603 - fixed argv, paths as arguments
            ["/bin/sh", "-c", first_closed, "sh", *ancestors],
            capture_output=True, text=True, check=False, cwd="/", **_run_as(account),
        )
        if result.returncode != 0:
            closed = result.stdout or str(target)
            raise EmbeddedPostgresError(
                f"the embedded PostgreSQL runs as the system user {account.pw_name} (PostgreSQL "
                f"refuses to run as root), which cannot enter {closed} on the way to {target}: "
                f"let it in (for example chmod o+x {closed}), or put USERMGMT_DATA_DIR and "
                "the installation where it can reach them, or run usermgmt as an unprivileged "
                "user, or set DATABASE_URL to another PostgreSQL")

    def _ensure_cluster(self, account: pwd.struct_passwd | None) -> None:
        self.pgdata.mkdir(exist_ok=True)
        if not self.log_file.exists():
            self.log_file.touch()
        # Server messages may quote the rows a statement failed on.
        self.log_file.chmod(0o600)
        if account is not None:
            for path in (self.pgdata, self.log_file):
                if path.stat().st_uid != account.pw_uid:
                    shutil.chown(path, account.pw_uid, account.pw_gid)
        self.pgdata.chmod(0o700)
        if (self.pgdata / "PG_VERSION").exists():
            return
        logger.info("initialising embedded PostgreSQL cluster in %s", self.pgdata)
        self._run(
            [
                str(_bin_dir() / "initdb"),
                "-D",
                str(self.pgdata),
                # Replaced at once by _write_authentication; never trust.
                "--auth-local=peer",
                "--auth-host=reject",
                "--encoding=UTF8",
                "--locale=C",
                "-U",
                "postgres",
            ]
        )

    def _write_authentication(self) -> None:
        """Let only this process's OS user in, as ``postgres``, over the Unix socket.

        Written at every start, so a cluster made before (with ``trust``)
        is closed too.
        """
        try:
            client = pwd.getpwuid(os.geteuid()).pw_name
        except KeyError:
            raise EmbeddedPostgresError(
                f"user id {os.geteuid()} has no name (no passwd entry): the embedded "
                "PostgreSQL authenticates its owner by name; add one or set DATABASE_URL"
            ) from None
        files = {
            "pg_hba.conf": (
                "# Written by usermgmt at every start: only the operating-system user\n"
                "# that runs usermgmt may connect, over the Unix socket (no TCP).\n"
                "local all all peer map=usermgmt\n"
            ),
            "pg_ident.conf": f"# Written by usermgmt at every start.\nusermgmt {client} postgres\n",
        }
        owner = self.pgdata.stat()
        for name, text in files.items():
            path = self.pgdata / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(text)
            os.chown(path, owner.st_uid, owner.st_gid)
            path.chmod(0o600)

    def _prepare_socket_dir(self, account: pwd.struct_passwd | None) -> None:
        """Make the socket's directory private to the server's account (mode 0700)."""
        directory = self.socket_dir
        if directory == self.pgdata:
            return  # 0700, the server's own: PostgreSQL insists on it
        uid, gid = (account.pw_uid, account.pw_gid) if account else (os.geteuid(), os.getegid())
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)
        # In a shared temporary directory: never follow a link, never use a
        # directory someone else made (it could be waiting for our socket).
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            fd = -1
        try:
            found_uid = os.fstat(fd).st_uid if fd >= 0 else None
            if found_uid not in {uid, os.geteuid()}:
                raise EmbeddedPostgresError(
                    f"{directory}, where the embedded PostgreSQL's socket goes (in the data "
                    f"directory its path would be over {MAX_SOCKET_PATH} bytes), is not a "
                    "directory of this service's: remove it, or choose a shorter USERMGMT_DATA_DIR")
            os.fchown(fd, uid, gid)
            os.fchmod(fd, 0o700)
        finally:
            if fd >= 0:
                os.close(fd)

    def _pg_ctl_start(self) -> None:
        options = " ".join(
            [
                "-h ''",  # no TCP listener: nothing to collide with
                f"-k {self.socket_dir}",
                # Only the server's account: root reaches it anyway.
                "-c unix_socket_permissions=0700",
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
        name = Path(argv[0]).name
        command = f"{name} {argv[3]}" if name == "pg_ctl" else name  # pg_ctl -D DIR ACTION
        # stdin/stdout to files, not pipes: pg_ctl leaves the postmaster
        # holding inherited pipes, which would hang a capture.
        with tempfile.TemporaryFile("w+") as out:
            try:
                result = subprocess.run(  # noqa: S603 - fixed argv, no shell
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    text=True,
                    check=False,
                    cwd=str(self.data_dir),
                    timeout=START_TIMEOUT + 30,
                    start_new_session=True,
                    **self._run_as(),
                )
            except subprocess.TimeoutExpired:
                raise EmbeddedPostgresError(
                    f"{command} did not finish within {START_TIMEOUT + 30:.0f} s "
                    f"(see {self.log_file})") from None
            if result.returncode != 0:
                out.seek(0)
                raise EmbeddedPostgresError(
                    f"{command} failed (exit {result.returncode}): {self._explain(out.read())}")

    def _explain(self, output: str) -> str:
        """One line: what the command said last and what the server logged as fatal."""
        said = [line.strip() for line in output.splitlines() if line.strip()]
        parts = [said[-1] if said else "no output"]
        with contextlib.suppress(OSError):
            with self.log_file.open(errors="replace") as log:
                log.seek(max(0, self.log_file.stat().st_size - 8192))
                fatal = [line.strip() for line in log if "FATAL:" in line or "PANIC:" in line]
            if fatal:
                parts.append(f"server: {fatal[-1]}")
        parts.append(f"see {self.log_file}")
        return "; ".join(parts)
