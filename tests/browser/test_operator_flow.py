"""The operator's day in a real browser: Debian's Chromium driven by Playwright.

Real git repository, the real supervisor and executor (against the test
Docker engine) and the UI on uvicorn. Log in, commit a manifest and watch
the pending action appear without a reload, open its diff, approve it and
watch it go running -> done, then reject another with a reason. Screenshots
go to artifacts/screenshots/.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from reconciler.drivers.base import DriverSettings
from reconciler.executor.service import Executor
from reconciler.runtime_root import RuntimeRoot
from reconciler.supervisor.service import Supervisor, SupervisorSettings
from tests.api.conftest import CONTAINER, TOKEN, UILab, serve
from tests.conftest import GitRepo

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

pytestmark = [pytest.mark.browser, pytest.mark.docker]


class Services:
    """The real supervisor and executor in threads, stopped together."""

    def __init__(self, repo: Path, root: RuntimeRoot) -> None:
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        supervisor = Supervisor(repo, root, settings=SupervisorSettings(resync=2, debounce_ms=50))
        executor = Executor(root, repo, settings=DriverSettings(stop_grace=1))
        self.threads = [
            threading.Thread(target=self._run, args=(s,), daemon=True)
            for s in (supervisor, executor)
        ]

    def _run(self, service: Any) -> None:
        try:
            service.run(self.stop)
        except BaseException as exc:
            self.errors.append(exc)

    def __enter__(self) -> Services:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)
        assert not self.errors, self.errors


@pytest.fixture
def page() -> Iterator[Page]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 412, "height": 915})  # a phone
        yield context.new_page()
        context.close()
        browser.close()


@pytest.fixture
def prefix(docker_client: Any) -> Iterator[str]:
    name = "ui" + uuid.uuid4().hex[:6]
    yield name
    for container in docker_client.containers.list(all=True):
        if container.name.startswith(f"homelab-{name}"):
            container.remove(force=True)


def test_operator_approves_one_action_and_rejects_another(
    git_repo: GitRepo, runtime_root: RuntimeRoot, docker_host: str, page: Page, prefix: str
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    lab = UILab(git_repo, runtime_root)
    node = {
        "apiVersion": "homelab.reconciler/v1alpha1",
        "kind": "Node",
        "metadata": {"name": "local"},
        "spec": {"dockerHost": docker_host},
    }
    git_repo.write("manifests/node.yaml", orjson.dumps(node).decode() + "\n")
    git_repo.commit("the node")
    lab.status_files()
    server = serve(runtime_root)
    try:
        with Services(git_repo.path, runtime_root):
            page.goto(server.url + "/queue")
            expect(page).to_have_url(server.url + "/login?next=/queue")
            page.fill("input[name=name]", "alice")
            page.fill("input[name=token]", TOKEN)
            page.click("button[type=submit]")
            expect(page.get_by_role("heading", name="Action queue")).to_be_visible()
            page.screenshot(path=str(SHOTS / "01-queue-empty.png"), full_page=True)

            web = f"{prefix}-web"
            git_repo.write(
                f"manifests/{web}.yaml", CONTAINER.format(name=web, label="core", sleep=3600)
            )
            git_repo.commit("add web")
            card = page.locator("[data-testid=pending-action]", has_text=f"Container/{web}")
            expect(card).to_be_visible(timeout=20000)  # live: no reload
            page.screenshot(path=str(SHOTS / "02-pending-appeared.png"), full_page=True)

            card.locator("[data-testid=open-action]").click()
            diff = page.locator("[data-testid=diff]")
            expect(diff).to_contain_text(f"+ Container/{web}")
            expect(diff).to_contain_text('image: "local/busybox:1"')
            page.screenshot(path=str(SHOTS / "03-action-diff.png"), full_page=True)

            page.click("[data-testid=approve]")
            state = page.locator("[data-testid=action-state]")
            expect(page.locator("[data-testid=timeline]")).to_contain_text("running", timeout=30000)
            expect(state).to_have_text("done", timeout=60000)
            expect(page.locator("[data-testid=timeline]")).to_contain_text("approved by alice")
            page.screenshot(path=str(SHOTS / "04-action-done.png"), full_page=True)

            extra = f"{prefix}-extra"
            git_repo.write(
                f"manifests/{extra}.yaml", CONTAINER.format(name=extra, label="x", sleep=60)
            )
            git_repo.commit("add extra")
            page.goto(server.url + "/queue")
            card = page.locator("[data-testid=pending-action]", has_text=f"Container/{extra}")
            expect(card).to_be_visible(timeout=20000)
            card.locator("input[name=reason]").fill("not on a Friday")
            card.locator("[data-testid=reject]").click()
            expect(page.locator("[data-testid=notice]")).to_contain_text("Rejected")
            expect(card).to_have_count(0)
            page.screenshot(path=str(SHOTS / "05-rejected.png"), full_page=True)

        rejected = [
            orjson.loads(line)
            for path in runtime_root.events.glob("*/ui.jsonl")
            for line in path.read_bytes().splitlines()
            if b"action.rejected" in line
        ]
        assert [e["data"]["reason"] for e in rejected] == ["not on a Friday"]
        assert rejected[0]["data"]["actor"] == "alice"
    finally:
        server.close()
