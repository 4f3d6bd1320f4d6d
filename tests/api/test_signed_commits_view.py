"""The reason a tip is held back, shown by `/summary` and the dashboard of the real app.

The supervisor plans a repository with real SSH-signed commits; the UI,
served by uvicorn on loopback, reads what it kept in force.
"""

from __future__ import annotations

import html
from pathlib import Path

import pytest

from reconciler.api.config import UISettings
from reconciler.runtime_root import RuntimeRoot
from reconciler.supervisor.service import Supervisor
from tests.api.conftest import CONTAINER, TOKEN, Server, UILab
from tests.api.test_hooks import _port
from tests.conftest import GitRepo
from tests.supervisor.test_signed_commits import REQUIRE, allow, keypair, signed_commit


@pytest.mark.parametrize("held", [True, False])
def test_summary_and_dashboard_show_the_commit_in_force_and_why(
    git_repo: GitRepo, runtime_root: RuntimeRoot, tmp_path: Path, held: bool
) -> None:
    lab = UILab(git_repo, runtime_root)
    key = keypair(tmp_path, "alice")
    allow(lab, key, "alice@example.invalid")
    git_repo.write("homelab.yaml", REQUIRE)
    git_repo.write("manifests/web.yaml", CONTAINER.format(name="web", label="a", sleep=1))
    good = signed_commit(lab, key, "signed")
    supervisor = Supervisor(git_repo.path, runtime_root)
    try:
        supervisor.reconcile(force=True)
        tip = git_repo.commit("unsigned") if held else good
        supervisor.reconcile(force=True)
    finally:
        supervisor.events.close()
    srv = Server(UISettings(root=runtime_root, port=_port(), token=TOKEN)).start()
    try:
        summary = srv.client(token=False).get("/summary").json()
        page = srv.client().get("/", headers={"Accept": "text/html"}).text
        metrics = srv.client().get("/metrics").text
    finally:
        srv.close()
    signed = summary["signedCommits"]
    assert summary["desiredCommit"] == good and signed["inForce"] == good
    assert signed["tip"] == tip and signed["verified"] is True
    assert signed["signer"].startswith("alice@example.invalid (ED25519 SHA256:")
    assert 'data-testid="signed-commits"' in page and good[:12] in page
    assert f"\nhomelab_source_tip_held_back {int(held)}\n" in metrics
    if held:
        reason = (
            f"tip {tip[:12]} is held back: commit {tip[:12]} is not signed; "
            f"the last verified commit {good[:12]} stays in force"
        )
        assert signed["heldBack"] == reason
        assert 'data-testid="signed-held"' in page and reason in html.unescape(page)
    else:
        assert signed["heldBack"] is None and "signed-held" not in page
