"""The events page and the disk figures over a real uvicorn server and a real log.

Events written by real `EventLog`s and a compressed day written with
zstandard: the page shows dates with relative times, data as `key: value`
(no Python literals), severity classes, pages older and newer through
every day, and filters loosely; `/summary` and `/metrics` carry the disk
figures and `DiskPressure` once the threshold is above the free space.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from reconciler.api.config import UISettings
from reconciler.errors import ConfigError
from reconciler.events.log import EventLog
from reconciler.resources.key import ResourceKey
from reconciler.runtime_root import RuntimeRoot
from tests.api.conftest import TOKEN, Server, session_login, wait_for
from tests.api.test_eventbrowse import write_log

PORT = 18411


def start(root: RuntimeRoot, port: int = PORT, **overrides: object) -> Server:
    return Server(UISettings(root=root, port=port, token=TOKEN, **overrides)).start()  # type: ignore[arg-type]


@pytest.fixture
def ui(runtime_root: RuntimeRoot) -> Iterator[Server]:
    server = start(runtime_root)
    yield server
    server.close()


def ids_on(html: str) -> list[str]:
    return re.findall(r'data-event="([^"]+)"', html)


def link(html: str, testid: str) -> str | None:
    m = re.search(rf'href="([^"]+)" data-testid="{testid}"', html)
    return m.group(1).replace("&amp;", "&") if m else None


def test_events_page_pages_the_whole_log_both_ways(runtime_root: RuntimeRoot) -> None:
    events = write_log(runtime_root, 700, days=3, compress=(0,))
    ids = [e["id"] for e in events]
    server = start(runtime_root, PORT + 1)
    try:
        client = session_login(server)
        seen: list[str] = []
        url: str | None = "/events?limit=50"
        while url:
            html = client.get(url).text
            seen.extend(ids_on(html))
            url = link(html, "older")
        assert seen == ids[::-1]  # the compressed first day included, far past any memory tail
        last = ids_on(html)  # the oldest page, newest first
        assert link(html, "older") is None and 'class="meta">Oldest' in html
        back: list[str] = []
        url = link(html, "newer")
        while url:
            html = client.get(url).text
            back.extend(ids_on(html)[::-1])
            url = link(html, "newer")
        assert back == ids[len(last) :]  # every event after the page we came back from
        assert link(html, "newer") is None and 'class="meta">Newest' in html
    finally:
        server.close()


def test_events_page_filters_and_readable_data(ui: Server, runtime_root: RuntimeRoot) -> None:
    log = EventLog(runtime_root, "observer")
    log.append("observed.resource", ResourceKey("Container", "Web-Blue"), {"healthy": False})
    log.append("action.failed", ResourceKey("Container", "db"), {"outcome": {"ok": None}})
    log.append("action.done", ResourceKey("Container", "web-green"), {"changed": True, "n": 3})
    log.close()
    client = session_login(ui)
    html = wait_for(lambda: (t := client.get("/events").text) and "web-green" in t and t)
    assert "healthy: false" in html and "changed: true" in html and "n: 3" in html
    assert "outcome:\n  ok: null" in html
    assert "False" not in html and "True" not in html.replace('"True"', "")
    assert "{&#39;" not in html and "{'" not in html
    assert re.search(
        r'<time datetime="[^"]+" title="\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ UTC">', html
    )
    assert "just now" in html
    assert 'class="etype sev-bad">action.failed' in html
    assert 'class="etype sev-ok">action.done' in html
    web = client.get("/events", params={"resource": "WEB", "type": "OBSERVED"}).text
    assert len(ids_on(web)) == 1 and "Web-Blue" in web
    text = client.get("/events", params={"text": "GREEN"}).text
    assert len(ids_on(text)) == 1 and "web-green" in text
    future = client.get("/events", params={"since": "2999-01-01T00:00"}).text
    assert ids_on(future) == [] and "No events" in future
    past = client.get("/events", params={"until": "2000-01-01"}).text
    assert ids_on(past) == []
    bad = client.get("/events", params={"since": "yesterday-ish"}).text
    assert "is not a date or time" in bad and len(ids_on(bad)) == 3


def test_summary_and_metrics_show_disk_figures(runtime_root: RuntimeRoot) -> None:
    write_log(runtime_root, 200, days=2, compress=(0,))
    (runtime_root.world / "Container").mkdir(parents=True, exist_ok=True)
    server = start(runtime_root, PORT + 2)
    try:
        summary = httpx.get(server.url + "/summary").json()["disk"]
        size = sum(p.stat().st_size for p in runtime_root.events.rglob("*") if p.is_file())
        assert summary["eventLogBytes"] == size
        assert summary["freeBytes"] > 0 and summary["totalBytes"] >= summary["freeBytes"]
        assert summary["condition"]["type"] == "DiskPressure"
        assert summary["pressure"] is (summary["freeBytes"] < summary["warnBelowBytes"])
        metrics = server.client().get("/metrics").text
        assert f"homelab_event_log_bytes {size}" in metrics
        assert re.search(r"^homelab_disk_free_bytes \d+$", metrics, re.M)
        assert re.search(r"^homelab_world_bytes \d+$", metrics, re.M)
    finally:
        server.close()
    # a threshold above the free space: DiskPressure, on /summary, /metrics and every page
    server = start(runtime_root, PORT + 3, disk_warn_percent=100.0, disk_warn_bytes=1 << 62)
    try:
        disk = httpx.get(server.url + "/summary").json()["disk"]
        assert disk["pressure"] is True and disk["condition"]["status"] == "True"
        assert disk["condition"]["reason"] == "LowSpace"
        assert "homelab_disk_pressure 1" in server.client().get("/metrics").text
        page = session_login(server).get("/events").text
        assert 'data-testid="disk-banner"' in page and "Disk space low" in page
    finally:
        server.close()


def test_disk_thresholds_come_from_the_environment_too(
    runtime_root: RuntimeRoot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOMELAB_DISK_WARN_PERCENT", "12.5")
    monkeypatch.setenv("HOMELAB_DISK_WARN_BYTES", "2048")
    settings = UISettings(root=runtime_root)  # what `homelab up` builds
    assert (settings.disk_warn_percent, settings.disk_warn_bytes) == (12.5, 2048)
    monkeypatch.setenv("HOMELAB_DISK_WARN_PERCENT", "150")
    with pytest.raises(ConfigError, match="HOMELAB_DISK_WARN_PERCENT='150'"):
        UISettings(root=runtime_root)
