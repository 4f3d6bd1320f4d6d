"""Signed commits with real `ssh-keygen` keys and `git commit -S` (gpg.format=ssh).

A commit signed by a key in ROOT/signing/allowed_signers is planned; an
unsigned tip, or one signed by another key, is held back: the last verified
commit stays in force and the supervisor's status, `homelab plan` and the
executor's view all say why. GnuPG signatures are checked against the
keyring under the runtime root (keys made with the real `gpg`).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from reconciler.executor.context import DesiredView
from reconciler.sources.git import GitSource
from reconciler.sources.signatures import ENV_REQUIRE, SignedCommitGate, signing_dir, state_path

REQUIRE = "requireSignedCommits: true\n"


def keypair(folder: Path, name: str) -> Path:
    key = folder / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True
    )
    return key


def allow(lab: Any, key: Path, principal: str) -> None:
    folder = signing_dir(lab.root)
    folder.mkdir(exist_ok=True)
    line = f'{principal} namespaces="git" {key.with_suffix(".pub").read_text().strip()}\n'
    with open(folder / "allowed_signers", "a") as fh:
        fh.write(line)


def signed_commit(lab: Any, key: Path, message: str) -> str:
    lab.repo.git("add", "-A")
    lab.repo.git(
        "-c",
        "gpg.format=ssh",
        "-c",
        f"user.signingkey={key}",
        "commit",
        "-q",
        "--allow-empty",
        "-S",
        "-m",
        message,
    )
    return str(lab.repo.head)


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "keys"
    folder.mkdir()
    return {"alice": keypair(folder, "alice"), "mallory": keypair(folder, "mallory")}


def pending_names(lab: Any) -> set[str]:
    return {a.name for a in lab.actions("pending")}


def test_signed_commits_are_planned_and_an_unsigned_tip_is_held_back(
    lab: Any, keys: dict[str, Path]
) -> None:
    allow(lab, keys["alice"], "alice@example.invalid")
    lab.observer_caught_up()
    lab.repo.write("homelab.yaml", REQUIRE)
    lab.container("web")
    good = signed_commit(lab, keys["alice"], "web, signed")
    status = lab.reconcile()
    assert status["commit"] == good
    assert pending_names(lab) == {"web"}
    assert lab.only().commit == good
    assert status["signedCommits"]["verified"] is True
    assert "alice@example.invalid" in status["signedCommits"]["signer"]
    assert status["signedCommits"]["heldBack"] is None

    lab.container("db")
    unsigned = lab.commit("db, unsigned")
    status = lab.reconcile()
    assert status["commit"] == good  # the last verified commit stays in force
    assert pending_names(lab) == {"web"}  # db is not planned
    held = status["signedCommits"]["heldBack"]
    assert held == (
        f"tip {unsigned[:12]} is held back: commit {unsigned[:12]} is not signed; "
        f"the last verified commit {good[:12]} stays in force"
    )
    assert status["signedCommits"]["tip"] == unsigned
    assert f"signed commits: {held}" in status["errors"]

    lab.container("cache")
    forged = signed_commit(lab, keys["mallory"], "cache, signed by another key")
    status = lab.reconcile()
    assert status["commit"] == good
    assert "No principal matched" in status["signedCommits"]["heldBack"]
    assert forged[:12] in status["signedCommits"]["heldBack"]
    assert pending_names(lab) == {"web"}

    fixed = signed_commit(lab, keys["alice"], "re-signed by alice")
    status = lab.reconcile()
    assert status["commit"] == fixed and status["signedCommits"]["heldBack"] is None
    assert pending_names(lab) == {"web", "db", "cache"}
    assert orjson.loads(state_path(lab.root).read_bytes())["commit"] == fixed


def test_an_unsigned_commit_cannot_turn_the_check_off_but_a_signed_one_can(
    lab: Any, keys: dict[str, Path]
) -> None:
    allow(lab, keys["alice"], "alice@example.invalid")
    lab.observer_caught_up()
    lab.repo.write("homelab.yaml", REQUIRE)
    lab.container("web")
    good = signed_commit(lab, keys["alice"], "signed, check on")
    lab.reconcile()
    lab.repo.write("homelab.yaml", "requireSignedCommits: false\n")
    lab.container("db")
    lab.commit("unsigned, check off")
    status = lab.reconcile()
    assert status["commit"] == good and "is not signed" in status["signedCommits"]["heldBack"]
    assert pending_names(lab) == {"web"}
    off = signed_commit(lab, keys["alice"], "signed, check off")
    status = lab.reconcile()
    assert status["commit"] == off and status["signedCommits"]["heldBack"] is None
    lab.container("cache")
    later = lab.commit("unsigned, allowed now")
    status = lab.reconcile()
    assert status["commit"] == later and "signedCommits" not in status
    assert pending_names(lab) == {"web", "db", "cache"}


def test_with_nothing_verified_yet_nothing_is_planned(
    lab: Any, keys: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_REQUIRE, "1")
    lab.observer_caught_up()
    lab.container("web")
    tip = lab.commit("unsigned")
    status = lab.reconcile()
    assert status["commit"] is None and lab.actions("pending") == []
    assert status["signedCommits"]["heldBack"] == (
        f"tip {tip[:12]} is held back: no allowed signing keys: put SSH public keys in "
        "ROOT/signing/allowed_signers or a GPG keyring in ROOT/signing/gnupg/; no commit "
        "was verified yet, so nothing is planned"
    )
    allow(lab, keys["alice"], "alice@example.invalid")
    signed = signed_commit(lab, keys["alice"], "signed")
    assert lab.reconcile()["commit"] == signed
    assert pending_names(lab) == {"web"}


def test_homelab_plan_and_the_executor_keep_the_verified_commit(
    lab: Any, keys: dict[str, Path]
) -> None:
    allow(lab, keys["alice"], "alice@example.invalid")
    lab.observer_caught_up()
    lab.repo.write("homelab.yaml", REQUIRE)
    lab.container("web")
    good = signed_commit(lab, keys["alice"], "signed")
    lab.reconcile()  # records the verified commit, as the running supervisor does
    lab.container("db")
    unsigned = lab.commit("unsigned")

    shown = lab.cli("plan", "--repo", str(lab.repo.path), check=False)
    assert shown.returncode == 0, shown.stderr
    assert f"planning commit {good[:12]}, signed by alice@example.invalid" in shown.stdout
    assert f"Held back: tip {unsigned[:12]} is held back" in shown.stdout
    assert f"signed commits: tip {unsigned[:12]} is held back" in shown.stderr
    assert "  + Container/web\n" in shown.stdout
    assert "Container/db" not in shown.stdout
    doc = orjson.loads(lab.cli("plan", "--repo", str(lab.repo.path), "--json").stdout)
    assert doc["signedCommits"]["inForce"] == good and doc["signedCommits"]["tip"] == unsigned
    assert {c["name"] for c in doc["changes"]} == {"web"}

    view = DesiredView(GitSource(lab.repo.path), lab.root)
    assert view.tip().commit == good
    assert set(view.tip().desired) == {("Container", "web")}


def test_plan_with_the_flag_on_an_unsigned_repository_says_why_and_exits_1(lab: Any) -> None:
    lab.container("web")
    tip = lab.commit("unsigned")
    shown = lab.cli("plan", "--repo", str(lab.repo.path), "--require-signed-commits", check=False)
    assert shown.returncode == 1
    assert f"signed commits: tip {tip[:12]} is held back: no allowed signing keys" in shown.stderr
    assert "nothing is planned" in shown.stderr


def test_verdicts_follow_the_allowed_signers_file(lab: Any, keys: dict[str, Path]) -> None:
    lab.container("web")
    commit = signed_commit(lab, keys["mallory"], "signed by mallory")
    gate = SignedCommitGate(lab.root, lab.repo.path, require=True)
    allow(lab, keys["alice"], "alice@example.invalid")
    assert gate.verify(commit).ok is False
    allow(lab, keys["mallory"], "mallory@example.invalid")  # the file changed: asked again
    verdict = gate.verify(commit)
    assert verdict.ok and verdict.signer and verdict.signer.startswith("mallory@example.invalid")


def _gpg(home: Path, *args: str, input: bytes | None = None) -> bytes:
    env = {**os.environ, "GNUPGHOME": str(home)}
    done = subprocess.run(["gpg", "--batch", *args], env=env, input=input, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


@pytest.fixture
def gpg_home(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A GnuPG home with one signing key (its agent is stopped afterwards)."""
    home = tmp_path / "gnupg-alice"
    home.mkdir(mode=0o700)
    _gpg(home, "--passphrase", "", "--quick-gen-key", "Alice <alice@example.invalid>", "ed25519")
    listing = _gpg(home, "--list-keys", "--with-colons").decode()
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line[:4] == "fpr:")
    yield home, fingerprint
    subprocess.run(["gpgconf", "--kill", "all"], env={**os.environ, "GNUPGHOME": str(home)})


