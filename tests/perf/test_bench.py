"""The benchmark runner's choices, without starting anything."""

from __future__ import annotations

import shutil

import pytest

from perf import bench


def test_get_uncached_brings_the_other_random_id_workloads_along() -> None:
    chosen = [w.name for w in bench.select_workloads(["get_cached", "get_uncached"])]

    assert chosen == ["get_cached", "get_uncached", "get_unique", "get_uncached_cache_off"]


def test_the_random_id_workloads_that_need_an_empty_cache_get_a_fresh_service() -> None:
    fresh = {w.name: w.fresh_service for w in bench.WORKLOADS if w.fresh_service is not None}

    assert fresh == {"get_unique": {}, "get_uncached_cache_off": {"USERMGMT_CACHE_ENABLED": "0"}}


def test_without_the_perf_extra_it_says_how_to_install_it(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(bench, "missing_perf_extra", lambda: ["asyncpg", "uvloop"])

    assert bench.main(["--users", "10"]) == 2

    error = capsys.readouterr().err
    assert "asyncpg, uvloop" in error
    assert "pip install -e '.[perf]'" in error
    assert "--no-fastapi" in error


def test_cache_lookups_between_two_readings() -> None:
    assert bench._cache_delta({"hit": 10.0, "miss": 5.0}, {"hit": 40.0, "miss": 15.0}) == (30, 10)
    assert bench._cache_delta({}, {"hit": 3.0}) == (3, 0)
