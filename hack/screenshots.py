#!/usr/bin/env python3
"""Screenshots of every page of the UI, desktop (1440x900) and phone (390x844).

Runs a real `homelab up` on a demo repository against a Docker engine, brings it to
a state worth showing, then has Debian's Chromium (Playwright) photograph each page
into docs/screenshots/PAGE-desktop.png and PAGE-phone.png (PNG, device scale 1, the
first screen of each page, so the files stay small; the queue also in dark mode,
queue-dark-*.png). The state:

1. a demo repository: Node `local` (the engine of $DOCKER_HOST), Containers web, db
   and worker, File motd; the supervisor proposes four creates, which are approved
   through the API and applied by the executor;
2. a second commit: web on a new image (a replace, with its per-field diff), a new
   motd text (a File line diff), worker retired (a delete), a cache (a create) and a
   `proxy` manifest with a typo (a manifest error with file:line, an Invalid
   resource);
3. one action rejected and one approved, so the history has both.

Usage (the engine from hack/dev-daemons.sh; ports of your range):
    eval "$(hack/dev-daemons.sh env)"
    .venv/bin/python hack/screenshots.py [--port 8099] [--out docs/screenshots]
The demo's containers (homelab-web, ...) and the local/busybox:2 tag it adds are
removed from the engine at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
from playwright.sync_api import Page, sync_playwright

TOP = Path(__file__).resolve().parents[1]
HOMELAB = str(Path(sys.executable).with_name("homelab"))
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
VIEWPORTS = {"desktop": (1440, 900), "phone": (390, 844)}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
NAMES = ("web", "db", "worker", "cache")

CONTAINER = """\
apiVersion: homelab.reconciler/v1alpha1
kind: Container
metadata:
  name: {name}
  labels:
    app: {name}
spec:
  image: {image}
  imagePullPolicy: Never
  command: ["sleep", "86400"]
  env:
    - name: GREETING
      value: {greeting}
  networkMode: host
"""
MOTD = """\
apiVersion: homelab.reconciler/v1alpha1
kind: File
metadata:
  name: motd
spec:
  path: {path}
  content: |
{content}"""
MOTD_FIRST = "Welcome to the lab.\nMaintenance: Sunday 02:00.\n"
MOTD_SECOND = "Welcome to the lab.\nMaintenance: Saturday 03:00 UTC.\nAsk #ops for access.\n"
TYPO = """\
apiVersion: homelab.reconciler/v1alpha1
kind: Container
metadata:
  name: proxy
spec:
  image: local/busybox:1
  restartPolicy: sometimes
  command: ["sleep", "86400"]
"""


def say(text: str) -> None:
    print(f"screenshots: {text}", file=sys.stderr, flush=True)


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def write(repo: Path, rel: str, text: str) -> None:
    target = repo / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def commit(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def motd(path: Path, text: str) -> str:
    return MOTD.format(path=path, content=textwrap.indent(text, "    "))


def until(check: Callable[[], Any], what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.3)
    raise SystemExit(f"screenshots: timed out waiting for {what}")


class Api:
    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.token = token

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("X-Operator", "alice")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with DIRECT.open(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def actions(self, state: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.call("GET", f"/api/actions?state={state}")
        return found


def demo_repo(repo: Path, files: Path, docker_host: str) -> None:
    git(repo.parent, "init", "-q", "-b", "main", str(repo))
    git(repo, "config", "user.email", "demo@example.invalid")
    git(repo, "config", "user.name", "Demo Operator")
    git(repo, "config", "commit.gpgsign", "false")
    node = f"""\
apiVersion: homelab.reconciler/v1alpha1
kind: Node
metadata:
  name: local
spec:
  dockerHost: "{docker_host}"
  allowedRoots: ["{files}"]
