"""What an action runs after (dependsOn), on the queue page, the action page and the API.

A real plan of a real repository (web after its network file and a healthy
db) proposed into a real root, served by the real UI.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.events.log import EventLog
from reconciler.planning import compute_plan
from reconciler.queue import Action, ActionQueue, new_action
from reconciler.runtime_root import RuntimeRoot
from reconciler.sources.git import GitSource
from tests.api.conftest import Server, serve, session_login
from tests.conftest import GitRepo

MANIFESTS = """\
apiVersion: homelab.reconciler/v1alpha1
kind: Container
metadata: {name: web}
spec:
  image: local/busybox:1
  dependsOn:
    - File/proxy-conf
    - {resource: Container/db, condition: healthy}
---
apiVersion: homelab.reconciler/v1alpha1
kind: Container
metadata: {name: db}
spec:
  image: local/busybox:1
  healthcheck: {test: [CMD, "true"]}
---
apiVersion: homelab.reconciler/v1alpha1
kind: File
metadata: {name: proxy-conf}
spec: {path: /srv/homelab/proxy.conf, content: "x"}
"""
AFTER = "after File/proxy-conf, Container/db (healthy)"


@pytest.fixture
def proposed(git_repo: GitRepo, runtime_root: RuntimeRoot, tmp_path: Path) -> dict[str, Action]:
    git_repo.write("manifests/app.yaml", MANIFESTS)
    git_repo.commit()
    result = compute_plan(GitSource(git_repo.path), runtime_root)
    queue = ActionQueue(runtime_root, EventLog(runtime_root, "supervisor"))
    out = {}
    for change in result.plan.changes:
        manifest = result.state.manifests[change.ref]
        action = new_action(change, commit=result.state.commit, basis="", manifest=manifest.doc)
        assert queue.propose(action)
        out[action.name] = action
    return out


@pytest.fixture
def ui(runtime_root: RuntimeRoot, proposed: object) -> Iterator[Server]:
    srv = serve(runtime_root)
    yield srv
    srv.close()


def test_the_queue_and_action_pages_say_what_an_action_runs_after(
    ui: Server, proposed: dict[str, Action]
) -> None:
    client = session_login(ui)
    queue = client.get("/queue").text
    web = queue[queue.index(f'data-action="{proposed["web"].id}"') :]
    web = web[: web.index("</article>")]
    assert f'<p class="after" data-testid="after">{AFTER}</p>' in web
    db = queue[queue.index(f'data-action="{proposed["db"].id}"') :]
    assert 'data-testid="after"' not in db[: db.index("</article>")]
    page = client.get(f"/actions/{proposed['web'].id}").text
    assert f'<p class="after" data-testid="after">{AFTER}</p>' in page
    api = ui.client().get(f"/api/actions/{proposed['web'].id}").json()
    assert api["action"]["after"] == ["File/proxy-conf", "Container/db (healthy)"]
    assert f"      {AFTER}" in api["action"]["summary"]
