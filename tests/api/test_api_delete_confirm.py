"""The JSON approve API asks for a delete's resource name typed, as the queue form does."""

from __future__ import annotations

from reconciler.diff import diff_resource
from reconciler.queue import new_action
from tests.api.conftest import Server, UILab


def _pending_delete(lab: UILab, name: str) -> str:
    change = diff_resource("Container", name, None, {"image": "local/busybox:1"})
    action = new_action(change, commit="0" * 40, basis="", manifest=None)
    assert lab.queue.propose(action)
    return action.id


def test_approving_a_delete_needs_its_name(server: Server, lab: UILab) -> None:
    action_id = _pending_delete(lab, "old-web")
    with server.client() as client:
        for body in (None, {}, {"confirmName": "web"}, {"confirmName": ""}):
            kwargs = {} if body is None else {"json": body}
            refused = client.post(f"/api/actions/{action_id}/approve", **kwargs)
            assert refused.status_code == 422, refused.text
            detail = refused.json()["detail"]
            assert "type the resource name 'old-web'" in detail
            assert "Container/old-web" in detail
        assert client.get(f"/api/actions/{action_id}").json()["action"]["state"] == "pending"
        approved = client.post(f"/api/actions/{action_id}/approve", json={"confirmName": "old-web"})
        assert approved.status_code == 200, approved.text
        assert client.get(f"/api/actions/{action_id}").json()["action"]["state"] == "approved"


def test_other_operations_need_no_name(server: Server, lab: UILab) -> None:
    create = next(a for a in lab.propose() if a.operation == "create")
    with server.client() as client:
        approved = client.post(f"/api/actions/{create.id}/approve")
        assert approved.status_code == 200, approved.text
        # a name typed where none is needed is ignored, and an unknown id stays a 404
        missing = client.post("/api/actions/" + "f" * 32 + "/approve", json={"confirmName": "x"})
        assert missing.status_code == 404, missing.text
