"""`homelab up --require-signed-commits` on a local folder repository, and its webhook.

The real process (observer, supervisor, executor, UI, notifier): a File
committed with an allowed SSH key is proposed and applied; a later unsigned
commit is held back (its File is neither proposed nor written) and
`/summary` says why; the webhook answers without a login. No Docker engine
is needed: the node's engine is a socket that does not exist.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.api.test_hooks import _port
from tests.cli.test_up import HOMELAB, Up, eventually, get_json
from tests.cli.test_up import start_up as start_up  # the fixture
from tests.conftest import GitRepo

SECRET = b"up-hook-secret-41c7"


def file_manifest(name: str, folder: Path, engine: str) -> str:
    return f"""\
apiVersion: homelab.reconciler/v1alpha1
kind: Node
metadata: {{name: local}}
spec: {{dockerHost: "{engine}", allowedRoots: ["{folder}"]}}
---
apiVersion: homelab.reconciler/v1alpha1
kind: File
metadata: {{name: {name}}}
spec: {{node: local, path: "{folder}/{name}.txt", content: "{name}\\n"}}
"""


def test_up_plans_only_signed_commits_and_takes_webhooks(
    tmp_path: Path, git_repo: GitRepo, start_up: Callable[[list[str], dict[str, str]], Up]
) -> None:
    files = tmp_path / "files"
    files.mkdir()
    engine = f"unix://{tmp_path}/no-engine.sock"
    key = tmp_path / "alice"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    root = tmp_path / "root"
    (root / "signing").mkdir(parents=True)
    (root / "signing" / "allowed_signers").write_text(
        f'alice@example.invalid namespaces="git" {key.with_suffix(".pub").read_text()}'
    )
    (root / "secrets").mkdir(mode=0o700)
    (root / "secrets" / "git-webhook").write_bytes(SECRET)
    git_repo.write("manifests/hello.yaml", file_manifest("hello", files, engine))
    git_repo.git("add", "-A")
    git_repo.git(
        "-c", "gpg.format=ssh", "-c", f"user.signingkey={key}", "commit", "-q", "-S", "-m", "s"
    )
    good = git_repo.head
    port = _port()
    base = f"http://127.0.0.1:{port}"
    args = ["--repo", str(git_repo.path), "--root", str(root), "--port", str(port)]
    up = start_up([*args, "--require-signed-commits"], {"DOCKER_HOST": engine})
    up.wait_line("Login token: ")

    def pending() -> list[dict[str, object]]:
        return [json.loads(p.read_text()) for p in (root / "queue" / "pending").glob("*.json")]

    eventually(lambda: any(a["name"] == "hello" for a in pending()), "hello to be proposed")
    assert all(a["commit"] == good for a in pending())

    git_repo.write("manifests/other.yaml", file_manifest("other", files, engine).split("---\n")[1])
    unsigned = git_repo.commit("unsigned")

    def held() -> bool:
        signed = get_json(f"{base}/summary").get("signedCommits") or {}
        return signed.get("tip") == unsigned

    eventually(held, "the unsigned tip to be held back")
    signed = get_json(f"{base}/summary")["signedCommits"]
    assert signed["inForce"] == good and signed["verified"] is True
    assert signed["heldBack"] == (
        f"tip {unsigned[:12]} is held back: commit {unsigned[:12]} is not signed; "
        f"the last verified commit {good[:12]} stays in force"
    )
    assert [a["name"] for a in pending() if a["kind"] == "File"] == ["hello"]

    body = json.dumps({"ref": "refs/heads/main", "after": unsigned}).encode()
    hook = httpx.post(
        f"{base}/api/hooks/git",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest(),
        },
        timeout=10,
    )
    assert hook.status_code == 202 and hook.json()["fetch"] is True

    approve = subprocess.run(
        [HOMELAB, "actions", "approve", "--all", "--root", str(root), "--as", "tester"],
        capture_output=True,
        text=True,
    )
    assert approve.returncode == 0, approve.stderr
    eventually(lambda: (files / "hello.txt").is_file(), "hello to be written")
    assert not (files / "other.txt").exists()
    assert up.interrupt() == 0
