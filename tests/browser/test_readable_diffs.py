"""Readable diffs in a real browser (Debian's Chromium driven by Playwright), desktop and phone.

Real git repository, runtime root and UI server. A Container is committed,
the world is written as the observer would report that first commit, then a
second commit changes one of its variables and adds one; a File's text was
edited by hand (the world holds the edited text, as the observer reports it).
The real planner proposes both changes. On a desktop (1440x900) and a phone
(390x844):

- the queue row of the Container, expanded, shows `env.GREETING: "hello" ->
  "bye"` and reads line for line like the block `homelab plan` prints for it
  (same lines, same field order); the File's row shows its line diff with
  `+`/`-` lines marked and coloured;
- the action page reads like `homelab actions show`;
- the resource pages show the env change by name and the File's line diff;
- no diff is cut off on the phone: each diff box fits in the viewport and
  wraps its lines (its content is no wider than the box).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from playwright.sync_api import Locator, Page, expect, sync_playwright

from reconciler.queue import Action
from reconciler.runtime_root import RuntimeRoot
from tests.api.conftest import TOKEN, Server, UILab, serve
from tests.api.test_file_diff import MANIFEST, _world_file
from tests.browser.test_operator_flow import CHROMIUM_ARGS
from tests.cli.test_validate_plan import write_world
from tests.conftest import GitRepo

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
VIEWPORTS = {"desktop": (1440, 900), "phone": (390, 844)}
pytestmark = pytest.mark.browser

WEB = """\
apiVersion: homelab.reconciler/v1alpha1
kind: Container
metadata:
  name: web
spec:
  image: local/busybox:1
  command: [httpd, -f, -p, "18080"]
  env:
    GREETING: {greeting}
    LANG: C.UTF-8{extra}
  ports:
    - {{containerPort: 18080, hostPort: 8080}}
  labels:
    app: web
    com.example.homelab/a-rather-long-label-name-to-wrap-on-a-phone: {label}
