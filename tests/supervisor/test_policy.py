"""Approval and prune policy: who may skip the person, when deletes may be proposed."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.resources.repo import RepoConfig
from reconciler.supervisor.policy import auto_approves, deletes_gate

AUTO = {"spec": {"policy": {"autoApprove": True}}}
MANUAL: dict[str, Any] = {"spec": {}}


@pytest.mark.parametrize(
    ("operation", "manifest", "prune", "after_failure", "expected"),
    [
        ("create", MANUAL, False, False, False),
        ("create", AUTO, False, False, True),
        ("update", AUTO, False, False, True),
        ("replace", AUTO, False, False, True),
        ("update", AUTO, False, True, False),  # a retry of a failed change needs a person
        ("delete", None, False, False, False),
        ("delete", None, True, False, True),
        ("create", MANUAL, True, False, False),  # prune permission is not create permission
        ("start", AUTO, False, False, True),
        ("stop", AUTO, False, False, True),
        ("adopt", AUTO, False, False, True),
        ("adopt", MANUAL, False, False, False),
        ("stop", MANUAL, True, False, False),  # a stop is not a prune
        ("start", AUTO, False, True, False),
    ],
)
def test_auto_approval_matrix(
    operation: str, manifest: Any, prune: bool, after_failure: bool, expected: bool
) -> None:
    config = RepoConfig(autoApprovePrune=prune)
    assert auto_approves(operation, manifest, config, after_failure=after_failure) is expected


def _node(started: str, listed: str | None) -> dict[str, Any]:
    return {"collectorStartedAt": started, "lastFullListingAt": listed, "ready": True}


T0, T1 = "2024-05-01T10:00:00.000000Z", "2024-05-01T10:00:05.000000Z"


@pytest.mark.parametrize(
    ("status", "open_"),
    [
        (None, False),
        ({"caughtUp": False, "nodes": {"a": _node(T0, T1)}}, False),
        ({"caughtUp": True, "nodes": {}}, False),
        ({"caughtUp": True, "nodes": {"a": _node(T0, None)}}, False),
        ({"caughtUp": True, "nodes": {"a": _node(T1, T0)}}, False),  # listing from before restart
        ({"caughtUp": True, "nodes": {"a": _node(T0, T1), "b": _node(T0, None)}}, False),
        ({"caughtUp": True, "nodes": {"a": "garbage"}}, False),
        ({"caughtUp": True, "nodes": {"a": _node(T0, T1), "b": _node(T0, T1)}}, True),
        # an observer configured without Docker collectors (Compose layout)
        ({"caughtUp": True, "nodes": {}, "dockerCollectors": False}, True),
        ({"caughtUp": False, "nodes": {}, "dockerCollectors": False}, False),
        ({"caughtUp": True, "nodes": {}, "dockerCollectors": True}, False),
    ],
)
def test_deletes_wait_for_a_fully_observed_world(status: Any, open_: bool) -> None:
    gate = deletes_gate(status)
    assert gate.open is open_
    assert gate.reason
