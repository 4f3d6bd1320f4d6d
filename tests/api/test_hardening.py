"""Hardening of the UI on a real uvicorn server: logout, reserved names, bodies, logins, streams.

Each test reproduces a case found by an adversarial run against `homelab up`:
a copied session cookie still valid after logout, an operator claiming to be
one of the services in the audit trail, a deeply nested JSON body answering
500, unlimited password guessing, and unbounded live streams per client.
"""

from __future__ import annotations

import logging
import socket
import time

import httpx
import pytest

from reconciler.api.limits import SSE_PER_CLIENT
from tests.api.conftest import TOKEN, Server, UILab, csrf_of, session_login
from tests.api.test_security import approvals


def test_logout_makes_a_copied_session_cookie_stop_working(server: Server) -> None:
    browser = session_login(server)
    copied = browser.cookies["homelab_session"]
    assert browser.get("/api/resources").status_code == 200
    response = browser.post("/logout", data={"_csrf": csrf_of(browser)})
    assert response.status_code == 303
    thief = httpx.Client(base_url=server.url, cookies={"homelab_session": copied})
    assert thief.get("/api/resources").status_code == 401
    page = thief.get("/queue", headers={"Accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    other = session_login(server, "bob")  # other sessions live on
    assert other.get("/api/resources").status_code == 200


def test_logout_survives_a_restart_of_the_ui(server: Server, lab: UILab) -> None:
    from tests.api.conftest import serve

    browser = session_login(server)
    copied = browser.cookies["homelab_session"]
    browser.post("/logout", data={"_csrf": csrf_of(browser)})
    again = serve(lab.root)
    try:
        thief = httpx.Client(base_url=again.url, cookies={"homelab_session": copied})
        assert thief.get("/api/resources").status_code == 401
    finally:
        again.close()


@pytest.mark.parametrize(
    "name", ["executor", "supervisor", "observer", "ui", "Executor", "ingest-nas", "cli-alice"]
)
def test_x_operator_naming_a_service_is_refused(server: Server, lab: UILab, name: str) -> None:
    action = lab.propose()[0]
    response = server.client().post(
        f"/api/actions/{action.id}/approve", headers={"X-Operator": name}
    )
    assert response.status_code == 403, response.text
    assert "reserved" in response.json()["detail"]
    assert approvals(lab.root) == []
    assert lab.queue.find(action.id) == "pending"


def test_login_name_naming_a_service_is_refused(server: Server) -> None:
    client = httpx.Client(base_url=server.url)
    response = client.post("/login", data={"token": TOKEN, "name": "supervisor"})
    assert response.status_code == 400
    assert "reserved" in response.text
    assert "homelab_session" not in response.headers.get("set-cookie", "")


def test_a_5000_deep_json_body_is_a_400(server: Server) -> None:
    deep = "[" * 5000 + "]" * 5000
    for path, body in (
        ("/api/events", '{"agent": "nas", "events": [{"type": "probe.x", "data": {"d": %s}}]}'),
        ("/api/actions/abc/approve", '{"reason": %s}'),
    ):
        response = server.client().post(
            path, content=body % deep, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, (path, response.status_code, response.text[:200])
        assert "nest" in response.json()["detail"], path


def test_twenty_wrong_tokens_are_rate_limited_and_logged(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    client = httpx.Client(base_url=server.url)
    codes = []
    with caplog.at_level(logging.WARNING, logger="homelab.ui"):
        for i in range(20):
            codes.append(client.post("/login", data={"token": f"guess-{i}", "name": "eve"}))
        right = client.post("/login", data={"token": TOKEN, "name": "eve"})
    assert [r.status_code for r in codes[:10]] == [401] * 10
    assert codes[-1].status_code == 429
    assert int(codes[-1].headers["retry-after"]) > 0
    assert right.status_code == 429  # locked out: guessing right now proves nothing
    failed = [r.getMessage() for r in caplog.records if "login" in r.getMessage()]
    assert any("127.0.0.1" in m and "failed login" in m for m in failed), failed
    assert not any("guess-" in m or TOKEN in m for m in caplog.text.splitlines())
    bearer = server.client()  # the API with the token is not locked out by page guesses
    assert bearer.get("/api/resources").status_code == 200


def test_live_streams_are_capped_per_client(server: Server) -> None:
    socks = []
    try:
        for _ in range(SSE_PER_CLIENT):
            sock = socket.create_connection(("127.0.0.1", server.settings.port), timeout=5)
            sock.sendall(
                f"GET /live HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()
            )
            assert sock.recv(64).startswith(b"HTTP/1.1 200"), "a stream within the cap"
            socks.append(sock)
        over = server.client().get("/live")
        assert over.status_code == 429
        assert "live streams" in over.json()["detail"]
    finally:
        for sock in socks:
            sock.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # closed streams give their places back
        with server.client() as client, client.stream("GET", "/live") as stream:
            if stream.status_code == 200:
                break
        time.sleep(0.1)
    else:
        raise AssertionError("the streams' places were not given back")


def _half_sent(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    return sock


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(4096) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_headers_sent_too_slowly_are_cut_off(lab: UILab) -> None:
    from tests.api.conftest import serve

    srv = serve(lab.root, header_timeout=0.5)
    try:
        sock = _half_sent(srv.settings.port)
        for _ in range(3):  # trickling bytes does not extend the deadline
            time.sleep(0.1)
            sock.sendall(b"a")
        assert _closed_by_server(sock, 3.0)
        sock.close()
        assert srv.client().get("/api/resources").status_code == 200
    finally:
        srv.close()


def test_over_the_cap_the_oldest_half_sent_connection_makes_room(lab: UILab) -> None:
    from tests.api.conftest import serve

    srv = serve(lab.root, max_connections=40)
    socks = [_half_sent(srv.settings.port) for _ in range(100)]
    try:
        for _ in range(5):
            assert httpx.get(srv.url + "/healthz", timeout=5).status_code == 200
        assert _closed_by_server(socks[0], 3.0), "the oldest was not pushed out"
        assert not _closed_by_server(socks[-1], 0.2), "the newest should still wait"
    finally:
        for sock in socks:
            sock.close()
        srv.close()
