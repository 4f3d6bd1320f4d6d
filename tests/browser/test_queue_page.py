"""The queue page at scale in a real browser (Debian's Chromium driven by Playwright).

A real runtime root holds 120 pending actions proposed through the real
queue (updates, creates and deletes over four nodes) and the UI runs on
uvicorn. On a desktop (1440x900) and a phone (390x844) viewport: the page
shows 50 rows and pages on the server, filters by operation, node and text,
keeps diffs collapsed until clicked; the sticky bulk bar approves and
rejects the ticked rows; a delete needs its name typed, and a bulk approval
including deletes lists them first and wants `delete N` typed; a decision
made elsewhere and a new proposal patch the rows in place while the scroll
position, the focused field, its typed text and ticked boxes stay put.
Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from reconciler.diff import diff_resource
from reconciler.events.log import EventLog
from reconciler.queue import Action, ActionQueue, new_action
from reconciler.runtime_root import RuntimeRoot
from tests.api.conftest import TOKEN, Server, serve
from tests.browser.test_operator_flow import CHROMIUM_ARGS

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
NODES = ("nas", "pi", "edge", "lab")
VIEWPORTS = {"desktop": (1440, 900), "phone": (390, 844)}
pytestmark = pytest.mark.browser


def _spec(i: int, image: str = "local/busybox:1") -> dict[str, Any]:
    return {"image": image, "command": ["sleep", str(i)], "node": NODES[i % len(NODES)]}


def change_for(i: int) -> Any:
    """Every tenth a delete, every tenth a create, the rest updates."""
    if i % 10 == 9:
        return diff_resource("Container", f"old-{i:03d}", None, _spec(i))
    if i % 10 == 8:
        return diff_resource("Container", f"new-{i:03d}", _spec(i), None)
    return diff_resource("Container", f"app-{i:03d}", _spec(i, "local/busybox:2"), _spec(i))


class Lab:
    def __init__(self, root: RuntimeRoot, count: int) -> None:
        self.root = root
        self.queue = ActionQueue(root, EventLog(root, "supervisor"))
        # One at a time, so creation times (the page's order, newest first) differ.
        self.actions: list[Action] = []
        for i in range(count):
            self.propose(i)

    def propose(self, i: int) -> Action:
        action = new_action(change_for(i), commit="0" * 40, basis="", manifest=None)
        assert self.queue.propose(action)
        self.actions.append(action)
        return action

    def by_name(self, name: str) -> Action:
        return next(a for a in self.actions if a.name == name)


@pytest.fixture(params=list(VIEWPORTS))
def viewport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def lab(runtime_root: RuntimeRoot) -> Lab:
    return Lab(runtime_root, 120)


@pytest.fixture
def server(lab: Lab) -> Iterator[Server]:
    srv = serve(lab.root)
    yield srv
    srv.close()


@pytest.fixture
def page(viewport: str, server: Server) -> Iterator[Page]:
    width, height = VIEWPORTS[viewport]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on(
            "console",
            lambda m: (
                errors.append(f"{m.text} {m.location.get('url')}")
                if m.type == "error" and not m.location.get("url", "").endswith("/favicon.ico")
                else None
            ),
        )
        page.goto(server.url + "/login")
        page.fill("input[name=name]", "alice")
        page.fill("input[name=token]", TOKEN)
        page.click("button[type=submit]")
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
        yield page
        assert not errors, errors  # no script error, no CSP refusal
        context.close()
        browser.close()


def row(page: Page, name: str) -> Any:
    return page.locator("[data-testid=pending-action]", has_text=f"Container/{name}")


def test_pages_filters_and_collapsed_diffs(page: Page, server: Server, viewport: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(server.url + "/queue")
    rows = page.locator("[data-testid=pending-action]")
    expect(page.locator("[data-testid=pending-total]")).to_have_text("(120)")
    expect(rows).to_have_count(50)
    expect(page.locator("#pager-top [data-testid=showing]")).to_have_text("1\u201350 of 120")
    # Newest first: the last proposed is on top.
    expect(rows.first).to_contain_text("Container/old-119")
    first_diff = row(page, "app-117").locator("details.diff")
    assert first_diff.evaluate("d => d.open") is False
    expect(first_diff.locator("[data-testid=diff]")).to_be_hidden()
    page.screenshot(path=str(SHOTS / f"queue-10-page-{viewport}.png"))
    first_diff.locator("summary").click()
    expect(first_diff.locator("[data-testid=diff]")).to_be_visible()
    expect(first_diff.locator("[data-testid=diff]")).to_contain_text(
        '~ image: "local/busybox:1" -> "local/busybox:2"'
    )

    page.locator("#pager-bottom [data-testid=next-page]").click()
    expect(page).to_have_url(server.url + "/queue?page=2")
    expect(rows).to_have_count(50)
    page.locator("#pager-bottom [data-testid=next-page]").click()
    expect(rows).to_have_count(20)
    expect(page.locator("#pager-top [data-testid=showing]")).to_have_text("101\u2013120 of 120")
    expect(page.locator("#pager-top [data-testid=next-page]")).to_have_count(0)

    page.select_option("select[name=op]", "delete")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(12)
    for op in rows.evaluate_all("rs => rs.map(r => r.dataset.operation)"):
        assert op == "delete"
    expect(page.locator("#pager-top [data-testid=showing]")).to_have_text(
        "1\u201312 of 12 matching"
    )

    page.select_option("select[name=op]", "")
    page.select_option("select[name=node]", "pi")  # i % 4 == 1
    page.fill("input[name=q]", "app-01")
    page.get_by_role("button", name="Filter").click()
    names = rows.evaluate_all("rs => rs.map(r => r.querySelector('h3 a').textContent)")
    assert names == ["Container/app-017", "Container/app-013"]
    page.screenshot(path=str(SHOTS / f"queue-11-filtered-{viewport}.png"))
    page.locator("[data-testid=clear-filters]").click()
    expect(rows).to_have_count(50)


def test_bulk_bar_and_typed_delete_confirmation(
    page: Page, server: Server, lab: Lab, viewport: str
) -> None:
    page.goto(server.url + "/queue")
    bar = page.locator("[data-testid=bulk-bar]")
    for name in ("app-117", "app-116", "app-115"):
        row(page, name).locator("[data-testid=pick]").check()
    expect(page.locator("[data-testid=picked-count]")).to_have_text("3 selected")
    expect(bar.locator("[data-testid=bulk-approve]")).to_have_text("Approve 3 selected")
    expect(bar).to_be_in_viewport()  # sticky: reachable without scrolling to the end
    page.screenshot(path=str(SHOTS / f"queue-12-bulk-{viewport}.png"))
    bar.locator("[data-testid=bulk-approve]").click()
    expect(page.locator("[data-testid=notice]")).to_have_text("Approved 3")
    for name in ("app-117", "app-116", "app-115"):
        assert lab.queue.find(lab.by_name(name).id) == "approved"
    expect(page.locator("[data-testid=pending-total]")).to_have_text("(117)")

    for name in ("app-114", "app-113"):
        row(page, name).locator("[data-testid=pick]").check()
    bar.locator("input[name=reason]").fill("not this week")
    bar.locator("[data-testid=bulk-reject]").click()
    expect(page.locator("[data-testid=notice]")).to_have_text("Rejected 2")
    rejected = lab.queue.read("rejected", lab.by_name("app-114").id)
    assert rejected.moves[-1].reason == "not this week" and rejected.moves[-1].actor == "alice"

    # One delete: its approve button wants the name typed.
    old = row(page, "old-109")
    old.locator("[data-testid=approve]").click()  # empty: the browser refuses to submit
    assert lab.queue.find(lab.by_name("old-109").id) == "pending"
    old.locator("[data-testid=confirm-name]").fill("old-10")
    old.locator("[data-testid=approve]").click()
    expect(page.locator("[data-testid=notice]")).to_contain_text(
        "Not approved: type the resource name 'old-109'"
    )
    assert lab.queue.find(lab.by_name("old-109").id) == "pending"
    row(page, "old-109").locator("[data-testid=confirm-name]").fill("old-109")
    row(page, "old-109").locator("[data-testid=approve]").click()
    expect(page.locator("[data-testid=notice]")).to_have_text(
        f"Approved {lab.by_name('old-109').id[:12]}"
    )
    assert lab.queue.find(lab.by_name("old-109").id) == "approved"

    # Bulk with a delete: listed first, confirmed by typing "delete 1".
    for name in ("old-099", "app-112"):
        row(page, name).locator("[data-testid=pick]").check()
    bar.locator("[data-testid=bulk-approve]").click()
    listed = page.locator("[data-testid=delete-list] > li")
    expect(listed).to_have_count(1)
    expect(listed).to_contain_text("delete Container/old-099")
    assert lab.queue.find(lab.by_name("old-099").id) == "pending"
    page.screenshot(path=str(SHOTS / f"queue-13-confirm-deletes-{viewport}.png"))
    page.fill("[data-testid=confirm-phrase]", "delete 2")
    page.click("[data-testid=confirm-approve]")
    expect(page.locator("[role=alert]")).to_contain_text("is not \u201cdelete 1\u201d")
    assert lab.queue.find(lab.by_name("old-099").id) == "pending"
    page.fill("[data-testid=confirm-phrase]", "delete 1")
    page.click("[data-testid=confirm-approve]")
    expect(page.locator("[data-testid=notice]")).to_have_text("Approved 2")
    assert lab.queue.find(lab.by_name("old-099").id) == "approved"
    assert lab.queue.find(lab.by_name("app-112").id) == "approved"
    approvals = [
        orjson.loads(line)
        for path in lab.root.events.glob("*/ui.jsonl")
        for line in path.read_bytes().splitlines()
        if b'"action.approved"' in line
    ]
    assert len(approvals) == 6 and {e["data"]["actor"] for e in approvals} == {"alice"}


def test_live_updates_patch_rows_in_place(
    page: Page, server: Server, lab: Lab, viewport: str
) -> None:
    page.goto(server.url + "/queue")
    page.evaluate("document.getElementById('pending-list').dataset.mark = 'kept'")
    watched = row(page, "app-105")  # the 15th row, below the ones that change
    watched.scroll_into_view_if_needed()
    page.evaluate("window.scrollBy(0, -40)")
    reason = watched.locator("input[name=reason]")
    reason.fill("half typed")
    row(page, "app-106").locator("[data-testid=pick]").check()
    reason.focus()
    diff = row(page, "app-104").locator("details.diff")
    diff.evaluate("d => d.open = true")
    top = watched.evaluate("r => r.getBoundingClientRect().top")
    scroll = page.evaluate("window.scrollY")
    assert scroll > 200  # the changed rows are above the viewport

    # Elsewhere: bob approves the top row, the supervisor proposes a new one.
    top_action = lab.by_name("app-117")
    lab.queue.move(top_action.id, "pending", "approved", actor="bob")
    new = lab.propose(120)

    decided = row(page, "app-117").locator("[data-testid=decided]")
    expect(decided).to_have_text("No longer pending: approved.", timeout=10000)
    expect(row(page, new.name)).to_have_count(1)
    expect(page.locator("[data-testid=pending-total]")).to_have_text("(120)")
    assert page.evaluate("document.getElementById('pending-list').dataset.mark") == "kept"
    assert abs(watched.evaluate("r => r.getBoundingClientRect().top") - top) <= 1
    assert page.evaluate("document.activeElement.name") == "reason"
    assert page.evaluate("document.activeElement.closest('article').dataset.action") == (
        lab.by_name("app-105").id
    )
    expect(reason).to_have_value("half typed")
    expect(row(page, "app-106").locator("[data-testid=pick]")).to_be_checked()
    expect(page.locator("[data-testid=picked-count]")).to_have_text("1 selected")
    assert diff.evaluate("d => d.open") is True
    # The gone row cannot be ticked for a bulk decision any more.
    expect(row(page, "app-117").locator("[data-testid=pick]")).to_be_disabled()
    page.screenshot(path=str(SHOTS / f"queue-14-live-{viewport}.png"))
