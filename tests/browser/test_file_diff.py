"""A changed file's line diff in a real browser (Debian's Chromium driven by Playwright).

The same set-up as tests/api/test_file_diff.py (real git, root and UI server;
the world holds the file's text as the observer reports it): log in, open
the proposed action and see the unified diff under the fingerprint line,
coloured by line, with the file's `<script>` shown as text and never run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from reconciler.runtime_root import RuntimeRoot
from tests.api.conftest import TOKEN, UILab, serve
from tests.api.test_file_diff import MANIFEST, _world_file
from tests.browser.test_operator_flow import CHROMIUM_ARGS
from tests.conftest import GitRepo

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
pytestmark = pytest.mark.browser


@pytest.fixture
def page() -> Iterator[Page]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1000, "height": 900})
        yield context.new_page()
        context.close()
        browser.close()


def test_the_operator_reads_a_files_line_diff_before_approving(
    git_repo: GitRepo, runtime_root: RuntimeRoot, page: Page
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    lab = UILab(git_repo, runtime_root)
    git_repo.write("manifests/page.yaml", MANIFEST)
    git_repo.commit("page")
    lab.status_files()
    _world_file(runtime_root)
    [action] = lab.propose()
    alerts: list[str] = []
    page.on("dialog", lambda d: (alerts.append(d.message), d.dismiss()))
    server = serve(runtime_root)
    try:
        page.goto(f"{server.url}/actions/{action.id}")
        page.fill("input[name=name]", "alice")
        page.fill("input[name=token]", TOKEN)
        page.click("button[type=submit]")
        page.goto(f"{server.url}/actions/{action.id}")
        diff = page.locator("[data-testid=diff]")
        expect(diff).to_contain_text("--- observed")
        expect(diff.locator("span.remove", has_text="-<script>")).to_have_text(
            '        -<script>alert("edited by hand")</script>'
        )
        expect(diff.locator("span.add", has_text="+<p>")).to_have_text(
            "        +<p>from git & co</p>"
        )
        expect(diff.locator("span.hunk", has_text="@@")).to_have_count(1)
        headers = ["--- observed", "+++ desired", "@@ -1,2 +1,2 @@"]
        expect(diff.locator("span.hunk")).to_have_text([f"        {h}" for h in headers])
        assert diff.locator("script").count() == 0  # text, not an element
        page.screenshot(path=str(SHOTS / "file-line-diff.png"), full_page=True)
        assert alerts == []
    finally:
        server.close()
