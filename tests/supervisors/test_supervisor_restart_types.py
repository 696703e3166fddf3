"""Restart types under normal, shutdown and abnormal exits (OTP's
permanent/transient/temporary cases)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pykka
import pytest

from supervisors import ChildSpec, Restart, Supervisor

from .helpers import Worker, child_ref, children, wait_restarted, wait_until

Sup = pykka.ActorRef[Any]


def start_one(restart: str) -> Sup:
    return Supervisor.start(
        children=[
            ChildSpec(id="w", actor_class=Worker, restart=restart),  # type: ignore[arg-type]
            ChildSpec(id="witness", actor_class=Worker),
        ]
    )


def exit_normally(ref: pykka.ActorRef[Any]) -> None:
    ref.stop(timeout=2)


def exit_abnormally(ref: pykka.ActorRef[Any]) -> None:
    ref.tell("crash")


def settle(sup: Sup) -> None:
    """Wait until the supervisor has handled every exit sent so far."""
    sup.proxy().which_children().get(timeout=2)
    sup.proxy().which_children().get(timeout=2)


def test_permanent_child_is_restarted_after_abnormal_exit() -> None:
    sup = start_one("permanent")
    old = child_ref(sup, "w")

    exit_abnormally(old)

    assert wait_restarted(sup, "w", old).is_alive()


def test_permanent_child_is_restarted_after_normal_exit() -> None:
    sup = start_one("permanent")
    old = child_ref(sup, "w")

    exit_normally(old)

    assert wait_restarted(sup, "w", old).is_alive()


def test_transient_child_is_restarted_after_abnormal_exit() -> None:
    sup = start_one("transient")
    old = child_ref(sup, "w")

    exit_abnormally(old)

    assert wait_restarted(sup, "w", old).is_alive()


def test_transient_child_is_not_restarted_after_normal_exit_but_its_spec_is_kept() -> None:
    sup = start_one("transient")

    exit_normally(child_ref(sup, "w"))
    settle(sup)

    assert children(sup) == {"w": None, "witness": children(sup)["witness"]}


@pytest.mark.parametrize("make_exit", [exit_normally, exit_abnormally])
def test_temporary_child_is_never_restarted_and_its_spec_is_dropped(
    make_exit: Callable[[pykka.ActorRef[Any]], None],
) -> None:
    sup = start_one("temporary")

    make_exit(child_ref(sup, "w"))

    wait_until(lambda: "w" not in children(sup))
    assert list(children(sup)) == ["witness"]


@pytest.mark.parametrize("restart", list(Restart))
def test_child_shut_down_by_its_supervisor_is_not_restarted_whatever_its_type(
    restart: Restart,
) -> None:
    sup = start_one(restart)
    old = child_ref(sup, "w")

    sup.proxy().terminate_child("w").get(timeout=2)
    settle(sup)

    assert not old.is_alive()
    if restart is Restart.TEMPORARY:
        assert "w" not in children(sup)
    else:
        assert children(sup)["w"] is None


def test_restarted_child_is_a_fresh_actor_from_its_spec() -> None:
    sup = Supervisor.start(
        children=[ChildSpec(id="w", actor_class=Worker, kwargs={"tag": "from-spec"})]
    )
    old = child_ref(sup, "w")
    proxy = old.proxy()
    proxy.tag = "changed at run time"
    assert proxy.tag.get(timeout=2) == "changed at run time"

    old.tell("crash")
    new = wait_restarted(sup, "w", old)

    assert new.actor_urn != old.actor_urn
    assert new.proxy().tag.get(timeout=2) == "from-spec"
