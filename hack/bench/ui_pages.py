"""Page figures of the operator UI: the queue at 1,000 pending, dashboard and resource at 10,000.

Builds a runtime root with `--resources` Container world documents (spread
over four nodes), the supervisor status for them and `--pending` pending
actions proposed through the real queue (updates, creates and deletes with
the diffs `homelab plan` renders), starts `homelab run ui` on a loopback
port and measures:

- server time: wall time of `GET` over a kept-alive loopback connection,
  body read (`--samples` requests after 3 warm-ups), median and range, and
  the body size, for the queue page, its second page, the dashboard, one
  resource page, the resource list and one action page;
- Chromium (Debian's, driven by Playwright): the queue page's
  time to interactive (the later of DOMContentLoaded's end and the end of the
  last long task of the load), the main thread's long tasks during the load,
  and then, while one action is decided every second for `--live-seconds`
  (the live stream patches the page), the long-task time, how far the row
  being typed in (the 31st, below the decided ones) moved on screen and
  whether its field kept the focus and the typed text.

    .venv/bin/python hack/bench/ui_pages.py [--pending 1000] [--resources 10000] [--runs 3]

The port comes from `--port` (default 18710). Figures are printed; nothing
is asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from reconciler.atomic_files import atomic_write_json
from reconciler.diff import diff_resource
from reconciler.events.log import EventLog
from reconciler.queue import ActionQueue, new_action
from reconciler.queue.action import now_iso
from reconciler.runtime_root import RuntimeRoot
from reconciler.world import new_world_doc, world_path

STATUSES = ("InSync", "InSync", "InSync", "Drifted", "Invalid", "Flapping")
NODES = ("nas", "pi", "edge", "lab")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic"]


def _spec(i: int, image: str = "local/busybox:1") -> dict[str, Any]:
    return {
        "image": image,
        "command": ["sleep", str(3600 + i)],
        "node": NODES[i % len(NODES)],
        "env": [{"name": "TZ", "value": "UTC"}],
        "labels": {"app": f"app-{i:05d}"},
        "ports": [{"container": 8080, "host": 20000 + i % 10000}],
    }


def build_root(root: RuntimeRoot, count: int, pending: int) -> list[str]:
    """The world, the supervisor status and `pending` actions; their ids."""
    root.ensure()
    resources = {}
    for i in range(count):
        name = f"app-{i:05d}"
        doc = new_world_doc("Container", name)
        doc["metadata"]["labels"] = {"app": name, "tier": "web"}
        doc["status"].update(exists=True, managed=True, observed=_spec(i), health="Healthy")
        atomic_write_json(world_path(root, "Container", name), doc, durable=False)
        resources[f"Container/{name}"] = {
            "status": STATUSES[i % len(STATUSES)],
            "errors": [],
            "action": None,
        }
    actions = []
    for i in range(pending):
        name = f"app-{i:05d}"
        if i % 10 == 9:  # a delete
            change = diff_resource("Container", name, None, _spec(i))
        elif i % 10 == 8:  # a create (a resource not observed yet)
            change = diff_resource("Container", f"new-{i:05d}", _spec(i), None)
        else:
            want = _spec(i, "local/busybox:2")
            want["env"] = [{"name": "TZ", "value": "Europe/Paris"}]
            change = diff_resource("Container", name, want, _spec(i))
        assert change is not None
        actions.append(new_action(change, commit="0" * 40, basis="", manifest=None))
    events = EventLog(root, "supervisor")
    ActionQueue(root, events).propose_many(actions)
    events.close()
    atomic_write_json(
        root.state / "supervisor_status.json",
        {
            "commit": "0" * 40,
            "updatedAt": now_iso(),
            "lastResyncAt": now_iso(),
            "resources": resources,
            "errors": [],
        },
    )
    atomic_write_json(
        root.state / "observer_status.json",
        {"caughtUp": True, "updatedAt": now_iso(), "lagBytes": 0, "eventsFolded": count},
    )
    return [a.id for a in actions]


def wait_up(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit("the UI did not start")


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):7.1f} [{min(values):.1f}-{max(values):.1f}]"


def server_figures(url: str, token: str, paths: list[str], samples: int) -> None:
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/html"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        print(f"server time over loopback, {samples} requests each, ms median [min-max]:")
        for path in paths:
            for _ in range(3):
                client.get(path).raise_for_status()
            times, size = [], 0
            for _ in range(samples):
                start = time.perf_counter()
                response = client.get(path)
                body = response.content
                times.append((time.perf_counter() - start) * 1000)
                response.raise_for_status()
                size = len(body)
            print(f"  {path:<34} {_spread(times)} ms  {size / 1024:8.1f} KB")


_LONG_TASKS = """
window.__long = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__long.push([e.startTime, e.duration]);
}).observe({type: "longtask", buffered: true});
"""


def browser_figures(url: str, token: str, root: RuntimeRoot, ids: list[str], args: Any) -> None:
    from playwright.sync_api import sync_playwright

    tti, load_block, live_block, shift, lost_focus = [], [], [], [], 0
    queue = ActionQueue(root, EventLog(root, "bench"))
    decided = iter(reversed(ids))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for _ in range(args.runs):
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            page = context.new_page()
            page.goto(url + "/login")
            page.fill("input[name=name]", "bench")
            page.fill("input[name=token]", token)
            page.click("button[type=submit]")
            page.wait_for_url(url + "/")
            page.add_init_script(_LONG_TASKS)
            page.goto(url + "/queue", wait_until="load")
            page.wait_for_timeout(1500)
            nav = page.evaluate(
                "(() => { const n = performance.getEntriesByType('navigation')[0];"
                " return [n.domContentLoadedEventEnd, n.loadEventEnd]; })()"
            )
            long = page.evaluate("window.__long")
            last = max((s + d for s, d in long), default=0.0)
            tti.append(max(nav[0], last))
            load_block.append(sum(max(0.0, d - 50) for _, d in long))
            # Live phase: type into a row below the ones decided, then decide one a second.
            field = (
                page.locator("[data-testid=pending-action]").nth(30).locator("input[name=reason]")
            )
            field.scroll_into_view_if_needed()
            field.fill("typing")
            field_id = field.get_attribute("id")
            probe = (
                "(id) => { const e = document.getElementById(id);"
                " return [e ? e.getBoundingClientRect().top : null,"
                " document.activeElement.id, e ? e.value : null]; }"
            )
            before = page.evaluate(probe, field_id)
            page.evaluate("window.__long = []")
            for _ in range(args.live_seconds):
                queue.move(next(decided), "pending", "rejected", actor="bench", reason="bench")
                page.wait_for_timeout(1000)
            page.wait_for_timeout(500)
            after = page.evaluate(probe, field_id)
            long = page.evaluate("window.__long")
            live_block.append(sum(max(0.0, d - 50) for _, d in long))
            shift.append(abs((after[0] or 0) - before[0]))
            lost_focus += after[1] != field_id or after[2] != "typing"
            context.close()
        browser.close()
    print(f"Chromium, queue page, {args.runs} runs, median [min-max]:")
    print(f"  time to interactive          {_spread(tti)} ms")
    print(f"  blocking time of the load    {_spread(load_block)} ms (long tasks beyond 50 ms)")
    print(
        f"  blocking time, {args.live_seconds} live updates {_spread(live_block)} ms;"
        f" the row being typed in moved {_spread(shift)} px on screen;"
        f" focus or typed text lost in {lost_focus}/{args.runs} runs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pending", type=int, default=1000)
    parser.add_argument("--resources", type=int, default=10000)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--live-seconds", type=int, default=10)
    parser.add_argument("--port", type=int, default=18710)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ui-pages-"))
    root = RuntimeRoot(tmp / "root")
    started = time.perf_counter()
    ids = build_root(root, args.resources, args.pending)
    print(
        f"ui_pages: {args.resources} resources, {args.pending} pending actions "
        f"(built in {time.perf_counter() - started:.1f} s), one uvicorn worker"
    )
    homelab = str(Path(sys.executable).parent / "homelab")
    server = subprocess.Popen(
        [homelab, "run", "ui", "--root", str(root.path), "--port", str(args.port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "LITESTAR_WARN_IMPLICIT_SYNC_TO_THREAD": "0"},
    )
    url = f"http://127.0.0.1:{args.port}"
    try:
        wait_up(url)
        token = (root.state / "ui_token").read_text().strip()
        paths = [
            "/queue",
            "/queue?page=2",
            "/",
            "/resources/Container/app-00042",
            "/resources",
            f"/actions/{ids[0]}",
        ]
        server_figures(url, token, paths, args.samples)
        if not args.no_browser:
            browser_figures(url, token, root, ids, args)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
