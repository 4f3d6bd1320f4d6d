"""Issue 16 items 1, 2 and 5 in a real browser (Debian's Chromium driven by Playwright).

Real git repository, real runtime root, the real supervisor (passes run
in-process so each step is decided by the test), the real observer for the
unreachable node, and the UI on uvicorn. Every test runs at a desktop
(1440x900) and a phone (390x844) viewport:

- a committed YAML syntax error is in a banner on every page with
  `file:line:column`, message and commit, linking to the errors page; the
  file's resource is Invalid and its pending action superseded as "manifest
  invalid at file:line";
- a rejected resource's page tells one story (drifted, missing, the real
  diff, who rejected it and why) and "propose again" proposes it again, with
  the operator's audit event;
- an in-sync resource shows its desired spec from git with its file and line;
- the dashboard's cards add up to the total and each links to what it counts;
- a Node whose engine does not answer (a closed 127.0.0.1 port) is red, its
  resource's page says so, and approving its pending action needs a tick.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from reconciler.atomic_files import atomic_write_json
from reconciler.observer.service import ObserverService, ObserverSettings
from reconciler.queue.action import now_iso
from reconciler.resources.key import ResourceKey
from reconciler.resources.normalize import spec_hash
from reconciler.runtime_root import RuntimeRoot
from reconciler.supervisor.service import Supervisor
from reconciler.world import new_world_doc, world_path
from tests.api.conftest import TOKEN, Server, UILab, serve, wait_for
from tests.browser.test_operator_flow import CHROMIUM_ARGS
from tests.conftest import GitRepo

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
VIEWPORTS = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}
pytestmark = pytest.mark.browser

BROKEN = """\
apiVersion: homelab.reconciler/v1alpha1
kind: Container
metadata:
  name: web