"""


def homelab(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def plan_block(text: str, ref: str) -> list[str]:
    """The lines `homelab plan` prints for one resource (its heading to the blank line)."""
    for block in text.split("\n\n"):
        lines = block.splitlines()
        if lines and lines[0].startswith(f"  # {ref} "):
            return lines
    raise AssertionError(f"{ref} not in the plan:\n{text}")


class Lab:
    def __init__(self, repo: GitRepo, root: RuntimeRoot) -> None:
        self.args = ("--repo", str(repo.path), "--root", str(root.path))
        ui = UILab(repo, root)
        repo.write("manifests/web.yaml", WEB.format(greeting="hello", extra="", label="old"))
        repo.commit("web")
        first = orjson.loads(homelab("plan", "--json", *self.args))
        write_world(root, "Container", "web", first["changes"][0]["desired"])
        extra = "\n    NEW_SETTING: a-value-long-enough-to-need-wrapping-on-a-narrow-phone-screen"
        repo.write("manifests/web.yaml", WEB.format(greeting="bye", extra=extra, label="new"))
        repo.write("manifests/page.yaml", MANIFEST)
        repo.commit("web says bye; the page")
        _world_file(root)
        ui.status_files()
        self.plan = homelab("plan", *self.args)
        actions = {a.kind: a for a in ui.propose()}
        self.web: Action = actions["Container"]
        self.page: Action = actions["File"]
        self.root = root


@pytest.fixture(scope="module", params=list(VIEWPORTS))
def viewport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def lab(git_repo: GitRepo, runtime_root: RuntimeRoot) -> Lab:
    return Lab(git_repo, runtime_root)


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
        page.goto(server.url + "/login")
        page.fill("input[name=name]", "alice")
        page.fill("input[name=token]", TOKEN)
        page.click("button[type=submit]")
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
        yield page
        assert not errors, errors
        context.close()
        browser.close()


def lines_of(diff: Locator) -> list[str]:
    text: str = diff.evaluate("e => e.innerText")
    return text.rstrip("\n").split("\n")


def assert_fits(page: Page, diff: Locator) -> None:
    """The diff box is inside the viewport and wraps: nothing is cut off or hidden."""
    width = page.viewport_size["width"] if page.viewport_size else 0
    box: dict[str, Any] = diff.evaluate(
        "e => { const r = e.getBoundingClientRect();"
        " return {left: r.left, right: r.right, scroll: e.scrollWidth, client: e.clientWidth}; }"
    )
    assert box["left"] >= 0 and box["right"] <= width, (box, width)
    assert box["scroll"] <= box["client"], box  # no line runs past the box's edge


def test_queue_rows_show_env_by_name_and_the_files_line_diff_like_the_cli(
    page: Page, server: Server, lab: Lab, viewport: str
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(server.url + "/queue")
    web = page.locator("[data-testid=pending-action]", has_text="Container/web")
    details = web.locator("details.diff")
    expect(details.locator("[data-testid=diff]")).to_be_hidden()  # collapsed until clicked
    details.locator("summary").click()
    diff = details.locator("[data-testid=diff]")
    expect(diff).to_contain_text('~ env.GREETING: "hello" -> "bye"')
    expect(diff).to_contain_text('+ env.NEW_SETTING: "a-value-long-enough')
    expect(diff).not_to_contain_text("env[")
    expect(diff).not_to_contain_text("null")
    assert lines_of(diff) == plan_block(lab.plan, "Container/web")
    assert_fits(page, diff)

    file_row = page.locator("[data-testid=pending-action]", has_text="File/page")
    file_row.locator("details.diff summary").click()
    file_diff = file_row.locator("[data-testid=diff]")
    added = file_diff.locator("span.text.add", has_text="+<p>from git & co</p>")
    removed = file_diff.locator("span.text.remove", has_text="-<script>")
    expect(added).to_be_visible()
    expect(removed).to_be_visible()
    assert added.evaluate("e => getComputedStyle(e).color") != removed.evaluate(
        "e => getComputedStyle(e).color"
    )
    assert lines_of(file_diff) == plan_block(lab.plan, "File/page")
    assert_fits(page, file_diff)
    page.screenshot(path=str(SHOTS / f"diffs-queue-{viewport}.png"), full_page=True)


def test_action_page_reads_like_homelab_actions_show(
    page: Page, server: Server, lab: Lab, viewport: str
) -> None:
    for action in (lab.web, lab.page):
        shown = homelab("actions", "show", action.id, "--root", str(lab.root.path))
        block = shown.split("\n\n", 1)[1].rstrip("\n").split("\n")  # after the header lines
        page.goto(f"{server.url}/actions/{action.id}")
        diff = page.locator("[data-testid=diff]")
        expect(diff).to_be_visible()
        assert lines_of(diff) == block
        assert_fits(page, diff)
    page.screenshot(path=str(SHOTS / f"diffs-action-{viewport}.png"), full_page=True)


def test_resource_pages_show_the_env_change_and_the_line_diff(
    page: Page, server: Server, lab: Lab, viewport: str
) -> None:
    page.goto(f"{server.url}/resources/Container/web")
    diff = page.locator("[data-testid=diff]")
    expect(diff).to_contain_text('~ env.GREETING: "hello" -> "bye"')
    expect(diff).to_contain_text(
        '~ labels[com.example.homelab/a-rather-long-label-name-to-wrap-on-a-phone]: "old" -> "new"'
    )
    assert_fits(page, diff)
    for side in ("desired", "observed"):  # the specs too: the model's order, no nulls
        spec = page.locator(f"[data-testid={side}]").inner_text()
        assert "null" not in spec and "[]" not in spec, spec
        assert (
            spec.index("node:") < spec.index("image:") < spec.index("env:") < spec.index("ports:")
        )
    page.screenshot(path=str(SHOTS / f"diffs-resource-web-{viewport}.png"), full_page=True)

    page.goto(f"{server.url}/resources/File/page")
    diff = page.locator("[data-testid=diff]")
    expect(diff.locator("span.text.add", has_text="+<p>from git & co</p>")).to_be_visible()
    expect(diff.locator("span.hunk", has_text="@@ -1,2 +1,2 @@")).to_be_visible()
    text = diff.inner_text()
    assert text.index("~ sha256: ") < text.index("--- observed")  # never the fingerprint alone
    assert_fits(page, diff)
    page.screenshot(path=str(SHOTS / f"diffs-resource-file-{viewport}.png"), full_page=True)
