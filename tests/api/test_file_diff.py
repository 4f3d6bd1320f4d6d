"""A changed file's line diff in the UI: action and resource pages, escaped, and in the API.

Real git repository, runtime root and UI server: a File manifest is committed,
the world holds the file as the observer reports it (spec, and the text in
`status.runtime`), the supervisor's planner proposes the update, and the
pages show the unified diff under the fingerprint line, as text (the file's
HTML is escaped, never markup of the page).
"""

from __future__ import annotations

import hashlib

from reconciler.atomic_files import atomic_write_json
from reconciler.resources.normalize import spec_hash
from reconciler.runtime_root import RuntimeRoot
from reconciler.world import new_world_doc, world_path
from tests.api.conftest import TOKEN, UILab, serve, wait_for
from tests.conftest import GitRepo

OBSERVED = '<h1>hello</h1>\n<script>alert("edited by hand")</script>\n'
DESIRED = "<h1>hello</h1>\n<p>from git & co</p>\n"
MANIFEST = """\
apiVersion: homelab.reconciler/v1alpha1
kind: File
metadata:
  name: page
spec:
  path: /srv/homelab/index.html
  content: |
    <h1>hello</h1>
    <p>from git & co</p>
"""


def _world_file(root: RuntimeRoot, text: str = OBSERVED) -> None:
    spec = {
        "node": "local",
        "path": "/srv/homelab/index.html",
        "mode": "0644",
        "sha256": "sha256:" + hashlib.sha256(text.encode()).hexdigest(),
    }
    doc = new_world_doc("File", "page")
    doc["status"].update(
        exists=True,
        managed=True,
        observed=spec,
        basis=spec_hash(spec),
        health="Healthy",
        runtime={"size": len(text.encode()), "content": text},
    )
    atomic_write_json(world_path(root, "File", "page"), doc)


def test_the_line_diff_is_shown_escaped_on_the_action_and_resource_pages(
    git_repo: GitRepo, runtime_root: RuntimeRoot
) -> None:
    lab = UILab(git_repo, runtime_root)
    git_repo.write("manifests/page.yaml", MANIFEST)
    git_repo.commit("page")
    lab.status_files()
    _world_file(runtime_root)
    [action] = lab.propose()
    srv = serve(runtime_root)
    try:
        client = srv.client()
        detail = client.get(f"/api/actions/{action.id}").json()
        diff = detail["contentDiff"]["/sha256"]
        assert diff.splitlines()[:2] == ["--- observed", "+++ desired"]
        assert '-<script>alert("edited by hand")</script>' in diff.splitlines()
        assert "+<p>from git & co</p>" in diff.splitlines()

        html = {"Authorization": f"Bearer {TOKEN}", "Accept": "text/html"}
        for url in (f"/actions/{action.id}", "/resources/File/page"):
            page = client.get(url, headers=html)
            assert page.status_code == 200, url
            text = page.text
            assert "<script>alert" not in text, url  # the file's markup is text, not markup
            assert (
                '<span class="text remove">        -&lt;script&gt;alert(&#34;edited by hand&#34;)'
                "&lt;/script&gt;</span>" in text
            ), url
            added = '<span class="text add">        +&lt;p&gt;from git &amp; co&lt;/p&gt;</span>'
            assert added in text
            assert '<span class="hunk">        @@ -1,2 +1,2 @@</span>' in text
            assert text.index("~ sha256: ") < text.index("--- observed")
    finally:
        srv.close()


def test_a_rejected_changes_line_diff_stays_on_the_resource_page(
    git_repo: GitRepo, runtime_root: RuntimeRoot
) -> None:
    """No live action: the page diffs the last applied spec with the world, and shows the
    line diff of the action that planned exactly that change (here: the rejected one)."""
    lab = UILab(git_repo, runtime_root)
    git_repo.write("manifests/page.yaml", MANIFEST)
    git_repo.commit("page")
    lab.status_files()
    [create] = lab.propose()
    for src, dst in (("pending", "approved"), ("approved", "running"), ("running", "done")):
        lab.queue.move(create.id, src, dst, actor="test")
    _world_file(runtime_root)  # edited by hand after the create
    [update] = lab.propose()
    assert update.change().text_diffs
    lab.queue.move(update.id, "pending", "rejected", actor="test", reason="keep it")
    srv = serve(runtime_root)
    try:
        detail = srv.client().get("/api/resources/File/page").json()
        line = '        -<script>alert("edited by hand")</script>'
        assert line in detail["diff"].splitlines()
        _world_file(runtime_root, "another edit\n")  # a drift no action planned: no line diff
        detail = wait_for(
            lambda: (
                (d := srv.client().get("/api/resources/File/page").json())
                and "another" not in d["diff"]
                and "~ sha256" in d["diff"]
                and d["observed"]["sha256"] != (update.observed or {}).get("sha256")
                and d
            )
        )
        assert "--- observed" not in detail["diff"]
    finally:
        srv.close()
