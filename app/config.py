"""Configuration read from the environment, once, into an immutable object.

Every setting has a default that works on a developer's machine with the
embedded PostgreSQL; production sets ``DATABASE_URL`` and sizes the pool.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from actors.cache_table import DEFAULT_MAX_ENTRIES, DEFAULT_TTL
from actors.worker_pool import WorkerPool

__all__ = [
    "BOUNDS",
    "LOGIN_RATE_WINDOW",
    "POOL_SPARE_CONNECTIONS",
    "Bounds",
    "ConfigError",
    "Network",
    "Settings",
    "one_line",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(ValueError):
    """An environment variable holds a value the service cannot use."""


@dataclass(frozen=True, slots=True)
class Bounds:
    """The values a numeric setting may take: ``low`` to ``high`` inclusive, finite."""

    low: float
    high: float

    def describe(self) -> str:
        return f"from {_number(self.low)} to {_number(self.high)}"

    def contains(self, value: float) -> bool:
        # NaN compares false with everything: ask for "inside", never "outside".
        return math.isfinite(value) and self.low <= value <= self.high


def _number(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:g}"


DAY = 86_400
# Every numeric setting and what it may be. The limits are what the
# runtime and PostgreSQL can hold (threading waits, libpq's integer
# seconds, statement_timeout in int milliseconds, timestamps plus
# intervals) and what is sensible; README.md's configuration table states
# the same ranges (a test checks that they agree).
BOUNDS: Mapping[str, Bounds] = {
    "USERMGMT_DB_WORKERS": Bounds(1, 500),
    "USERMGMT_DB_CHECKOUT_TIMEOUT": Bounds(0.001, DAY),
    "USERMGMT_DB_CONNECT_TIMEOUT": Bounds(0.1, DAY),
    "USERMGMT_STATEMENT_TIMEOUT": Bounds(0.01, DAY),
    "USERMGMT_REQUEST_TIMEOUT": Bounds(0.1, DAY),
    "USERMGMT_HEADER_TIMEOUT": Bounds(0.1, DAY),
    "USERMGMT_BODY_TIMEOUT": Bounds(0.1, DAY),
    "USERMGMT_RETRY_AFTER": Bounds(1, DAY),
    "USERMGMT_QUEUE_TARGET": Bounds(0.001, DAY),
    "USERMGMT_QUEUE_INTERVAL": Bounds(0.01, DAY),
    "USERMGMT_CACHE_TTL": Bounds(0.001, DAY),
    "USERMGMT_CACHE_MAX_ENTRIES": Bounds(1, 10_000_000),
    "USERMGMT_SESSION_TTL": Bounds(1, 365 * DAY),
    # N of USERMGMT_LOGIN_RATE_LIMIT's N/SECONDS; SECONDS just below.
    "USERMGMT_LOGIN_RATE_LIMIT": Bounds(1, 1_000_000),
    "USERMGMT_LOGIN_SUCCESS_LIMIT": Bounds(1, 1_000_000),
    "USERMGMT_MAX_SESSIONS": Bounds(1, 10_000),
    "USERMGMT_KNOWN_ADDRESS_TTL": Bounds(1, 365 * DAY),
}
LOGIN_RATE_WINDOW = Bounds(0.001, DAY)

# The connection pool of a worker process holds one more connection than it
# has DbWorkers (app.runtime), so that a replacement DbWorker need not wait
# for its predecessor's broken connection to be discarded.
POOL_SPARE_CONNECTIONS = 1


def _refused(name: str, raw: str, kind: str) -> ConfigError:
    return ConfigError(f"{name} must be {kind} {BOUNDS[name].describe()}, got {raw!r}")


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise _refused(name, raw, "a number") from None
    if not BOUNDS[name].contains(value):
        raise _refused(name, raw, "a number")
    return value


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _refused(name, raw, "an integer") from None
    if not BOUNDS[name].contains(value):
        raise _refused(name, raw, "an integer")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def _rate(env: Mapping[str, str], name: str, default: tuple[int, float]) -> tuple[int, float]:
    """``N`` (per minute) or ``N/SECONDS``: N events per window."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    count, _, window = raw.partition("/")
    try:
        value = (int(count), float(window) if window else 60.0)
    except ValueError:
        value = (0, math.nan)
    if not (BOUNDS[name].contains(value[0]) and LOGIN_RATE_WINDOW.contains(value[1])):
        raise ConfigError(
            f"{name} must be N or N/SECONDS with N {BOUNDS[name].describe()} and SECONDS "
            f"{LOGIN_RATE_WINDOW.describe()}, got {raw!r}")
    return value


def _database_url(env: Mapping[str, str]) -> str | None:
    raw = env.get("DATABASE_URL") or None
    if raw is not None:
        try:
            conninfo_to_dict(raw)
        except psycopg.Error as exc:
            # libpq's message names the bad part, never the password.
            raise ConfigError(
                f"DATABASE_URL is not a PostgreSQL URL or conninfo string: {one_line(exc)}"
            ) from None
    return raw


def one_line(error: BaseException) -> str:
    """An exception's message on one line (libpq's span several)."""
    return "; ".join(part.strip() for part in str(error).splitlines() if part.strip())


def _host_port(env: Mapping[str, str], name: str) -> str | None:
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ConfigError(f"{name} must be HOST:PORT, got {raw!r}")
    return raw


def _networks(env: Mapping[str, str], name: str) -> tuple[Network, ...]:
    """Comma-separated addresses or CIDR networks, IPv4 or IPv6."""
    raw = env.get(name) or ""
    networks = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(
                f"{name} must be comma-separated addresses or networks, got {item!r}") from None
    return tuple(networks)


