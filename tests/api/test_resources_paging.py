"""The resource list pages on the server: 100 rows a page, filters kept across pages.

A real runtime root with 250 Container world documents, the real UI on
uvicorn; read as a browser would, through the session login.
"""

from __future__ import annotations

import re

from reconciler.atomic_files import atomic_write_json
from reconciler.runtime_root import RuntimeRoot
from reconciler.world import new_world_doc, world_path
from tests.api.conftest import serve, session_login


def _world(root: RuntimeRoot, count: int) -> None:
    for i in range(count):
        doc = new_world_doc("Container", f"app-{i:03d}")
        doc["status"].update(exists=True, managed=True, observed={"image": "x"}, health="Healthy")
        atomic_write_json(world_path(root, "Container", f"app-{i:03d}"), doc, durable=False)


def _names(html: str) -> list[str]:
    return re.findall(r'href="/resources/Container/(app-\d+)"', html)


def test_the_resource_list_is_paged(runtime_root: RuntimeRoot) -> None:
    _world(runtime_root, 250)
    server = serve(runtime_root)
    try:
        client = session_login(server)
        first = client.get("/resources").text
        assert _names(first) == [f"app-{i:03d}" for i in range(100)]
        assert "1\u2013100 of 250" in first and 'href="/resources?page=2" rel="next"' in first
        third = client.get("/resources?page=3").text
        assert _names(third) == [f"app-{i:03d}" for i in range(200, 250)]
        assert 'rel="next"' not in third and "(250)" in third
        assert _names(client.get("/resources?page=99").text) == _names(third)
        assert _names(client.get("/resources?page=x").text) == _names(first)
        kept = client.get("/resources?kind=Container&page=2").text
        assert 'href="/resources?kind=Container&amp;page=3" rel="next"' in kept
        assert _names(client.get("/resources?kind=File").text) == []
    finally:
        server.close()
