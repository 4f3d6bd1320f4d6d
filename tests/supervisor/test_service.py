"""End to end: a real git repository, a real runtime root, supervisor passes, the CLI."""

from __future__ import annotations

from typing import Any

from reconciler.atomic_files import read_json


def test_new_manifest_commit_becomes_one_pending_create(lab: Any) -> None:
    lab.container("web")
    commit = lab.commit("add web")
    status = lab.reconcile()
    action = lab.only("pending")
    assert (action.kind, action.name, action.operation) == ("Container", "web", "create")
    assert action.commit == commit
    assert action.basis == ""
    assert action.desired == lab.desired("web")
    assert action.patch == [{"op": "add", "path": "", "value": action.desired}]
    assert "+ Container/web" in action.summary
    assert status["resources"]["Container/web"] == {
        "status": "Pending",
        "errors": [],
        "action": action.id,
        "source": "manifests/web.yaml:4:9",
        "desired": action.desired,
    }
    assert read_json(lab.root.state / "supervisor_status.json")["commit"] == commit
    pending = [e for e in lab.events("action.pending") if e["data"]["action"] == action.id]
    assert pending[0]["source"] == "supervisor"


def test_replanning_the_same_drift_adds_nothing(lab: Any) -> None:
    lab.container("web")
    lab.commit()
    lab.reconcile()
    first = lab.only("pending")
    lab.commit("unrelated empty commit")
    lab.reconcile()
    assert lab.only("pending").id == first.id
    assert lab.actions("superseded") == []


def test_cli_approval_moves_the_action_with_the_operator_in_the_event(lab: Any) -> None:
    lab.container("web")
    lab.commit()
    lab.reconcile()
    action_id = lab.only("pending").id
    out = lab.cli("actions", "approve", action_id, operator="alice")
    assert f"{action_id}: approved by alice" in out.stdout
    assert lab.only("approved").id == action_id
    [event] = [e for e in lab.events("action.approved") if e["data"]["action"] == action_id]
    assert event["source"] == "cli-alice"
    assert event["data"]["actor"] == "alice"
    again = lab.cli("actions", "approve", action_id[:8], "--as", "bob")
    assert "already approved" in again.stdout
    assert len(lab.events("action.approved")) == 1
    lab.reconcile()
    assert lab.only("approved").id == action_id


def test_cli_refuses_an_operator_name_reserved_for_a_service(lab: Any) -> None:
    lab.container("web")
    lab.commit()
    lab.reconcile()
    action_id = lab.only("pending").id
    out = lab.cli("actions", "approve", action_id, operator="executor", check=False)
    assert out.returncode != 0
    assert "reserved for the executor service" in out.stderr
    assert lab.only("pending").id == action_id
    assert lab.events("action.approved") == []


def test_edit_before_approval_supersedes_the_old_action(lab: Any) -> None:
    lab.container("web", "local/busybox:1")
    lab.commit()
    lab.reconcile()
    old = lab.only("pending")
    lab.container("web", "local/busybox:2")
    lab.commit("bump")
    status = lab.reconcile()
    new = lab.only("pending")
    assert new.id != old.id and new.desired["image"] == "local/busybox:2"
    superseded = lab.only("superseded")
    assert superseded.id == old.id
    assert new.id in superseded.moves[-1].reason
    assert status["resources"]["Container/web"]["action"] == new.id


def test_git_revert_proposes_the_actions_that_restore_the_older_state(lab: Any) -> None:
    lab.container("web", "local/busybox:1")
    first = lab.commit("v1")
    lab.reconcile()
    lab.cli("actions", "approve", "--all")
    lab.execute(lab.only("approved").id)
    lab.container("web", "local/busybox:2")
    lab.commit("v2")
    lab.reconcile()
    update = lab.only("pending")
    assert update.operation == "replace"  # an image cannot change in place
    lab.cli("actions", "approve", update.id)
    lab.execute(update.id)
    lab.reconcile()
    assert lab.actions("pending") == []
    lab.repo.git("revert", "--no-edit", "HEAD")
    status = lab.reconcile()
    restore = lab.only("pending")
    assert restore.operation == "replace"
    assert restore.desired == lab.desired("web", first)
    assert restore.patch == [{"op": "replace", "path": "/image", "value": "local/busybox:1"}]
    assert restore.commit == lab.repo.head
    assert status["resources"]["Container/web"]["status"] == "Pending"


