"""The multi-host harness reads deploy/ as systemd and an operator would."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import Settings
from perf.topology import DEPLOY_DIR, Topology, read_env_file, unit_exec_start

UNIT = (DEPLOY_DIR / "systemd" / "usermgmt.service").read_text()
ENV = (DEPLOY_DIR / "usermgmt.env").read_text()


def test_an_environment_file_is_read_like_systemd_does() -> None:
    env = read_env_file("# comment\n; also a comment\n\nA=1\nB = two words \nC=\"quoted value\"\nD='x'\n")
    assert env == {"A": "1", "B": "two words", "C": "quoted value", "D": "x"}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        read_env_file("not an assignment\n")


def test_exec_start_splits_dollar_variables_into_words_and_keeps_braced_ones_whole() -> None:
    unit = "[Service]\nExecStart=/bin/x serve $ARGS --name=${NAME} $MISSING\n"
    assert unit_exec_start(unit, {"ARGS": "--bind 1.2.3.4:8000  --workers 2", "NAME": "a b"}) == [
        "/bin/x", "serve", "--bind", "1.2.3.4:8000", "--workers", "2", "--name=a b"]


def test_the_deployed_environment_is_a_valid_configuration_of_the_service() -> None:
    env = read_env_file(ENV)
    settings = Settings.from_env(env)
    assert settings.database_url and settings.trusted_proxies
    assert [str(n) for n in settings.trusted_proxies] == ["192.0.2.10/32"]
    argv = unit_exec_start(UNIT, env)
    assert argv[1:] == ["serve", "--bind", "192.0.2.11:8000", "--workers", "2"]


def test_a_hosts_settings_are_the_deployed_ones_with_its_own_addresses(tmp_path: Path) -> None:
    topology = Topology(tmp_path)
    settings = topology.host_settings("h2")
    text = "\n".join(settings.values())
    assert "192.0.2." not in text and "change-me" not in text
    net = topology.network
    assert settings["SERVE_ARGS"] == f"--bind {net.address('h2')}:8000 --workers 2"
    assert settings["USERMGMT_TRUSTED_PROXIES"] == net.address("lb")
    assert settings["USERMGMT_METRICS_BIND"] == f"{net.address('h2')}:9100"
    assert settings["DATABASE_URL"] == topology.database.url()
    assert settings["USERMGMT_DATA_DIR"] == str(tmp_path / "h2")