spec:
  image: local/busybox:2
  command: ["sleep", "3600"
  networkMode: host
"""


@pytest.fixture(params=sorted(VIEWPORTS))
def viewport(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def page(viewport: str) -> Iterator[Page]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=VIEWPORTS[viewport])  # type: ignore[arg-type]
        yield context.new_page()
        context.close()
        browser.close()


@pytest.fixture
def supervisor(git_repo: GitRepo, runtime_root: RuntimeRoot) -> Iterator[Supervisor]:
    service = Supervisor(git_repo.path, runtime_root)
    yield service
    service.events.close()


def _login(page: Page, server: Server, path: str = "/") -> None:
    page.goto(server.url + path)
    page.fill("input[name=name]", "alice")
    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(re.escape(server.url) + ".*"))


def _shot(page: Page, name: str, viewport: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"errors-{name}-{viewport}.png"), full_page=True)


def _observe(root: RuntimeRoot, name: str, spec: dict[str, Any]) -> None:
    """The world document the observer writes for a managed container running as `spec`."""
    doc = new_world_doc("Container", name)
    doc["status"].update(
        exists=True,
        managed=True,
        observed=spec,
        observedAt=now_iso(),
        basis=spec_hash(spec),
        health="Healthy",
    )
    atomic_write_json(world_path(root, "Container", name), doc)


def _ui_events(root: RuntimeRoot, type_: str) -> list[dict[str, Any]]:
    return [
        orjson.loads(line)
        for path in root.events.glob("*/ui.jsonl")
        for line in path.read_bytes().splitlines()
        if orjson.loads(line)["type"] == type_
    ]


def test_a_syntax_error_is_in_a_banner_on_every_page_and_its_resource_is_invalid(
    git_repo: GitRepo, runtime_root: RuntimeRoot, supervisor: Supervisor, page: Page, viewport: str
) -> None:
    lab = UILab(git_repo, runtime_root)
    lab.container("web")
    lab.container("db")
    git_repo.commit("two containers")
    lab.status_files()
    supervisor.reconcile(force=True)
    git_repo.write("manifests/web.yaml", BROKEN)
    commit = git_repo.commit("an unclosed list")
    supervisor.reconcile(force=True)
    server = serve(runtime_root)
    try:
        _login(page, server)
        for path in ("/", "/resources", "/queue", "/events"):
            page.goto(server.url + path)
            banner = page.locator("[data-testid=manifest-banner]")
            expect(banner).to_contain_text("1 manifest error")
            expect(banner).to_contain_text(commit[:12])
            expect(banner).to_contain_text("manifests/web.yaml:8:")
            expect(banner).to_contain_text("YAML syntax error")
            expect(banner).to_contain_text("1 resource invalid")
        _shot(page, "banner", viewport)
        page.click("[data-testid=errors-link]")
        expect(page).to_have_url(server.url + "/errors")
        expect(page.locator("[data-testid=errors] tbody tr")).to_have_count(1)
        expect(page.locator("[data-testid=errors]")).to_contain_text("manifests/web.yaml:8:")
        _shot(page, "errors-page", viewport)
        page.locator("[data-testid=invalid] a", has_text="Container/web").click()
        expect(page.locator("[data-testid=resource-status]")).to_have_text("Invalid")
        expect(page.locator("[data-testid=desired-from]")).to_contain_text(
            "the manifest is invalid at manifests/web.yaml:8:"
        )
        expect(page.locator("[data-testid=errors]")).to_contain_text("YAML syntax error")
        expect(page.locator("[data-testid=last-action]")).to_contain_text(
            "superseded: manifest invalid at manifests/web.yaml:8"
        )
        expect(page.locator("[data-testid=no-diff]")).to_contain_text("manifest is fixed")
        expect(page.locator("body")).not_to_contain_text("no change needed")
        _shot(page, "invalid-resource", viewport)
        page.goto(server.url + "/resources?status=Unknown")
        expect(page.locator("[data-testid=resource-count]")).to_have_text("(0)")
    finally:
        server.close()


def test_a_rejected_resource_tells_one_story_and_is_proposed_again(
    git_repo: GitRepo, runtime_root: RuntimeRoot, supervisor: Supervisor, page: Page, viewport: str
) -> None:
    lab = UILab(git_repo, runtime_root)
    lab.container("web")
    lab.container("db")
    git_repo.commit("two containers")
    lab.status_files()
    supervisor.reconcile(force=True)
    db_desired = next(a.desired for a in lab.queue.actions("pending") if a.name == "db")
    assert db_desired is not None
    supervisor.queue.move(
        next(a.id for a in lab.queue.actions("pending") if a.name == "db"),
        "pending",
        "superseded",
        actor="supervisor",
        reason="applied by hand for this test",
    )
    _observe(runtime_root, "db", db_desired)  # db runs as desired: in sync
    supervisor.reconcile(force=True)
    server = serve(runtime_root)
    try:
        _login(page, server, "/resources/Container/web")
        page.goto(server.url + "/queue")
        card = page.locator("[data-testid=pending-action]", has_text="Container/web")
        card.locator("input[name=reason]").fill("not before the backup")
        card.locator("[data-testid=reject]").click()
        expect(page.locator("[data-testid=notice]")).to_contain_text("Rejected")
        supervisor.reconcile(force=True)

        page.goto(server.url + "/resources/Container/web")
        expect(page.locator("[data-testid=resource-status]")).to_have_text("Drifted")
        expect(page.locator("[data-testid=desired-from]")).to_contain_text(
            "from git, manifests/web.yaml:4:9"
        )
        expect(page.locator("[data-testid=diff]")).to_contain_text("+ Container/web")
        expect(page.locator("[data-testid=no-diff]")).to_have_count(0)
        expect(page.locator("[data-testid=last-action]")).to_contain_text(
            "rejected by alice: not before the backup"
        )
        _shot(page, "rejected", viewport)
        page.click("[data-testid=propose-again]")
        expect(page.locator("[data-testid=notice]")).to_contain_text("propose Container/web again")
        [event] = _ui_events(runtime_root, "operator.propose_again")
        assert event["data"]["actor"] == "alice"
        assert event["ref"] == {"kind": "Container", "name": "web"}
        supervisor.reconcile(force=True)
        [again] = lab.queue.actions("pending")
        assert (again.name, again.operation) == ("web", "create")
        page.reload()
        expect(page.locator("[data-testid=resource-status]")).to_have_text("Pending")
        expect(page.locator("[data-testid=last-action]")).to_contain_text(again.id[:12])
        expect(page.locator("[data-testid=propose-again]")).to_have_count(0)

        page.goto(server.url + "/resources/Container/db")
        expect(page.locator("[data-testid=resource-status]")).to_have_text("InSync")
        expect(page.locator("[data-testid=desired-from]")).to_contain_text(
            "from git, manifests/db.yaml:4:9"
        )
        expect(page.locator("[data-testid=desired]")).to_contain_text("image: local/busybox:1")
        expect(page.locator("[data-testid=no-diff]")).to_have_text(
            "Desired and observed are the same."
        )
        _shot(page, "in-sync", viewport)
    finally:
        server.close()


def _closed_port() -> int:
    """A port in this helper's range that nothing listens on (bound, then released)."""
    for port in range(18850, 18899):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port in 18850-18898")


NODE_AND_APP = """\
apiVersion: homelab.reconciler/v1alpha1
kind: Node
metadata:
  name: far
spec:
  dockerHost: tcp://127.0.0.1:{port}
---
apiVersion: homelab.reconciler/v1alpha1
kind: Container
metadata:
  name: app
spec:
  node: far
  image: local/busybox:1
  imagePullPolicy: Never
  command: ["sleep", "3600"]
  networkMode: host
"""


def _observe_unreachable_node(git_repo: GitRepo, root: RuntimeRoot) -> None:
    """The real observer, against the engine at the closed port, until Node/far is not Ready."""
    stop = threading.Event()
    observer = ObserverService(root, git_repo.path, ObserverSettings(resync=1, durable=False))
    thread = threading.Thread(target=observer.run, args=(stop,), daemon=True)
    thread.start()
    try:

        def not_ready() -> bool:
            try:
                doc = orjson.loads(world_path(root, "Node", "far").read_bytes())
            except (OSError, orjson.JSONDecodeError):
                return False
            ready = [c for c in doc["status"]["conditions"] if c["type"] == "Ready"]
            return bool(ready) and ready[0]["status"] == "False"

        wait_for(not_ready, timeout=60)
    finally:
        stop.set()
        thread.join(30)


def test_a_node_that_does_not_answer_is_red_and_approving_on_it_needs_a_tick(
    git_repo: GitRepo, runtime_root: RuntimeRoot, supervisor: Supervisor, page: Page, viewport: str
) -> None:
    lab = UILab(git_repo, runtime_root)
    git_repo.write("manifests/far.yaml", NODE_AND_APP.format(port=_closed_port()))
    git_repo.commit("a node far away")
    lab.status_files()
    supervisor.reconcile(force=True)  # proposed while nothing is known of the node yet
    [action] = lab.queue.actions("pending")
    _observe_unreachable_node(git_repo, runtime_root)
    status = supervisor.reconcile(force=True)
    assert status is not None
    assert status["resources"]["Container/app"]["status"] == "NodeNotReady"
    server = serve(runtime_root)
    try:
        _login(page, server)
        expect(page.locator("[data-testid=card-waiting]")).to_have_attribute("data-count", "1")
        nodes = page.locator("[data-testid=card-nodes]")
        expect(nodes).not_to_have_attribute("data-count", "0")
        count = nodes.get_attribute("data-count")  # far, and local when no engine is there
        nodes.click()
        expect(page.locator("[data-testid=resource-count]")).to_have_text(f"({count})")
        expect(page.locator("[data-testid=resources]")).to_contain_text("Node/far")
        page.goto(server.url + "/resources/Node/far")
        expect(page.locator("[data-testid=resource-status]")).to_have_text("NotReady")
        page.goto(server.url + "/resources/Container/app")
        node = page.locator("[data-testid=node]")
        expect(node).to_contain_text("far")
        expect(node.locator(".badge")).to_have_text("NotReady")
        expect(node.locator(".badge")).to_have_class(re.compile("s-notready"))
        _shot(page, "node-not-ready", viewport)

        page.goto(f"{server.url}/actions/{action.id}")
        expect(page.locator("[data-testid=not-ready]")).to_contain_text("node far is not ready")
        page.click("[data-testid=approve]")  # the unticked box stops the form
        expect(page.locator("[data-testid=action-state]")).to_have_text("pending")
        assert [a.id for a in lab.queue.actions("pending")] == [action.id]
        page.check("[data-testid=confirm-not-ready]")
        page.click("[data-testid=approve]")
        expect(page.locator("[data-testid=notice]")).to_contain_text("Approved")
        assert [a.id for a in lab.queue.actions("approved")] == [action.id]
        _shot(page, "approved-anyway", viewport)
    finally:
        server.close()


def test_dashboard_cards_add_up_and_each_links_to_what_it_counts(
    git_repo: GitRepo, runtime_root: RuntimeRoot, supervisor: Supervisor, page: Page, viewport: str
) -> None:
    lab = UILab(git_repo, runtime_root)
    for name in ("web", "db", "cache"):
        lab.container(name)
    git_repo.write("manifests/web.yaml", BROKEN)
    git_repo.commit("three containers, one broken")
    lab.status_files()
    supervisor.reconcile(force=True)
    cache = next(a for a in lab.queue.actions("pending") if a.name == "cache")
    assert cache.desired is not None
    supervisor.queue.move(cache.id, "pending", "approved", actor="alice")
    supervisor.queue.move(cache.id, "approved", "running", actor="executor")
    supervisor.queue.move(cache.id, "running", "failed", actor="executor", reason="engine said no")
    _observe(runtime_root, "stray", {"image": "x", "node": "local"})  # no manifest: unknown
    supervisor.reconcile(force=True)
    server = serve(runtime_root)
    try:
        _login(page, server)
        total = int(page.locator("[data-testid=total] b").inner_text())
        cards = page.locator("[data-testid^=card-]")
        counts: dict[str, int] = {}
        links: dict[str, str] = {}
        for i in range(cards.count()):
            card = cards.nth(i)
            key = str(card.get_attribute("data-testid"))
            counts[key] = int(str(card.get_attribute("data-count")))
            links[key] = str(card.get_attribute("href"))
        assert total == 4  # web (invalid), db (pending), cache (failed, re-proposed), stray
        assert sum(n for key, n in counts.items() if key != "card-failed") == total
        assert counts["card-invalid"] == 1
        assert counts["card-failed"] == 1
        _shot(page, "dashboard", viewport)
        for key, href in links.items():
            page.goto(server.url + href)
            expect(page.locator("[data-testid=resource-count]")).to_have_text(f"({counts[key]})")
    finally:
        server.close()


def test_clear_flap_on_the_resource_page_lets_the_supervisor_propose_again(
    git_repo: GitRepo, runtime_root: RuntimeRoot, supervisor: Supervisor, page: Page, viewport: str
) -> None:
    lab = UILab(git_repo, runtime_root)
    lab.container("web")
    git_repo.commit("web")
    lab.status_files()
    status = supervisor.reconcile(force=True)
    assert status is not None
    desired = status["resources"]["Container/web"]["desired"]
    [first] = lab.queue.actions("pending")
    evidence = ["a1", "a2", "a3"]
    supervisor.flap.mark(ResourceKey("Container", "web"), spec_hash(desired), first.patch, evidence)
    status = supervisor.reconcile(force=True)
    assert status is not None
    assert status["resources"]["Container/web"]["status"] == "Flapping"
    assert lab.queue.actions("pending") == []
    server = serve(runtime_root)
    try:
        _login(page, server, "/resources/Container/web")
        page.goto(server.url + "/resources/Container/web")
        expect(page.locator("[data-testid=resource-status]")).to_have_text("Flapping")
        _shot(page, "flapping", viewport)
        page.click("[data-testid=clear-flap]")
        expect(page.locator("[data-testid=notice]")).to_contain_text("Cleared the flap mark")
        [event] = [e for e in _ui_events(runtime_root, "resource.condition") if e["data"]["actor"]]
        assert (event["data"]["type"], event["data"]["status"]) == ("Flapping", "False")
        assert event["data"]["actor"] == "alice"
        supervisor.reconcile(force=True)
        assert [a.name for a in lab.queue.actions("pending")] == ["web"]
        page.reload()
        expect(page.locator("[data-testid=resource-status]")).to_have_text("Pending")
        expect(page.locator("[data-testid=clear-flap]")).to_have_count(0)
    finally:
        server.close()