def test_auto_approve_policy_approves_creates_but_never_deletes(lab: Any) -> None:
    lab.observer_caught_up()
    lab.container("web", auto=True)
    lab.container("db")
    lab.commit()
    lab.reconcile()
    assert [a.name for a in lab.actions("approved")] == ["web"]
    assert [a.name for a in lab.actions("pending")] == ["db"]
    approved = lab.only("approved")
    assert approved.moves[-1].actor == "supervisor"
    assert approved.moves[-1].reason == "spec.policy.autoApprove"
    lab.execute(approved.id)
    lab.remove("web")
    lab.commit("drop web")
    lab.reconcile()
    deletes = [a for a in lab.actions("pending") if a.operation == "delete"]
    assert [(a.name, a.auto_approve) for a in deletes] == [("web", False)]
    assert [a.name for a in lab.actions("approved")] == []


def test_prune_is_auto_approved_only_when_the_repository_allows_it(lab: Any) -> None:
    lab.observer_caught_up()
    lab.observe("old", {"image": "local/busybox:1", "node": "local"})
    lab.repo.write("homelab.yaml", "autoApprovePrune: true\n")
    lab.container("web")
    lab.commit()
    lab.reconcile()
    delete = lab.only("approved")
    assert (delete.name, delete.operation) == ("old", "delete")
    assert delete.moves[-1].reason == "autoApprovePrune"


def test_deletes_wait_until_the_world_is_fully_observed(lab: Any) -> None:
    lab.container("web")
    lab.commit()
    lab.observe("old", {"image": "local/busybox:1", "node": "local"})
    status = lab.reconcile()  # no observer status file at all
    assert [a.operation for a in lab.actions("pending")] == ["create"]
    assert status["resources"]["Container/old"]["status"] == "Drifted"
    assert "delete withheld" in status["resources"]["Container/old"]["errors"][0]
    lab.observer_caught_up(caught_up=True, listed=False)
    lab.reconcile()
    assert [a.operation for a in lab.actions("pending")] == ["create"]
    lab.observer_caught_up(caught_up=False, listed=True)
    lab.reconcile()
    assert [a.operation for a in lab.actions("pending")] == ["create"]
    lab.observer_caught_up()
    lab.reconcile()
    assert sorted(a.operation for a in lab.actions("pending")) == ["create", "delete"]


def test_invalid_manifest_gets_no_action_and_an_error_condition(lab: Any) -> None:
    lab.container("web")
    lab.commit()
    lab.reconcile()
    pending = lab.only("pending")
    lab.container("web", "NOT A VALID IMAGE")
    lab.container("db")
    lab.commit("break web")
    status = lab.reconcile()
    assert [a.name for a in lab.actions("pending")] == ["db"]
    assert lab.only("superseded").id == pending.id
    web = status["resources"]["Container/web"]
    assert web["status"] == "Invalid" and web["action"] is None
    assert any("image" in e for e in web["errors"])
    [condition] = lab.events("resource.condition")
    assert condition["ref"] == {"kind": "Container", "name": "web"}
    assert condition["data"]["type"] == "InvalidManifest"
    assert condition["data"]["status"] == "True"


def test_ignore_differences_hides_drift_made_outside_git(lab: Any) -> None:
    lab.repo.write(
        "manifests/web.yaml",
        """\
        apiVersion: homelab.reconciler/v1alpha1
        kind: Container
        metadata: {name: web}
        spec:
          image: local/busybox:1
          labels: {tier: front}
          policy:
            ignoreDifferences: [/labels]
        """,
    )
    lab.commit()
    observed = dict(lab.desired("web"), labels={"tier": "changed-by-hand"})
    lab.observe("web", observed)
    status = lab.reconcile()
    assert lab.actions("pending") == []
    assert status["resources"]["Container/web"]["status"] == "InSync"


def test_rejected_change_is_not_proposed_again(lab: Any) -> None:
    lab.container("web")
    lab.commit()
    lab.reconcile()
    action_id = lab.only("pending").id
    lab.cli("actions", "reject", action_id, "--reason", "not now")
    status = lab.reconcile()
    assert lab.actions("pending") == []
    assert status["resources"]["Container/web"]["status"] == "Drifted"
    [event] = lab.events("action.rejected")
    assert event["data"]["reason"] == "not now" and event["data"]["actor"] == "alice"


def test_superseded_change_comes_back_as_a_new_generation(lab: Any) -> None:
    lab.container("web", "local/busybox:1")
    lab.commit()
    lab.reconcile()
    first = lab.only("pending")
    lab.container("web", "local/busybox:2")
    lab.commit()
    lab.reconcile()
    lab.repo.git("revert", "--no-edit", "HEAD")
    lab.reconcile()
    back = lab.only("pending")
    assert back.plan_id == first.id and back.generation == 1
    assert len(lab.actions("superseded")) == 2