"""
    write(repo, "manifests/node.yaml", node)
    for name in ("web", "db", "worker"):
        write(
            repo,
            f"manifests/{name}.yaml",
            CONTAINER.format(name=name, image="local/busybox:1", greeting="hello"),
        )
    write(repo, "manifests/motd.yaml", motd(files / "motd", MOTD_FIRST))
    commit(repo, "demo: three containers and the motd")


def second_commit(repo: Path, files: Path) -> None:
    write(
        repo,
        "manifests/web.yaml",
        CONTAINER.format(name="web", image="local/busybox:2", greeting="hello, lab"),
    )
    write(repo, "manifests/motd.yaml", motd(files / "motd", MOTD_SECOND))
    git(repo, "rm", "-q", "manifests/worker.yaml")
    write(
        repo,
        "manifests/cache.yaml",
        CONTAINER.format(name="cache", image="local/busybox:1", greeting="hello"),
    )
    write(repo, "manifests/proxy.yaml", TYPO)
    commit(repo, "demo: web on busybox 2, a new motd, worker retired, a cache, a proxy")


def report(api: Api, log: Path) -> bool:
    """Stop early, saying why, when an action failed (False: keep waiting)."""
    failed = api.actions("failed")
    if failed:
        reasons = [f"{a['operation']} {a['kind']}/{a['name']}" for a in failed]
        tail = log.read_text()[-3000:]
        raise SystemExit(f"screenshots: actions failed: {reasons}\n{tail}")
    return False


def login(page: Page, base: str, token: str) -> None:
    page.goto(base + "/login")
    page.fill("input[name=name]", "alice")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")


def photograph(base: str, token: str, pages: dict[str, str], out: Path) -> list[Path]:
    written = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            for viewport, (width, height) in VIEWPORTS.items():
                context = browser.new_context(
                    viewport={"width": width, "height": height}, device_scale_factor=1
                )
                dark = browser.new_context(
                    viewport={"width": width, "height": height},
                    device_scale_factor=1,
                    color_scheme="dark",
                )
                night = dark.new_page()
                login(night, base, token)
                night.goto(base + "/queue")
                night.locator("[data-testid=pending-action] summary").first.click()
                night.wait_for_timeout(300)
                target = out / f"queue-dark-{viewport}.png"
                night.screenshot(path=str(target))
                written.append(target)
                dark.close()
                page = context.new_page()
                page.goto(base + "/login")
                target = out / f"login-{viewport}.png"
                page.screenshot(path=str(target))
                written.append(target)
                login(page, base, token)
                for name, path in pages.items():
                    page.goto(base + path)
                    page.wait_for_load_state("load")
                    if name == "queue":  # one diff open, as an operator reads it
                        page.locator(
                            "[data-testid=pending-action][data-operation=replace] summary"
                        ).first.click()
                    page.wait_for_timeout(300)  # relative times worded, fonts settled
                    target = out / f"{name}-{viewport}.png"
                    page.screenshot(path=str(target))
                    written.append(target)
                context.close()
        finally:
            browser.close()
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("HOMELAB_SHOTS_PORT", 8099)))
    parser.add_argument("--out", type=Path, default=TOP / "docs" / "screenshots")
    args = parser.parse_args()
    docker_host = os.environ.get("DOCKER_HOST")
    if not docker_host:
        raise SystemExit('screenshots: set DOCKER_HOST (eval "$(hack/dev-daemons.sh env)")')
    engine = docker.DockerClient(base_url=docker_host)
    try:
        had_two = any("local/busybox:2" in i.tags for i in engine.images.list("local/busybox"))
        engine.images.get("local/busybox:1").tag("local/busybox", "2")  # the replace's image
    except docker.errors.ImageNotFound:
        raise SystemExit(
            "screenshots: local/busybox:1 is missing: hack/dev-daemons.sh start builds it"
        ) from None
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="homelab-shots-") as tmp:
        work = Path(tmp)
        repo, root, files = work / "repo", work / "root", work / "files"
        files.mkdir()
        demo_repo(repo, files, docker_host)
        base = f"http://127.0.0.1:{args.port}"
        log = (work / "up.log").open("w")
        up = subprocess.Popen(
            [HOMELAB, "up", "--repo", str(repo), "--root", str(root), "--port", str(args.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "DOCKER_HOST": docker_host},
        )
        try:
            token_file = root / "state" / "ui_token"
            until(token_file.exists, "the UI token")
            api = Api(base, token_file.read_text().strip())
            until(lambda: len(api.actions("pending")) >= 4, "the four creates")
            for action in api.actions("pending"):
                api.call("POST", f"/api/actions/{action['id']}/approve", {})
            say("approved the creates; waiting for the executor")
            until(
                lambda: len(api.actions("done")) >= 4 or report(api, work / "up.log"),
                "the creates to be applied",
                180,
            )
            until(
                lambda: api.call("GET", "/summary")["resources"]["inSync"] >= 4,
                "the world to be in sync",
            )
            second_commit(repo, files)
            say("second commit; waiting for the proposals")
            until(lambda: len(api.actions("pending")) >= 4, "replace, update, delete, create", 180)
            pending = {(a["operation"], a["name"]): a["id"] for a in api.actions("pending")}
            replace = pending[("replace", "web")]
            update = pending[("update", "motd")]
            api.call(
                "POST",
                f"/api/actions/{pending[('create', 'cache')]}/reject",
                {"reason": "not this week"},
            )
            pages = {
                "dashboard": "/",
                "resources": "/resources",
                "resource": "/resources/Container/web",
                "queue": "/queue",
                "action": f"/actions/{replace}",
                "file-diff": f"/actions/{update}",
                "events": "/events",
                "errors": "/errors",
                "not-found": "/no/such/page",
            }
            written = photograph(base, api.token, pages, args.out)
        finally:
            up.terminate()
            try:
                up.wait(timeout=30)
            except subprocess.TimeoutExpired:
                up.kill()
            log.close()
            for name in NAMES:
                with contextlib.suppress(docker.errors.NotFound):
                    engine.containers.get(f"homelab-{name}").remove(force=True)
            if not had_two:  # the tag it added (the image itself stays, as local/busybox:1)
                with contextlib.suppress(docker.errors.APIError):
                    engine.images.remove("local/busybox:2")
    total = sum(p.stat().st_size for p in written)
    for path in written:
        shown = path.relative_to(TOP) if path.is_relative_to(TOP) else path
        say(f"{shown}  {path.stat().st_size // 1024} KiB")
    say(f"{len(written)} screenshots, {total // 1024} KiB in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