@dataclass(frozen=True, slots=True)
class Settings:
    """The service's settings; see the configuration table in README.md."""

    database_url: str | None = None
    data_dir: Path = field(default_factory=lambda: Path("var"))
    db_workers: int = 4
    db_checkout_timeout: float = 1.0
    queue_target: float = WorkerPool.DEFAULT_QUEUE_TARGET
    queue_interval: float = WorkerPool.DEFAULT_QUEUE_INTERVAL
    db_connect_timeout: float = 5.0
    statement_timeout: float = 5.0
    request_timeout: float = 10.0
    header_timeout: float = 10.0
    body_timeout: float = 15.0
    retry_after: int = 1
    migrate_on_start: bool = True
    log_level: str = "INFO"
    application_name: str = "usermgmt"
    chaos_enabled: bool = False
    metrics_enabled: bool = True
    access_log: bool = True
    cache_enabled: bool = True
    token_cache_enabled: bool = True
    cache_ttl: float = DEFAULT_TTL
    cache_max_entries: int = DEFAULT_MAX_ENTRIES
    session_ttl: float = 86_400.0
    login_rate_limit: int = 5
    login_rate_window: float = 60.0
    login_success_limit: int = 30
    login_success_window: float = 60.0
    known_address_ttl: float = 30 * 86_400.0
    max_sessions: int = 20
    metrics_bind: str | None = None
    trusted_proxies: tuple[Network, ...] = ()
    dashboard_dir: Path | None = None

    def connections_per_process(self) -> int:
        """Database connections one worker process may hold at once.

        Its DbWorkers, the pool's spare (see :data:`POOL_SPARE_CONNECTIONS`)
        and, with a cache on, the change listener's own connection.
        """
        return self.db_workers + POOL_SPARE_CONNECTIONS + (1 if self.listens else 0)

    @property
    def listens(self) -> bool:
        """Whether worker processes run a change listener (a cache to keep coherent)."""
        return self.cache_enabled or self.token_cache_enabled

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default: ``os.environ``).

        A variable that is unset or empty keeps the field's default: the
        defaults are the class's, and nowhere else.

        Raises:
            ConfigError: if a variable is set to a value that cannot be used.
        """
        env = os.environ if env is None else env
        defaults = cls()
        values: dict[str, Any] = {
            name: parse(env, variable, getattr(defaults, name))
            for variable, name, parse in _VARIABLES
        }
        log_level = env.get("USERMGMT_LOG_LEVEL", "").strip().upper() or defaults.log_level
        if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ConfigError(f"USERMGMT_LOG_LEVEL must be a logging level, got {log_level!r}")
        for variable, (count, window) in (("USERMGMT_LOGIN_RATE_LIMIT",
                                           ("login_rate_limit", "login_rate_window")),
                                          ("USERMGMT_LOGIN_SUCCESS_LIMIT",
                                           ("login_success_limit", "login_success_window"))):
            values[count], values[window] = _rate(
                env, variable, (getattr(defaults, count), getattr(defaults, window)))
        dashboard_dir = env.get("USERMGMT_DASHBOARD_DIR")
        return cls(
            database_url=_database_url(env),
            data_dir=Path(env.get("USERMGMT_DATA_DIR") or defaults.data_dir),
            log_level=log_level,
            application_name=env.get("USERMGMT_APPLICATION_NAME") or defaults.application_name,
            metrics_bind=_host_port(env, "USERMGMT_METRICS_BIND"),
            trusted_proxies=_networks(env, "USERMGMT_TRUSTED_PROXIES"),
            dashboard_dir=Path(dashboard_dir) if dashboard_dir else None,
            **values,
        )


# Every plain setting: its variable, its field, how it is read. The default
# is the field's (Settings above); numbers are checked against BOUNDS.
_VARIABLES: tuple[tuple[str, str, Callable[[Mapping[str, str], str, Any], Any]], ...] = (
    ("USERMGMT_DB_WORKERS", "db_workers", _int),
    ("USERMGMT_DB_CHECKOUT_TIMEOUT", "db_checkout_timeout", _float),
    ("USERMGMT_QUEUE_TARGET", "queue_target", _float),
    ("USERMGMT_QUEUE_INTERVAL", "queue_interval", _float),
    ("USERMGMT_DB_CONNECT_TIMEOUT", "db_connect_timeout", _float),
    ("USERMGMT_STATEMENT_TIMEOUT", "statement_timeout", _float),
    ("USERMGMT_REQUEST_TIMEOUT", "request_timeout", _float),
    ("USERMGMT_HEADER_TIMEOUT", "header_timeout", _float),
    ("USERMGMT_BODY_TIMEOUT", "body_timeout", _float),
    ("USERMGMT_RETRY_AFTER", "retry_after", _int),
    ("USERMGMT_MIGRATE_ON_START", "migrate_on_start", _bool),
    ("USERMGMT_CHAOS", "chaos_enabled", _bool),
    ("USERMGMT_METRICS_ENABLED", "metrics_enabled", _bool),
    ("USERMGMT_ACCESS_LOG", "access_log", _bool),
    ("USERMGMT_CACHE_ENABLED", "cache_enabled", _bool),
    ("USERMGMT_TOKEN_CACHE_ENABLED", "token_cache_enabled", _bool),
    ("USERMGMT_CACHE_TTL", "cache_ttl", _float),
    ("USERMGMT_CACHE_MAX_ENTRIES", "cache_max_entries", _int),
    ("USERMGMT_SESSION_TTL", "session_ttl", _float),
    ("USERMGMT_KNOWN_ADDRESS_TTL", "known_address_ttl", _float),
    ("USERMGMT_MAX_SESSIONS", "max_sessions", _int),
)
