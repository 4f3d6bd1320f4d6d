"""The JSON API and live stream against a real server: what operators and scripts read."""

from __future__ import annotations

import httpx

from reconciler.diff import render_change
from tests.api.conftest import TOKEN, Server, UILab, serve, wait_for


def test_summary_counts_pending_actions_and_names_the_commit(server: Server, lab: UILab) -> None:
    client = server.client()
    assert client.get("/summary").json()["actions"]["pending"] == 0
    lab.propose()
    summary = wait_for(
        lambda: (s := client.get("/summary").json())["actions"]["pending"] == 2 and s
    )
    assert summary["actions"]["pending"] == 2
    assert summary["resources"]["pending"] == 2
    assert summary["observer"]["caughtUp"] is True
    assert summary["desiredCommit"] == lab.repo.head


def test_resource_detail_shows_the_diff_exactly_as_plan_renders_it(
    server: Server, lab: UILab
) -> None:
    actions = {a.name: a for a in lab.propose()}
    client = server.client()
    detail = wait_for(
        lambda: (
            client.get("/api/resources/Container/web").json().get("diff")
            and client.get("/api/resources/Container/web").json()
        )
    )
    assert detail["diff"] == actions["web"].summary == render_change(actions["web"].change())
    assert detail["desired"]["image"] == "local/busybox:1"
    assert detail["observed"] is None
    assert [a["id"] for a in detail["actions"]] == [actions["web"].id]
    assert client.get("/api/resources/Container/nope").status_code == 404
    only = client.get("/api/resources", params={"kind": "Container", "status": "Pending"}).json()
    assert sorted(r["name"] for r in only) == ["db", "web"]


def test_reject_needs_a_reason_and_records_it(server: Server, lab: UILab) -> None:
    action = lab.propose()[0]
    client = server.client()
    assert client.post(f"/api/actions/{action.id}/reject", json={}).status_code == 400
    done = client.post(f"/api/actions/{action.id}/reject", json={"reason": "wrong tag"})
    assert done.status_code == 200
    assert done.json()["state"] == "rejected"
    events = wait_for(
        lambda: client.get("/api/events", params={"type": "action.rejected"}).json()["events"]
    )
    assert events[0]["data"]["reason"] == "wrong tag"
    again = client.post(f"/api/actions/{action.id}/approve")
    assert again.status_code == 409
    assert again.json()["state"] == "rejected"


def test_events_page_backwards_with_a_cursor(server: Server, lab: UILab) -> None:
    client = server.client()
    batch = {"agent": "nas", "events": [{"type": "probe.tick", "data": {"n": i}} for i in range(5)]}
    assert client.post("/api/events", json=batch).status_code == 201
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"source": "ingest-nas", "limit": 2}
        if cursor:
            params["before"] = cursor
        page = client.get("/api/events", params=params).json()
        seen.extend(e["data"]["n"] for e in page["events"])
        cursor = page["next"]
        if not cursor:
            break
    assert seen == [4, 3, 2, 1, 0]


def test_a_new_pending_action_is_pushed_to_open_streams(server: Server, lab: UILab) -> None:
    with server.client() as client, client.stream("GET", "/live") as stream:
        lines = stream.iter_lines()
        assert next(lines) == "event: changed"  # the hello: pages refresh once on connect
        lab.propose()
        for line in lines:
            if line.startswith("data:") and '"pending":2' in line:
                break


def test_readiness_waits_for_the_observer(lab: UILab) -> None:
    lab.status_files(caught_up=False)
    srv = serve(lab.root)
    try:
        response = httpx.get(srv.url + "/readyz")
        assert response.status_code == 503
        assert "not caught up" in response.json()["checks"]["observer"]
        lab.status_files(caught_up=True)
        wait_for(lambda: httpx.get(srv.url + "/readyz").status_code == 200)
    finally:
        srv.close()


def test_metrics_are_prometheus_text(server: Server, lab: UILab) -> None:
    lab.propose()
    client = server.client()
    text = wait_for(lambda: (t := client.get("/metrics").text) and 'state="pending"} 2' in t and t)
    assert "# TYPE homelab_queue_actions gauge" in text
    assert "homelab_events_folded_total 7" in text


def test_pages_link_under_the_proxy_sub_path(lab: UILab) -> None:
    srv = serve(lab.root, base_path="/homelab")
    try:
        anon = httpx.get(srv.url + "/queue", headers={"Accept": "text/html"})
        assert anon.headers["location"] == "/homelab/login?next=/queue"
        login = httpx.post(srv.url + "/login", data={"token": TOKEN, "name": "al"})
        assert login.headers["location"] == "/homelab/"
        assert "Path=/homelab/" in login.headers["set-cookie"]
        page = httpx.get(srv.url + "/", headers={"Authorization": f"Bearer {TOKEN}"}).text
        assert 'sse-connect="/homelab/live"' in page
        assert 'href="/homelab/static/app.css"' in page
    finally:
        srv.close()
