"""The ``usermgmt`` command: serve, migrate, create-admin, chaos.

Nothing this module imports at the top may import prometheus_client: in
multiprocess mode the metrics directory must be set first (see
:func:`prepare_metrics_dir`).

``usermgmt serve`` is the one-command way to run the service: with no
``DATABASE_URL`` it starts the embedded PostgreSQL under
``USERMGMT_DATA_DIR``, applies migrations, runs gunicorn until SIGTERM or
Ctrl-C, and stops the database again.

Whatever stops a command before it runs — a setting it cannot use, a port
in use, a database it cannot reach or use — is one line on stderr,
``usermgmt: ...``, and exit status 2 (configuration) or 1 (anything
else); never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg

from app.config import Bounds, ConfigError, Settings, one_line
from app.embedded_db import DataDirInUse, EmbeddedPostgres, EmbeddedPostgresError
from app.logs import configure_logging
from app.migrations import apply_migrations
from app.tree import CHAOS_KINDS

__all__ = ["CannotStart", "main"]

logger = logging.getLogger("usermgmt")

DEFAULT_BIND = "127.0.0.1:8000"
# Far beyond what one host serves well; what matters is that a typo (an
# extra zero) is refused instead of forking thousands of processes.
WORKERS = Bounds(1, 256)


class CannotStart(RuntimeError):
    """Something outside the configuration keeps a command from starting (exit status 1)."""


def _bind(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return value


def _number_in(bounds: Bounds, integer: bool = False) -> Callable[[str], float]:
    """An argparse type: a number (or an integer) within ``bounds``."""

    def parse(value: str) -> float:
        try:
            number: float = int(value) if integer else float(value)
        except ValueError:
            number = math.nan
        if not bounds.contains(number):
            kind = "an integer" if integer else "a number"
            raise argparse.ArgumentTypeError(f"expected {kind} {bounds.describe()}, got {value!r}")
        return number

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="usermgmt", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP API under gunicorn")
    serve.add_argument("--bind", type=_bind, default=DEFAULT_BIND,
                       help=f"HOST:PORT to listen on (default {DEFAULT_BIND})")
    serve.add_argument("--workers", type=_number_in(WORKERS, integer=True),
                       default=os.cpu_count() or 1,
                       help=f"worker processes, {WORKERS.describe()} (default: CPU count)")
    commands.add_parser("migrate", help="apply pending database migrations and exit")
    admin = commands.add_parser(
        "create-admin", help="create an admin (password from a prompt, or stdin if not a TTY)")
    admin.add_argument("--email", required=True, help="the admin's email (its login)")
    admin.add_argument("--name", required=True, help="the admin's name")
    chaos = commands.add_parser(
        "chaos", help="kill actors at random in a running server (USERMGMT_CHAOS=1)")
    chaos.add_argument("--target", default="http://127.0.0.1:8000",
                       help="base URL of the server (default http://127.0.0.1:8000)")
    chaos.add_argument("--kind", default="any",
                       choices=CHAOS_KINDS)
    chaos.add_argument("--every", type=_number_in(Bounds(0.001, 3600)), default=1.0,
                       help="seconds between kills")
    chaos.add_argument("--jitter", type=_number_in(Bounds(0, 1)), default=0.3,
                       help="relative jitter of the interval (0.3 = ±30%%)")
    chaos.add_argument("--duration", type=_number_in(Bounds(0.001, 86_400)), default=10.0,
                       help="seconds to run")
    chaos.add_argument("--token", help="bearer token sent with each kill")
    chaos.add_argument("--kill-db-connections", action="store_true",
                       help="instead: terminate every PostgreSQL backend of the service")
    return parser


class _Gunicorn:
    """Runs gunicorn in this process with settings given as a dict."""

    def __init__(self, options: dict[str, Any]) -> None:
        from gunicorn.app.base import BaseApplication

        class Application(BaseApplication):  # type: ignore[misc]
            def load_config(self) -> None:
                for key, value in options.items():
                    self.cfg.set(key, value)

            def load(self) -> Any:
                from app.asgi import get_app

                return get_app()

        self._app = Application()

    def run(self) -> None:
        self._app.run()


def _database(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    if settings.database_url:
        return settings.database_url, None
    embedded = EmbeddedPostgres(settings.data_dir)
    url = embedded.start()
    logger.info("embedded PostgreSQL running in %s", embedded.pgdata,
                extra={"event": "embedded_db_started"})
    return url, embedded


def check_binds_free(binds: Sequence[str]) -> None:
    """Fail now, before any database starts, if an address cannot be listened on.

    Binds the way gunicorn will (``SO_REUSEADDR``, IPv6 for an IPv6
    literal), then lets go at once.

    Raises:
        ConfigError: if a host name does not resolve.
        CannotStart: if the address is in use or not this host's.
    """
    from gunicorn.util import is_ipv6, parse_address

    for bind in binds:
        host, port = parse_address(bind)
        with socket.socket(socket.AF_INET6 if is_ipv6(host) else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except socket.gaierror as exc:
                raise ConfigError(f"cannot listen on {bind}: {exc.strerror}") from None
            except OSError as exc:
                raise CannotStart(f"cannot listen on {bind}: {exc.strerror}") from None


def check_connection_budget(url: str, workers: int, settings: Settings) -> None:
    """Refuse more connections than the database allows, and warn when a reload would.

    Raises:
        ConfigError: if ``workers`` processes would need more connections
            than ``max_connections`` less the reserved ones.
        psycopg.Error: if the database cannot be asked.
    """
    with psycopg.connect(url, autocommit=True, application_name="usermgmt-serve",
                         connect_timeout=max(1, int(settings.db_connect_timeout))) as conn:
        row = conn.execute(
            "SELECT current_setting('max_connections')::int,"
            " current_setting('superuser_reserved_connections')::int,"
            # reserved_connections is new in PostgreSQL 16.
            " coalesce(current_setting('reserved_connections', true)::int, 0)"
        ).fetchone()
    assert row is not None
    limit, reserved = row[0], row[1] + row[2]
    available = limit - reserved
    per_process = settings.connections_per_process()
    needed = workers * per_process
    listener = " + 1 change listener" if settings.listens else ""
    if needed > available:
        raise ConfigError(
            f"{workers} worker processes x ({settings.db_workers} USERMGMT_DB_WORKERS + 1 spare"
            f"{listener}) = {needed} database connections, but the database allows "
            f"{available} (max_connections {limit} less {reserved} reserved): lower "
            "USERMGMT_DB_WORKERS or --workers")
    if 2 * needed > available:
        logger.warning(
            "a HUP reload runs old and new workers side by side for a moment and would need "
            "up to %d database connections of the %d allowed", 2 * needed, available,
            extra={"event": "connection_budget_tight"})


def prepare_metrics_dir(data_dir: Path) -> Path:
    """Create and empty the multiprocess metrics directory.

    ``PROMETHEUS_MULTIPROC_DIR`` if set, else ``<data dir>/prometheus``.
    Must run before anything imports prometheus_client: the client picks
    its storage when it is first imported, and workers inherit that.
    Only the client's ``*.db`` files are removed, never anything else.
    """
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    directory = Path(configured) if configured else (data_dir / "prometheus").resolve()
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    return directory


def prepare_dashboard_dir(data_dir: Path) -> Path:
    """Create and empty the directory where workers publish dashboard snapshots.

    ``USERMGMT_DASHBOARD_DIR`` if set, else ``<data dir>/dashboard``, beside
    the metrics directory; workers inherit the variable. Only the files the
    dashboard writes are removed.
    """
    from app.dashboard.board import clear_board

    configured = os.environ.get("USERMGMT_DASHBOARD_DIR")
    directory = Path(configured) if configured else (data_dir / "dashboard").resolve()
    clear_board(directory)
    os.environ["USERMGMT_DASHBOARD_DIR"] = str(directory)
    return directory


def serve(args: argparse.Namespace, settings: Settings) -> int:
    binds = [args.bind]
    if settings.metrics_bind is not None:
        if settings.metrics_bind.rpartition(":")[2] == args.bind.rpartition(":")[2]:
            # The app tells the listeners apart by port alone.
            raise ConfigError(
                f"USERMGMT_METRICS_BIND must use another port than --bind ({args.bind})")
        # /metrics answers only on this second listener (see app.auth).
        binds.append(settings.metrics_bind)
    check_binds_free(binds)
    try:
        prepare_metrics_dir(settings.data_dir)
    except OSError as exc:
        raise CannotStart(f"cannot prepare the metrics directory {exc.filename}: "
                          f"{exc.strerror}") from None
    try:
        prepare_dashboard_dir(settings.data_dir)
    except OSError as exc:
        raise CannotStart(f"cannot prepare the dashboard directory {exc.filename}: "
                          f"{exc.strerror}") from None
    from app import gunicorn_conf

    # gunicorn forks its workers from inside run() below, so every worker
    # that exits (SIGTERM, a timeout's SIGABRT, a HUP reload, a root
    # supervisor's give-up) unwinds through this function too. Only this
    # process, the master, may stop the database, and only once gunicorn
    # has stopped every worker.
    master_pid = os.getpid()
    url, embedded = _database(settings)
    try:
        apply_migrations(url, connect_timeout=settings.db_connect_timeout)
        check_connection_budget(url, args.workers, settings)
        # Workers inherit the environment: same database, no second migration run.
        os.environ["DATABASE_URL"] = url
        os.environ["USERMGMT_MIGRATE_ON_START"] = "0"
        options: dict[str, Any] = {
            "bind": binds,
            "workers": args.workers,
            "worker_class": gunicorn_conf.worker_class,
            "graceful_timeout": gunicorn_conf.graceful_timeout,
            "keepalive": gunicorn_conf.keepalive,
            "timeout": max(30, int(settings.request_timeout * 3)),
            "preload_app": False,
            "proc_name": "usermgmt",
            "loglevel": settings.log_level.lower(),
            "limit_request_line": gunicorn_conf.limit_request_line,
            "limit_request_fields": gunicorn_conf.limit_request_fields,
            "limit_request_field_size": gunicorn_conf.limit_request_field_size,
            **gunicorn_conf.control_socket_settings(),
            **gunicorn_conf.hooks(),
        }
        _Gunicorn(options).run()
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    finally:
        if embedded is not None and os.getpid() == master_pid:
            embedded.stop()
            logger.info("embedded PostgreSQL stopped", extra={"event": "embedded_db_stopped"})
    return 0


def _database_beside_serve(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """Like :func:`_database`, but when ``usermgmt serve`` owns the embedded
    server, use it where it runs (and leave it running)."""
    try:
        return _database(settings)
    except DataDirInUse:
        return EmbeddedPostgres(settings.data_dir).url(), None


def migrate(settings: Settings) -> int:
    url, embedded = _database_beside_serve(settings)
    try:
        applied = apply_migrations(url, connect_timeout=settings.db_connect_timeout)
    finally:
        if embedded is not None:
            embedded.stop()
    print(f"applied {len(applied)} migration(s)" + (f": {applied}" if applied else ""))
    return 0


def create_admin(args: argparse.Namespace, settings: Settings) -> int:
    from app.bootstrap import AdminExists, create_admin, explain, read_password
    from app.validation import ValidationFailed

    try:
        password = read_password()
    except (ValueError, EOFError) as exc:
        print(f"usermgmt: {exc}", file=sys.stderr)
        return 2
    url, embedded = _database_beside_serve(settings)
    try:
        apply_migrations(url, connect_timeout=settings.db_connect_timeout)
        user_id = create_admin(url, args.email, args.name, password)
    except ValidationFailed as exc:
        print(f"usermgmt: not created:\n{explain(exc)}", file=sys.stderr)
        return 2
    except AdminExists as exc:
        print(f"usermgmt: not created: {exc}", file=sys.stderr)
        return 1
    except psycopg.Error as exc:
        print(f"usermgmt: not created: database error: {one_line(exc)}", file=sys.stderr)
        return 1
    finally:
        if embedded is not None:
            embedded.stop()
    print(f"created admin {args.email} (id {user_id})")
    return 0


def chaos(args: argparse.Namespace, settings: Settings) -> int:
    from app.chaos import kill_db_connections, run_chaos

    if args.kill_db_connections:
        url = settings.database_url or EmbeddedPostgres(settings.data_dir).url()
        count = kill_db_connections(url, settings.application_name)
        print(f"terminated {count} backend(s) of {settings.application_name}")
        return 0

    def report(kill: dict[str, str]) -> None:
        print(f"killed {kill['killed']} ({kill['kind']}) in worker {kill['pid']}", flush=True)

    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    try:
        result = run_chaos(args.target, kind=args.kind, every=args.every, jitter=args.jitter,
                           duration=args.duration, headers=headers, on_kill=report)
    except RuntimeError as exc:
        print(f"usermgmt: {exc}", file=sys.stderr)
        return 1
    print(f"{result.kills} kill(s), {result.refused} refused, {len(result.errors)} error(s)")
    return 0 if not result.errors else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``usermgmt`` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        configure_logging(settings.log_level)
        if args.command == "serve":
            return serve(args, settings)
        if args.command == "migrate":
            return migrate(settings)
        if args.command == "create-admin":
            return create_admin(args, settings)
        if args.command == "chaos":
            return chaos(args, settings)
    except ConfigError as exc:
        print(f"usermgmt: configuration error: {exc}", file=sys.stderr)
        return 2
    except (EmbeddedPostgresError, CannotStart) as exc:
        print(f"usermgmt: {exc}", file=sys.stderr)
        return 1
    except psycopg.Error as exc:
        # libpq's messages name host, port, database and user, never a password.
        print(f"usermgmt: database error: {one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    raise AssertionError(f"unknown command {args.command}")  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
