"""Settings from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import BOUNDS, LOGIN_RATE_WINDOW, Bounds, ConfigError, Settings


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


# -- ranges: every numeric setting has one, and nan/inf are never in it -------------

NUMERIC = {
    # name: (a valid value, its parsed value)
    "USERMGMT_DB_WORKERS": ("8", 8),
    "USERMGMT_DB_CHECKOUT_TIMEOUT": ("0.25", 0.25),
    "USERMGMT_DB_CONNECT_TIMEOUT": ("2", 2.0),
    "USERMGMT_STATEMENT_TIMEOUT": ("3", 3.0),
    "USERMGMT_REQUEST_TIMEOUT": ("20", 20.0),
    "USERMGMT_HEADER_TIMEOUT": ("5", 5.0),
    "USERMGMT_BODY_TIMEOUT": ("30", 30.0),
    "USERMGMT_RETRY_AFTER": ("5", 5),
    "USERMGMT_QUEUE_TARGET": ("0.1", 0.1),
    "USERMGMT_QUEUE_INTERVAL": ("2", 2.0),
    "USERMGMT_CACHE_TTL": ("30", 30.0),
    "USERMGMT_CACHE_MAX_ENTRIES": ("1000", 1000),
    "USERMGMT_SESSION_TTL": ("3600", 3600.0),
    "USERMGMT_LOGIN_RATE_LIMIT": ("7", 7),
    "USERMGMT_LOGIN_SUCCESS_LIMIT": ("12", 12),
    "USERMGMT_MAX_SESSIONS": ("3", 3),
    "USERMGMT_KNOWN_ADDRESS_TTL": ("3600", 3600.0),
}
FIELDS = {
    "USERMGMT_DB_WORKERS": "db_workers", "USERMGMT_DB_CHECKOUT_TIMEOUT": "db_checkout_timeout",
    "USERMGMT_DB_CONNECT_TIMEOUT": "db_connect_timeout",
    "USERMGMT_STATEMENT_TIMEOUT": "statement_timeout", "USERMGMT_REQUEST_TIMEOUT": "request_timeout",
    "USERMGMT_HEADER_TIMEOUT": "header_timeout", "USERMGMT_BODY_TIMEOUT": "body_timeout",
    "USERMGMT_RETRY_AFTER": "retry_after", "USERMGMT_QUEUE_TARGET": "queue_target",
    "USERMGMT_QUEUE_INTERVAL": "queue_interval", "USERMGMT_CACHE_TTL": "cache_ttl",
    "USERMGMT_CACHE_MAX_ENTRIES": "cache_max_entries", "USERMGMT_SESSION_TTL": "session_ttl",
    "USERMGMT_LOGIN_RATE_LIMIT": "login_rate_limit",
    "USERMGMT_LOGIN_SUCCESS_LIMIT": "login_success_limit",
    "USERMGMT_MAX_SESSIONS": "max_sessions", "USERMGMT_KNOWN_ADDRESS_TTL": "known_address_ttl",
}


def _unusable(bounds: Bounds) -> list[str]:
    """Values no numeric setting may take: just outside its range, not finite, not numbers."""
    below = bounds.low / 2 if bounds.low < 1 else bounds.low - 1
    return [repr(below), repr(bounds.high * 2), "nan", "NaN", "inf", "-inf", "Infinity",
            "1e400", "1e12", "ten"]


def test_every_numeric_setting_has_a_range_and_a_row_in_this_table() -> None:
    assert set(NUMERIC) == set(BOUNDS)


@pytest.mark.parametrize(("name", "value"), [
    (name, value) for name, bounds in BOUNDS.items() for value in _unusable(bounds)
])
def test_a_number_outside_its_range_nan_or_inf_is_refused_naming_the_range(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name) as refused:
        Settings.from_env({name: value})
    message = str(refused.value)
    assert BOUNDS[name].describe() in message and "\n" not in message


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_each_end_of_a_range_is_accepted(name: str) -> None:
    field_name = FIELDS[name]
    for end in (BOUNDS[name].low, BOUNDS[name].high):
        raw = str(int(end)) if end == int(end) else repr(end)
        assert getattr(Settings.from_env({name: raw}), field_name) == end
    raw, parsed = NUMERIC[name]
    assert getattr(Settings.from_env({name: raw}), field_name) == parsed


@pytest.mark.parametrize("window", ["nan", "inf", "0", "-1", "1e400", "86401"])
def test_the_login_rate_window_has_a_range_too(window: str) -> None:
    with pytest.raises(ConfigError, match=r"USERMGMT_LOGIN_RATE_LIMIT.*SECONDS from 0\.001 to 86,400"):
        Settings.from_env({"USERMGMT_LOGIN_RATE_LIMIT": f"5/{window}"})


def test_the_readme_states_every_range() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    rows = {line.split("`")[1]: line for line in readme.splitlines()
            if line.startswith("| `") and "`" in line[3:]}
    for name, bounds in BOUNDS.items():
        assert bounds.describe() in rows[name], name
    assert f"SECONDS {LOGIN_RATE_WINDOW.describe()}" in rows["USERMGMT_LOGIN_RATE_LIMIT"]


def test_the_readme_states_every_default_the_settings_have() -> None:
    """The defaults are defined once (Settings); the README's table must agree."""
    from app.config import _VARIABLES

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    defaults = {line.split("`")[1]: line.split("|")[2].strip().strip("`")
                for line in readme.splitlines() if line.startswith("| `USERMGMT_")}
    settings = Settings()
    for variable, field, _ in _VARIABLES:
        value = getattr(settings, field)
        stated = defaults[variable]
        if isinstance(value, bool):
            assert stated == ("1" if value else "0"), variable
        else:
            assert float(stated.replace(",", "")) == value, variable


@pytest.mark.parametrize("url", ["garbage", "postgresql://x/y?frobnicate=1", "host=x port"])
def test_a_malformed_database_url_is_refused_without_repeating_it(url: str) -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL") as refused:
        Settings.from_env({"DATABASE_URL": url})
    assert "\n" not in str(refused.value)


def test_a_database_url_with_a_password_never_echoes_it() -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"DATABASE_URL": "postgresql://u:s3cret@h/db?frobnicate=1"})
    assert "s3cret" not in str(refused.value)


def test_trusted_proxies_are_addresses_or_networks_and_none_by_default() -> None:
    assert Settings.from_env({}).trusted_proxies == ()
    settings = Settings.from_env({"USERMGMT_TRUSTED_PROXIES": " 10.0.0.10, 10.1.0.0/16,,2001:db8::/32 "})
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.10/32", "10.1.0.0/16", "2001:db8::/32"]


@pytest.mark.parametrize("value", ["10.0.0.300", "proxy.example.com", "10.0.0.0/33"])
def test_an_unusable_trusted_proxy_is_refused_with_the_variable_named(value: str) -> None:
    with pytest.raises(ConfigError, match="USERMGMT_TRUSTED_PROXIES"):
        Settings.from_env({"USERMGMT_TRUSTED_PROXIES": f"10.0.0.1, {value}"})
