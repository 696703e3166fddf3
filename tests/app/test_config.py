"""Settings from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import ConfigError, Settings


def test_defaults_use_the_embedded_database_under_var() -> None:
    settings = Settings.from_env({})
    assert settings.database_url is None
    assert settings.data_dir == Path("var")
    assert settings.db_workers == 4


def test_every_setting_is_read() -> None:
    settings = Settings.from_env({
        "DATABASE_URL": "postgresql://x/y",
        "USERMGMT_DATA_DIR": "/tmp/d",
        "USERMGMT_DB_WORKERS": "8",
        "USERMGMT_DB_CHECKOUT_TIMEOUT": "0.25",
        "USERMGMT_STATEMENT_TIMEOUT": "3",
        "USERMGMT_LOG_LEVEL": "debug",
        "USERMGMT_MIGRATE_ON_START": "false",
    })
    assert settings.database_url == "postgresql://x/y"
    assert settings.data_dir == Path("/tmp/d")
    assert settings.db_workers == 8
    assert settings.db_checkout_timeout == 0.25
    assert settings.statement_timeout == 3.0
    assert settings.log_level == "DEBUG"
    assert settings.migrate_on_start is False


@pytest.mark.parametrize(("name", "value"), [
    ("USERMGMT_DB_WORKERS", "0"), ("USERMGMT_DB_WORKERS", "many"),
    ("USERMGMT_DB_CHECKOUT_TIMEOUT", "-1"), ("USERMGMT_LOG_LEVEL", "LOUD"),
    ("USERMGMT_MIGRATE_ON_START", "maybe"),
])
def test_unusable_values_are_refused_with_the_variable_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_authentication_settings_have_safe_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.session_ttl == 86_400
    assert (settings.login_rate_limit, settings.login_rate_window) == (5, 60.0)
    assert settings.metrics_bind is None
    assert settings.dashboard_dir is None


@pytest.mark.parametrize(("raw", "expected"), [("5", (5, 60.0)), ("10/30", (10, 30.0)),
                                               (" 3/0.5 ", (3, 0.5))])
def test_the_login_rate_limit_is_n_or_n_per_seconds(raw: str, expected: tuple[int, float]) -> None:
    settings = Settings.from_env({"USERMGMT_LOGIN_RATE_LIMIT": raw})
    assert (settings.login_rate_limit, settings.login_rate_window) == expected


@pytest.mark.parametrize(("name", "value"), [
    ("USERMGMT_LOGIN_RATE_LIMIT", "many"), ("USERMGMT_LOGIN_RATE_LIMIT", "0"),
    ("USERMGMT_LOGIN_RATE_LIMIT", "5/0"), ("USERMGMT_SESSION_TTL", "0"),
    ("USERMGMT_METRICS_BIND", "9100"), ("USERMGMT_METRICS_BIND", "127.0.0.1:http"),
])
def test_unusable_authentication_settings_are_refused(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_the_metrics_bind_and_session_lifetime_are_read() -> None:
    settings = Settings.from_env({"USERMGMT_METRICS_BIND": "127.0.0.1:9100",
                                  "USERMGMT_SESSION_TTL": "3600"})
    assert settings.metrics_bind == "127.0.0.1:9100" and settings.session_ttl == 3600


def test_the_dashboard_directory_is_read() -> None:
    settings = Settings.from_env({"USERMGMT_DASHBOARD_DIR": "/srv/usermgmt/dashboard"})
    assert settings.dashboard_dir == Path("/srv/usermgmt/dashboard")
