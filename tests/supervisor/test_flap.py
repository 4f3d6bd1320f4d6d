"""The flap guard: a patch undone again and again stops being proposed."""

from __future__ import annotations

from typing import Any

from reconciler.supervisor.flap import Success, flap_evidence


def test_evidence_counts_only_the_same_patch_inside_the_window() -> None:
    history = [
        Success(100.0, "p1", "a"),
        Success(200.0, "p2", "b"),
        Success(300.0, "p1", "c"),
        Success(50.0, "p1", "old"),
    ]
    assert flap_evidence(history, "p1", since=90.0) == ["a", "c"]
    assert flap_evidence(history, "p2", since=250.0) == []


def _undo_three_times(lab: Any) -> None:
    """Create web, let it be removed outside git, three times over."""
    for _ in range(3):
        lab.reconcile()
        lab.execute(lab.only("approved").id)
        lab.reconcile()
        assert lab.actions("approved") == [] and lab.actions("pending") == []
        lab.observe("web", None)  # someone removed the container by hand


def test_same_patch_succeeding_three_times_marks_the_resource_flapping(lab: Any) -> None:
    lab.container("web", auto=True)
    lab.commit()
    _undo_three_times(lab)
    status = lab.reconcile()
    web = status["resources"]["Container/web"]
    assert web["status"] == "Flapping"
    assert lab.actions("approved") == [] and lab.actions("pending") == []
    done = sorted(a.id for a in lab.actions("done"))
    assert len(done) == 3 and all(aid in web["errors"][0] for aid in done)
    [event] = [e for e in lab.events("resource.condition") if e["data"]["type"] == "Flapping"]
    assert event["data"]["status"] == "True" and event["ref"]["name"] == "web"
    lab.reconcile()  # stays quiet
    assert lab.actions("pending") == [] and lab.actions("approved") == []

    lab.container("web", "local/busybox:2", auto=True)
    lab.commit("new desired spec")
    status = lab.reconcile()
    assert status["resources"]["Container/web"]["status"] == "Pending"
    assert lab.only("approved").desired["image"] == "local/busybox:2"
    flapping = [e for e in lab.events("resource.condition") if e["data"]["type"] == "Flapping"]
    assert [e["data"]["status"] for e in flapping] == ["True", "False"]


def test_operator_clearing_the_mark_lets_actions_through_again(lab: Any) -> None:
    lab.container("web")
    lab.commit()
    for _ in range(3):
        lab.reconcile()
        lab.cli("actions", "approve", "--all")
        lab.execute(lab.only("approved").id)
        lab.observe("web", None)
    assert lab.reconcile()["resources"]["Container/web"]["status"] == "Flapping"
    out = lab.cli("actions", "clear-flap", "Container/web", "--as", "carol")
    assert "cleared" in out.stdout
    status = lab.reconcile()
    assert status["resources"]["Container/web"]["status"] == "Pending"
    assert lab.only("pending").operation == "create"
    cleared = [e for e in lab.events("resource.condition") if e["source"] == "cli-carol"]
    assert cleared[0]["data"]["reason"] == "ClearedByOperator"
