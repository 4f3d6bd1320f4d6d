"""Which events become which messages, and how bursts are digested (pure, no I/O)."""

from __future__ import annotations

from typing import Any

from reconciler.events.reader import LogEvent, LogRef
from reconciler.notifier.signals import Digest, Tracker

N = 0


def ev(etype: str, kind: str | None, name: str | None, **data: Any) -> LogEvent:
    global N
    N += 1
    ref = LogRef(kind, name) if kind and name else None
    return LogEvent(
        id=f"{N:019d}-test-{N:08d}", ts="", source="test", type=etype, ref=ref, data=data
    )


def lookup(action: str) -> tuple[str, str] | None:
    return ("c0ffee1234567890", f"plan of {action}") if action.startswith("a") else None


def test_one_commit_one_digest_with_the_operations_counted() -> None:
    tracker, digest = Tracker(), Digest(1.0, 5.0)
    for i in range(38):
        digest.add(
            tracker.signals(
                ev("action.pending", "File", f"f{i}", action=f"a{i}", operation="create"), lookup
            )[0],
            100.0,
        )
    for i in range(2):
        digest.add(
            tracker.signals(
                ev("action.pending", "Container", f"c{i}", action=f"ad{i}", operation="delete"),
                lookup,
            )[0],
            100.5,
        )
    assert not digest.due(101.0) and digest.due(101.5)
    [message] = digest.flush("https://h.example/ui/")
    assert message.title == "40 actions await approval at commit c0ffee1: 38 create, 2 delete"
    assert message.body.endswith("https://h.example/ui/queue")
    assert message.severity == "info" and len(message.refs) == 40


def test_a_settled_action_is_not_told_and_a_single_one_links_to_its_page() -> None:
    tracker, digest = Tracker(), Digest(1.0, 5.0)
    for name in ("web", "db"):
        digest.add(
            tracker.signals(
                ev("action.pending", "Container", name, action=f"a-{name}", operation="update"),
                lookup,
            )[0],
            0.0,
        )
    assert digest.settle("a-db") and not digest.settle("a-db")
    [message] = digest.flush("http://ui")
    assert message.title == "Container/web: update awaits approval at commit c0ffee1"
    assert message.body == "plan of a-web\n\nhttp://ui/actions/a-web"


def test_a_long_burst_is_told_after_max_wait() -> None:
    tracker, digest = Tracker(), Digest(1.0, 3.0)
    for t in range(6):
        for s in tracker.signals(ev("node.status", "Node", f"n{t}", ready=False), lookup):
            digest.add(s, t * 0.6)
    assert digest.due(3.0) and digest.next_due(2.0) == 1.0
    [message] = digest.flush("http://ui")
    assert message.title == "6 nodes are not ready" and message.severity == "failure"


def test_transitions_only_and_recoveries_are_info() -> None:
    tracker = Tracker()
    node = lambda ready: tracker.signals(ev("node.status", "Node", "edge", ready=ready), lookup)  # noqa: E731
    assert node(True) == [] and [s.severity for s in node(False)] == ["failure"]
    assert node(False) == []
    assert [(s.group, s.severity) for s in node(True)] == [("node.notready:ok", "info")]
    flap = lambda status: tracker.signals(  # noqa: E731
        ev("resource.condition", "Container", "web", type="Flapping", status=status), lookup
    )
    assert flap("False") == [] and [s.event for s in flap("True")] == ["resource.flapping"]
    assert flap("True") == [] and flap("False")[0].line == "Container/web is no longer flapping"
    other = ev("resource.condition", "Container", "web", type="InvalidManifest", status="True")
    assert tracker.signals(other, lookup) == []


def test_failed_actions_name_the_error() -> None:
    [s] = Tracker().signals(
        ev(
            "action.failed",
            "Container",
            "web",
            action="x1",
            operation="create",
            outcome={"error": "boom\n  twice"},
        ),
        lookup,
    )
    assert (s.line, s.severity, s.path) == (
        "Container/web: create failed: boom twice",
        "failure",
        "/actions/x1",
    )


def test_drift_comes_from_the_supervisor_status_and_sources_from_source_events() -> None:
    tracker = Tracker()
    status = {
        "updatedAt": "t1",
        "resources": {
            "Container/old": {
                "status": "Drifted",
                "errors": ["delete withheld: observer not caught up"],
            },
            "File/a": {"status": "InSync"},
        },
    }
    [s] = tracker.supervisor_status(status)
    assert s.line == "Container/old drifted: delete withheld: observer not caught up"
    assert tracker.supervisor_status({**status, "updatedAt": "t2"}) == []
    status["resources"]["Container/old"] = {"status": "InSync"}
    assert tracker.supervisor_status(status)[0].group == "resource.drifted:ok"
    [down] = tracker.signals(
        ev(
            "source.status",
            None,
            None,
            source="upstream",
            ready=False,
            message="git fetch: timeout",
        ),
        lookup,
    )
    assert (down.event, down.line) == (
        "source.notready",
        "Source upstream is not ready: git fetch: timeout",
    )
    ready = ev("source.condition", None, None, source="upstream", type="Ready", status="True")
    assert tracker.signals(ready, lookup)[0].line == "Source upstream is ready again"


def test_checkpointed_state_round_trips() -> None:
    tracker, digest = Tracker(), Digest(1.0, 5.0)
    for s in tracker.signals(ev("node.status", "Node", "edge", ready=False), lookup):
        digest.add(s, 7.0)
    again = Tracker(tracker.to_json())
    assert again.signals(ev("node.status", "Node", "edge", ready=False), lookup) == []
    copy = Digest(1.0, 5.0, digest.to_json())
    assert copy.flush("u")[0].id == digest.flush("u")[0].id
