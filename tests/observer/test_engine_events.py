"""Engine events: healthcheck execs trigger nothing, a repeated event is handled once.

The event shapes are the engine's own (`docker events` JSON); the last test
reads them from the real engine, filtered as the collector asks for them.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from reconciler.observer.collectors.engine_events import (
    EVENT_FILTERS,
    SeenEvents,
    action_of,
    triggers_inspection,
)
from tests.conftest import BUSYBOX


def _event(action: str, time_nano: int, ident: str = "c0ffee") -> dict[str, Any]:
    return {
        "Type": "container",
        "Action": action,
        "id": ident,
        "Actor": {"ID": ident, "Attributes": {"name": "homelab-web"}},
        "time": time_nano // 1_000_000_000,
        "timeNano": time_nano,
    }


def test_healthcheck_execs_trigger_no_inspection_but_health_transitions_do() -> None:
    ns = 1_764_000_000_000_000_000
    for action in ("exec_create: true", "exec_start: true", "exec_die", "attach", "top"):
        assert not triggers_inspection(_event(action, ns)), action
    for action in ("health_status: healthy", "health_status: unhealthy", "start", "die"):
        assert triggers_inspection(_event(action, ns)), action
    assert action_of(_event("health_status: healthy", ns)) == "health_status"
    assert not triggers_inspection({**_event("start", ns), "Type": "network"})


def test_every_action_that_changes_an_observed_spec_triggers_inspection() -> None:
    """The observation is the engine's view: update, pause, stop, rename... change it."""
    ns = 1_764_000_000_000_000_000
    for action in (
        "create",
        "update",
        "pause",
        "unpause",
        "stop",
        "die",
        "start",
        "restart",
        "rename",
        "destroy",
        "health_status: starting",
    ):
        assert triggers_inspection(_event(action, ns)), action
        assert action_of(_event(action, ns)) in EVENT_FILTERS["event"]


def test_a_repeated_engine_event_is_handled_once() -> None:
    """The overlapping second of two `events()` windows replays the same events."""
    seen = SeenEvents()
    ns = 1_764_000_000_500_000_000
    die, stop = _event("die", ns), _event("stop", ns + 1000)
    assert [seen.first_time(e) for e in (die, stop)] == [True, True]
    seen.forget_before(ns // 1_000_000_000)  # the next window starts in the same second
    assert [seen.first_time(dict(e)) for e in (die, stop)] == [False, False]
    assert seen.first_time(_event("die", ns, ident="other")) is True
    assert seen.first_time(_event("start", ns)) is True  # same instant, another action
    seen.forget_before(ns // 1_000_000_000 + 1)  # a window past them: forgotten
    assert seen.first_time(die) is True


@pytest.mark.docker
def test_the_engine_sends_health_transitions_and_no_execs(docker_client: Any) -> None:
    since = int(time.time()) - 1
    container = docker_client.containers.run(
        BUSYBOX,
        ["sleep", "300"],
        name=f"events-{uuid.uuid4().hex[:8]}",
        detach=True,
        network_mode="none",
        healthcheck={"test": ["CMD", "true"], "interval": 1_000_000_000},
    )
    try:
        deadline = time.monotonic() + 15
        while (container.attrs["State"].get("Health") or {}).get("Status") != "healthy":
            assert time.monotonic() < deadline, "never healthy"
            time.sleep(0.2)
            container.reload()
        time.sleep(2)  # more healthchecks
        until = int(time.time()) + 1
        mine = {"container": [container.id]}
        every = list(docker_client.events(since=since, until=until, filters=mine, decode=True))
        asked = list(
            docker_client.events(
                since=since, until=until, filters={**EVENT_FILTERS, **mine}, decode=True
            )
        )
    finally:
        container.remove(force=True)
    assert any(action_of(e) == "exec_start" for e in every)  # the healthcheck ran
    actions = [action_of(e) for e in asked]
    assert "health_status" in actions and "start" in actions
    assert all(triggers_inspection(e) for e in asked), actions
