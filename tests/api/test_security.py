"""Security of the UI against a real uvicorn server: auth, CSRF, proxy identity, escaping."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import orjson

from reconciler.atomic_files import atomic_write_json
from reconciler.runtime_root import RuntimeRoot
from reconciler.world import new_world_doc, world_path
from tests.api.conftest import TOKEN, Server, UILab, csrf_of, serve, session_login, wait_for


def all_events(root: RuntimeRoot) -> list[dict[str, Any]]:
    return [
        orjson.loads(line)
        for path in sorted(root.events.glob("*/*.jsonl"))
        for line in path.read_bytes().splitlines()
        if line.strip()
    ]


def approvals(root: RuntimeRoot) -> list[dict[str, Any]]:
    return [e for e in all_events(root) if e["type"] == "action.approved"]


def test_unauthenticated_requests_get_401_or_a_login_redirect(server: Server) -> None:
    anon = server.client(token=False)
    for path in ("/api/resources", "/api/actions", "/api/events", "/metrics", "/schema"):
        response = anon.get(path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"].startswith("Bearer")
    page = anon.get("/queue", headers={"Accept": "text/html"})
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/queue"
    assert anon.post("/api/actions/abc/approve").status_code == 401
    wrong = httpx.get(server.url + "/api/resources", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401


def test_health_readiness_and_summary_stay_open_and_name_no_resource(
    server: Server, lab: UILab
) -> None:
    lab.propose()
    anon = server.client(token=False)
    assert anon.get("/healthz").status_code == 200
    assert anon.get("/readyz").status_code == 200
    summary = anon.get("/summary")
    assert summary.status_code == 200
    assert summary.json()["desiredCommit"] == lab.repo.head
    assert "web" not in summary.text and "busybox" not in summary.text


def test_login_sets_a_strict_httponly_session_cookie(server: Server) -> None:
    client = httpx.Client(base_url=server.url)
    bad = client.post("/login", data={"token": "wrong", "name": "eve"})
    assert bad.status_code == 401
    assert "homelab_session" not in bad.headers.get("set-cookie", "")
    good = client.post("/login", data={"token": TOKEN, "name": "alice"})
    assert good.status_code == 303
    cookie = good.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert "secure" not in cookie  # plain HTTP here; TLS gets Secure
    assert client.get("/api/resources").status_code == 200


def test_session_cookie_is_secure_when_configured_for_tls(lab: UILab) -> None:
    srv = serve(lab.root, secure_cookies=True)
    try:
        response = httpx.post(srv.url + "/login", data={"token": TOKEN, "name": "alice"})
        assert "secure" in response.headers["set-cookie"].lower()
    finally:
        srv.close()


def test_approve_without_csrf_token_is_403_and_writes_no_event(server: Server, lab: UILab) -> None:
    action = lab.propose()[0]
    browser = session_login(server)
    api = browser.post(f"/api/actions/{action.id}/approve", json={})
    assert api.status_code == 403
    form = browser.post(f"/queue/{action.id}/approve", data={"back": "/queue"})
    assert form.status_code == 403
    forged = browser.post(f"/queue/{action.id}/approve", data={"_csrf": "0" * 64})
    assert forged.status_code == 403
    assert approvals(lab.root) == []
    assert lab.queue.find(action.id) == "pending"
    token = csrf_of(browser)
    ok = browser.post(f"/api/actions/{action.id}/approve", headers={"X-CSRF-Token": token})
    assert ok.status_code == 200, ok.text
    assert [e["data"]["actor"] for e in approvals(lab.root)] == ["alice"]


def test_forged_identity_header_from_a_non_proxy_address_is_rejected(lab: UILab) -> None:
    srv = serve(lab.root, auth_mode="proxy", trusted_proxies=("10.99.0.1",))
    try:
        forged = httpx.get(
            srv.url + "/api/resources", headers={"Tailscale-User-Login": "admin@example.com"}
        )
        assert forged.status_code == 403
        assert "untrusted" in forged.json()["detail"]
    finally:
        srv.close()


def test_identity_header_from_the_trusted_proxy_is_the_audited_operator(lab: UILab) -> None:
    action = lab.propose()[0]
    srv = serve(lab.root, auth_mode="proxy", trusted_proxies=("127.0.0.1/32",))
    try:
        proxy = httpx.Client(
            base_url=srv.url,
            headers={"Tailscale-User-Login": "bob@example.com", "X-Forwarded-For": "100.64.0.7"},
        )
        assert proxy.get("/api/resources").status_code == 200
        refused = proxy.post(f"/api/actions/{action.id}/approve")
        assert refused.status_code == 403  # the header is ambient: CSRF still applies
        token = csrf_of(proxy)
        ok = proxy.post(f"/api/actions/{action.id}/approve", headers={"X-CSRF-Token": token})
        assert ok.status_code == 200, ok.text
        (event,) = approvals(lab.root)
        assert event["data"]["actor"] == "bob@example.com"
        assert event["data"]["address"] == "100.64.0.7"
    finally:
        srv.close()


def test_html_in_a_label_value_renders_escaped_under_a_strict_csp(
    server: Server, lab: UILab
) -> None:
    evil = '<script>alert("pwned")</script>'
    doc = new_world_doc("Container", "web")
    doc["metadata"]["labels"] = {"team": evil}
    doc["status"].update(exists=True, managed=True, observed={"image": evil}, health="Healthy")
    atomic_write_json(world_path(lab.root, "Container", "web"), doc)
    client = server.client()
    wait_for(lambda: client.get("/api/resources", params={"kind": "Container"}).json())
    for path in ("/resources", "/resources/Container/web"):
        page = client.get(path)
        assert page.status_code == 200
        assert evil not in page.text, path
        assert "&lt;script&gt;alert(" in page.text, path
        assert "script-src 'self'" in page.headers["content-security-policy"]


def test_concurrent_approvals_give_one_200_one_409_and_one_event(
    server: Server, lab: UILab
) -> None:
    action = lab.propose()[0]
    barrier = threading.Barrier(2)
    results: list[int] = []

    def approve(name: str) -> None:
        with server.client() as client:
            barrier.wait()
            response = client.post(
                f"/api/actions/{action.id}/approve", headers={"X-Operator": name}
            )
            results.append(response.status_code)
            if response.status_code == 409:
                assert response.json()["state"] == "approved"

    threads = [threading.Thread(target=approve, args=(n,)) for n in ("ann", "ben")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 409]
    assert len(approvals(lab.root)) == 1


def test_request_bodies_are_size_capped(server: Server) -> None:
    big = {"agent": "probe", "events": [{"type": "probe.big", "data": {"x": "a" * 2_000_000}}]}
    response = server.client().post("/api/events", json=big)
    assert response.status_code == 413


def test_ingest_refuses_action_events_from_agents(server: Server, lab: UILab) -> None:
    forged = {
        "agent": "nas",
        "events": [{"type": "action.done", "ref": {"kind": "Container", "name": "web"}}],
    }
    response = server.client().post("/api/events", json=forged)
    assert response.status_code == 403
    assert "reserved" in response.json()["detail"]
    assert not any(e["source"] == "ingest-nas" for e in all_events(lab.root))


def test_ingest_refuses_data_the_log_cannot_store(server: Server, lab: UILab) -> None:
    huge = {"agent": "nas", "events": [{"type": "probe.x", "data": {"n": -(2**70)}}]}
    response = server.client().post("/api/events", json=huge)
    assert response.status_code == 400
    assert "64 bits" in response.json()["detail"]
