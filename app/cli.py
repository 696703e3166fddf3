"""The ``usermgmt`` command: serve, migrate, create-admin, chaos.

Nothing this module imports at the top may import prometheus_client: in
multiprocess mode the metrics directory must be set first (see
:func:`prepare_metrics_dir`).

``usermgmt serve`` is the one-command way to run the service: with no
``DATABASE_URL`` it starts the embedded PostgreSQL under
``USERMGMT_DATA_DIR``, applies migrations, runs gunicorn until SIGTERM or
Ctrl-C, and stops the database again.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.config import ConfigError, Settings
from app.embedded_db import DataDirInUse, EmbeddedPostgres, EmbeddedPostgresError
from app.logs import configure_logging
from app.migrations import apply_migrations

__all__ = ["main"]

logger = logging.getLogger("usermgmt")

DEFAULT_BIND = "127.0.0.1:8000"


def _bind(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return value


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="usermgmt", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP API under gunicorn")
    serve.add_argument("--bind", type=_bind, default=DEFAULT_BIND,
                       help=f"HOST:PORT to listen on (default {DEFAULT_BIND})")
    serve.add_argument("--workers", type=_positive, default=os.cpu_count() or 1,
                       help="worker processes (default: CPU count)")
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
                       choices=["db_worker", "cache", "listener", "supervisor", "any"])
    chaos.add_argument("--every", type=float, default=1.0, help="seconds between kills")
    chaos.add_argument("--jitter", type=float, default=0.3,
                       help="relative jitter of the interval (0.3 = ±30%%)")
    chaos.add_argument("--duration", type=float, default=10.0, help="seconds to run")
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


def serve(args: argparse.Namespace, settings: Settings) -> int:
    if settings.metrics_bind is not None and (
            settings.metrics_bind.rpartition(":")[2] == args.bind.rpartition(":")[2]):
        # The app tells the listeners apart by port alone.
        print("usermgmt: configuration error: USERMGMT_METRICS_BIND must use another port "
              f"than --bind ({args.bind})", file=sys.stderr)
        return 2
    prepare_metrics_dir(settings.data_dir)
    from app import gunicorn_conf

    url, embedded = _database(settings)
    try:
        apply_migrations(url, connect_timeout=settings.db_connect_timeout)
        # Workers inherit the environment: same database, no second migration run.
        os.environ["DATABASE_URL"] = url
        os.environ["USERMGMT_MIGRATE_ON_START"] = "0"
        binds = [args.bind]
        if settings.metrics_bind is not None:
            # /metrics answers only on this second listener (see app.auth).
            binds.append(settings.metrics_bind)
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
            **gunicorn_conf.hooks(),
        }
        _Gunicorn(options).run()
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    finally:
        if embedded is not None:
            embedded.stop()
            logger.info("embedded PostgreSQL stopped", extra={"event": "embedded_db_stopped"})
    return 0


def migrate(settings: Settings) -> int:
    url, embedded = _database(settings)
    try:
        applied = apply_migrations(url, connect_timeout=settings.db_connect_timeout)
    finally:
        if embedded is not None:
            embedded.stop()
    print(f"applied {len(applied)} migration(s)" + (f": {applied}" if applied else ""))
    return 0


def create_admin(args: argparse.Namespace, settings: Settings) -> int:
    import psycopg

    from app.bootstrap import AdminExists, create_admin, explain, read_password
    from app.validation import ValidationFailed

    try:
        password = read_password()
    except (ValueError, EOFError) as exc:
        print(f"usermgmt: {exc}", file=sys.stderr)
        return 2
    try:
        url, embedded = _database(settings)
    except DataDirInUse:
        # `usermgmt serve` owns the embedded server: use it where it runs.
        url, embedded = EmbeddedPostgres(settings.data_dir).url(), None
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
        print(f"usermgmt: not created: database error: {exc}", file=sys.stderr)
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
    except ConfigError as exc:
        print(f"usermgmt: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    try:
        if args.command == "serve":
            return serve(args, settings)
        if args.command == "migrate":
            return migrate(settings)
        if args.command == "create-admin":
            return create_admin(args, settings)
        if args.command == "chaos":
            return chaos(args, settings)
    except EmbeddedPostgresError as exc:
        print(f"usermgmt: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    raise AssertionError(f"unknown command {args.command}")  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