def test_gpg_signed_commits_verify_against_the_keyring_under_the_root(
    lab: Any, gpg_home: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, fingerprint = gpg_home
    lab.observer_caught_up()
    lab.repo.write("homelab.yaml", REQUIRE)
    lab.container("web")
    monkeypatch.setenv("GNUPGHOME", str(home))  # git commit -S signs with the user's own keyring
    lab.repo.git("add", "-A")
    lab.repo.git("commit", "-q", f"-S{fingerprint}", "-m", "gpg signed")
    good = str(lab.repo.head)
    # The user's keyring is never consulted: until the key is under ROOT/signing/gnupg/,
    # the tip is held back.
    status = lab.reconcile()
    assert status["commit"] is None and "is held back" in status["signedCommits"]["heldBack"]
    keyring = signing_dir(lab.root) / "gnupg"
    keyring.mkdir(parents=True, mode=0o700)
    _gpg(keyring, "--import", input=_gpg(home, "--export", fingerprint))
    status = lab.reconcile()
    assert status["commit"] == good
    assert status["signedCommits"]["signer"] == "Alice <alice@example.invalid>"
    assert pending_names(lab) == {"web"}
    lab.container("db")
    lab.commit("unsigned")
    status = lab.reconcile()
    assert status["commit"] == good and "is not signed" in status["signedCommits"]["heldBack"]
    subprocess.run(["gpgconf", "--kill", "all"], env={**os.environ, "GNUPGHOME": str(keyring)})


def test_the_observer_watches_the_nodes_of_the_commit_in_force(
    lab: Any, keys: dict[str, Path]
) -> None:
    from reconciler.observer.service import ObserverService

    allow(lab, keys["alice"], "alice@example.invalid")
    lab.repo.write("homelab.yaml", REQUIRE)
    lab.repo.write(
        "manifests/nas.yaml",
        "apiVersion: homelab.reconciler/v1alpha1\nkind: Node\nmetadata:\n  name: nas\n"
        "spec:\n  dockerHost: unix:///run/nas.sock\n",
    )
    good = signed_commit(lab, keys["alice"], "nas, signed")
    lab.reconcile()
    lab.repo.write(
        "manifests/evil.yaml",
        "apiVersion: homelab.reconciler/v1alpha1\nkind: Node\nmetadata:\n  name: evil\n"
        "spec:\n  dockerHost: tcp://203.0.113.9:2375\n",
    )
    lab.commit("unsigned node")
    observer = ObserverService(lab.root, lab.repo.path)
    assert observer._commit_in_force() == good
    observer._refresh_nodes()
    assert "nas" in observer._targets and "evil" not in observer._targets
