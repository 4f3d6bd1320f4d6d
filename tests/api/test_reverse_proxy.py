"""Behind a real nginx (what Nginx Proxy Manager runs) at a sub-path, with SSE through it."""

from __future__ import annotations

import re
import shutil
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import TOKEN, Server, UILab, free_port, serve, wait_for

# The "Custom Nginx Configuration" an operator pastes into Nginx Proxy Manager for a
# sub-path location (docs/vps-control-plane.md): no buffering, so SSE flows.
LOCATION = """\
location /homelab/ {{
    proxy_pass http://127.0.0.1:{ui}/;
    proxy_http_version 1.1;
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $remote_addr;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header Connection "";
    proxy_buffering off;
    proxy_cache off;
    proxy_read_timeout 1h;
}}
"""


@pytest.fixture
def nginx(tmp_path: Path, lab: UILab) -> Iterator[tuple[str, Server]]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        pytest.fail("nginx is missing: hack/dev-daemons.sh start installs nginx-light", False)
    srv = serve(lab.root, base_path="/homelab")
    port = free_port()
    temp = tmp_path / "nginx"
    temp.mkdir()
    conf = temp / "nginx.conf"
    conf.write_text(
        textwrap.dedent(f"""\
        daemon off;
        worker_processes 1;
        pid {temp}/nginx.pid;
        error_log {temp}/error.log;
        events {{}}
        http {{
          access_log off;
          client_body_temp_path {temp}/body;
          proxy_temp_path {temp}/proxy;
          fastcgi_temp_path {temp}/fastcgi;
          uwsgi_temp_path {temp}/uwsgi;
          scgi_temp_path {temp}/scgi;
          server {{
            listen 127.0.0.1:{port};
        """)
        + textwrap.indent(LOCATION.format(ui=srv.settings.port), "    ")
        + "  }\n}\n"
    )
    proc = subprocess.Popen([binary, "-c", str(conf), "-p", str(temp)], stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if httpx.get(url + "/homelab/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else "nginx exited"
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.05)
        yield url, srv
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        srv.close()


def test_login_pages_sse_and_approval_through_nginx_at_a_sub_path(
    nginx: tuple[str, Server], lab: UILab
) -> None:
    url, _srv = nginx
    with httpx.Client(base_url=url, timeout=10) as browser:
        anon = browser.get("/homelab/queue", headers={"Accept": "text/html"})
        assert anon.status_code in (302, 303)
        assert anon.headers["location"] == "/homelab/login?next=/queue"
        login = browser.post(
            "/homelab/login", data={"token": TOKEN, "name": "alice", "next": "/queue"}
        )
        assert login.status_code == 303
        assert login.headers["location"] == "/homelab/queue"
        assert browser.get("/homelab/static/app.css").status_code == 200

        with browser.stream("GET", "/homelab/live") as stream:
            lines = stream.iter_lines()
            assert next(lines) == "event: changed"
            actions = lab.propose()  # a new pending action is pushed through the proxy
            for line in lines:
                if line.startswith("data:") and '"pending":2' in line:
                    break

        page = browser.get("/homelab/queue").text
        assert 'sse-connect="/homelab/live"' in page
        csrf = re.search(r'name="_csrf" value="([0-9a-f]+)"', page)
        assert csrf, "no CSRF field on the queue page"
        target = actions[0].id
        approved = browser.post(
            f"/homelab/queue/{target}/approve", data={"_csrf": csrf.group(1), "back": "/queue"}
        )
        assert approved.status_code == 303
        assert approved.headers["location"].startswith("/homelab/queue")

    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    events = wait_for(
        lambda: api.get("/homelab/api/events", params={"type": "action.approved"}).json()["events"]
    )
    assert events[0]["data"]["action"] == target
    assert events[0]["data"]["actor"] == "alice"
    assert events[0]["data"]["address"] == "127.0.0.1"
