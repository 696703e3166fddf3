"""ChildSpec and supervisor settings: validation and plain-string values."""

from __future__ import annotations

import pykka
import pytest

from supervisors import (
    Backoff,
    ChildSpec,
    ChildType,
    DynamicSupervisor,
    Restart,
    Strategy,
    Supervisor,
)

from .helpers import Worker


def test_plain_strings_are_accepted_and_normalised_to_enums() -> None:
    spec = ChildSpec(id="w", actor_class=Worker, restart="transient", child_type="worker")

    assert spec.restart is Restart.TRANSIENT
    assert isinstance(spec.restart, str)
    assert spec.restart.value == "transient"
    assert spec.child_type is ChildType.WORKER
    assert Strategy("rest_for_one") is Strategy.REST_FOR_ONE


def test_worker_defaults_to_permanent_with_five_second_shutdown() -> None:
    spec = ChildSpec(id="w", actor_class=Worker)

    assert spec.restart is Restart.PERMANENT
    assert spec.shutdown == 5.0
    assert spec.shutdown_timeout == 5.0
    assert spec.args == ()
    assert dict(spec.kwargs) == {}


@pytest.mark.parametrize("supervisor_class", [Supervisor, DynamicSupervisor])
def test_supervisor_child_is_detected_and_waits_forever_by_default(
    supervisor_class: type[pykka.ThreadingActor],
) -> None:
    spec = ChildSpec(id="sup", actor_class=supervisor_class)

    assert spec.child_type is ChildType.SUPERVISOR
    assert spec.shutdown == "infinity"
    assert spec.shutdown_timeout is None


def test_brutal_kill_is_recognised() -> None:
    spec = ChildSpec(id="w", actor_class=Worker, shutdown="brutal_kill")

    assert spec.brutal_kill
    assert not ChildSpec(id="w", actor_class=Worker, shutdown=1).brutal_kill


def test_kwargs_are_copied_so_later_changes_do_not_leak_into_the_spec() -> None:
    kwargs = {"tag": "a"}
    spec = ChildSpec(id="w", actor_class=Worker, kwargs=kwargs)

    kwargs["tag"] = "b"

    assert spec.kwargs["tag"] == "a"


def test_spec_is_immutable() -> None:
    spec = ChildSpec(id="w", actor_class=Worker)

    with pytest.raises(AttributeError):
        spec.id = "other"  # type: ignore[misc]


@pytest.mark.parametrize("actor_class", [object, "Worker", pykka.Actor])
def test_anything_but_a_threading_actor_class_is_rejected(actor_class: object) -> None:
    with pytest.raises(TypeError):
        ChildSpec(id="w", actor_class=actor_class)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    [{"restart": "sometimes"}, {"shutdown": -1.0}, {"shutdown": "never"}, {"shutdown": True}],
)
def test_unknown_restart_or_bad_shutdown_is_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ChildSpec(id="w", actor_class=Worker, **bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    [
        {"strategy": "all_for_none"},
        {"intensity": -1},
        {"period": 0},
        {"children": [ChildSpec(id="a", actor_class=Worker)] * 2},
    ],
)
def test_invalid_supervisor_settings_are_rejected_before_anything_starts(
    bad: dict[str, object],
) -> None:
    with pytest.raises(ValueError):
        Supervisor.start(**bad)

    assert pykka.ActorRegistry.get_all() == []


def test_backoff_settings_are_validated() -> None:
    with pytest.raises(ValueError):
        Backoff(min_delay=0.0, max_delay=1.0)
    with pytest.raises(ValueError):
        Backoff(min_delay=2.0, max_delay=1.0)
    with pytest.raises(ValueError):
        Backoff(min_delay=1.0, max_delay=2.0, jitter=1.5)
    with pytest.raises(ValueError):
        Backoff(min_delay=1.0, max_delay=2.0, factor=0.5)
