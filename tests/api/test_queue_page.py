"""The queue page's forms and query string without a browser (no script): real root, real UI.

Paging and filters come from the query string and survive nonsense; a
delete is approved only with its name typed; the bulk form refuses an empty
selection and a reasonless rejection, and lists deletes for a typed
`delete N` before approving them; whatever was refused stays pending.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import unquote

import httpx
import pytest

from reconciler.diff import diff_resource
from reconciler.events.log import EventLog
from reconciler.queue import Action, ActionQueue, new_action
from reconciler.runtime_root import RuntimeRoot
from tests.api.conftest import Server, csrf_of, serve, session_login


@pytest.fixture
def seeded(runtime_root: RuntimeRoot) -> tuple[ActionQueue, dict[str, Action]]:
    queue = ActionQueue(runtime_root, EventLog(runtime_root, "supervisor"))
    actions = {}
    for i in range(60):
        spec = {"image": "local/busybox:1", "node": ("nas", "pi")[i % 2]}
        if i % 10 == 9:
            change = diff_resource("Container", f"old-{i:02d}", None, spec)
        else:
            change = diff_resource("Container", f"app-{i:02d}", spec, None)
        assert change is not None
        action = new_action(change, commit="0" * 40, basis="", manifest=None)
        assert queue.propose(action)
        actions[action.name] = action
    return queue, actions


@pytest.fixture
def ui(runtime_root: RuntimeRoot, seeded: object) -> Iterator[Server]:
    srv = serve(runtime_root)
    yield srv
    srv.close()


def _rows(html: str) -> list[str]:
    return re.findall(r'data-testid="pending-action" data-action="([0-9a-f]+)"', html)


def _notice(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    return unquote(response.headers["location"].partition("notice=")[2])


def test_paging_and_filters_come_from_the_query_string(ui: Server) -> None:
    client = session_login(ui)
    assert len(_rows(client.get("/queue").text)) == 50
    assert len(_rows(client.get("/queue?page=2").text)) == 10
    assert len(_rows(client.get("/queue?page=999").text)) == 10  # the last page
    assert len(_rows(client.get("/queue?page=abc").text)) == 50
    assert len(_rows(client.get("/queue?page=-3").text)) == 50
    assert len(_rows(client.get("/queue?op=delete").text)) == 6
    assert len(_rows(client.get("/queue?op=create&node=pi").text)) == 24
    page = client.get("/queue", params={"q": "<script>alert(1)</script>" * 20}).text
    assert _rows(page) == [] and "No pending action matches." in page
    assert "<script>alert(1)" not in page  # escaped in the search box, never run
    # The bulk form and the row forms go back to the same filtered page.
    assert 'name="back" value="/queue?op=delete"' in client.get("/queue?op=delete").text


def test_a_delete_needs_its_name_and_bulk_deletes_a_typed_count(
    ui: Server, seeded: tuple[ActionQueue, dict[str, Action]]
) -> None:
    queue, actions = seeded
    client = session_login(ui)
    csrf = csrf_of(client)
    old, app = actions["old-09"], actions["app-00"]
    form = {"_csrf": csrf, "back": "/queue"}
    notice = _notice(client.post(f"/queue/{old.id}/approve", data=form))
    assert notice == (
        "Not approved: type the resource name 'old-09' to approve deleting Container/old-09"
    )
    wrong = {**form, "confirm_name": "old-9"}
    assert _notice(client.post(f"/queue/{old.id}/approve", data=wrong)).startswith("Not approved")
    assert queue.find(old.id) == "pending"

    assert _notice(client.post("/queue/bulk", data=form)) == "Select at least one action first."
    reject = {**form, "ids": [app.id], "decision": "reject", "reason": " "}
    assert _notice(client.post("/queue/bulk", data=reject)) == (
        "Give a reason to reject the selected actions."
    )
    assert queue.find(app.id) == "pending"

    bulk = {**form, "ids": [old.id, app.id], "decision": "approve"}
    listing = client.post("/queue/bulk", data=bulk)
    assert listing.status_code == 200
    assert "Type <code>delete 1</code> to confirm" in listing.text
    assert "Container/old-09" in listing.text and "Container/app-00" not in listing.text
    assert queue.find(old.id) == "pending" and queue.find(app.id) == "pending"
    again = client.post("/queue/bulk", data={**bulk, "confirm_deletes": "delete 2"})
    assert again.status_code == 200 and "is not" in again.text
    assert queue.find(old.id) == "pending"
    done = client.post("/queue/bulk", data={**bulk, "confirm_deletes": "delete 1"})
    assert _notice(done) == "Approved 2"
    assert queue.find(old.id) == "approved" and queue.find(app.id) == "approved"
    # Approving them again: nothing moves twice, the notice says where they are.
    replay = client.post("/queue/bulk", data=bulk)
    assert _notice(replay) == "Approved 0; skipped 2 no longer pending (2 already approved)"
