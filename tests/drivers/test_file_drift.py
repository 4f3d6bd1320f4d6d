"""Files changed by hand, end to end on the real filesystem: observed, planned, shown, fixed.

A real git repository and runtime root (`Lab`), the real observer service
(File collector and fold, no Docker collectors) keeping the world, the real
planner, and the executor's file driver applying the update. A chmod, an
edit and a chown by hand each become an `update`; the plan shows an edit as
a unified line diff (the desired side is the manifest's text, or the
repository file at the commit); a secret-backed file's text is never read
into anything; binary and large files fall back to the fingerprint line.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from reconciler.atomic_files import read_json
from reconciler.diff import render_text
from reconciler.observer.service import ObserverService, ObserverSettings
from reconciler.planning import PlanResult
from reconciler.world import world_path
from tests.api.conftest import serve
from tests.cli.test_validate_plan import homelab
from tests.drivers.test_file_driver import file_yaml
from tests.executor.lab import Lab

pytestmark = pytest.mark.docker  # the Lab's Node points at the test engine

UNUSED_UID, UNUSED_GID = 54321, 54322  # ids no user or group of this machine has


def _wait(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.05)


@pytest.fixture
def observed(lab: Lab) -> Iterator[Lab]:
    """The lab with the real observer service keeping its world (File collector every 0.1 s)."""
    settings = ObserverSettings(
        docker=False, file_period=0.1, nodes_period=0.2, poll=0.1, durable=False
    )
    service = ObserverService(lab.root, lab.repo.path, settings)
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,))
    thread.start()
    yield lab
    stop.set()
    thread.join(timeout=20)
    assert not thread.is_alive()


def _status(lab: Lab, name: str) -> dict[str, Any]:
    try:
        return dict(read_json(world_path(lab.root, "File", name))["status"])
    except (OSError, ValueError):
        return {}


def _observed_as(lab: Lab, name: str, **fields: Any) -> dict[str, Any]:
    """Wait until the world's observed spec of File/`name` has these fields; its status."""

    def seen() -> dict[str, Any] | None:
        status = _status(lab, name)
        spec = status.get("observed") or {}
        return status if all(spec.get(k) == v for k, v in fields.items()) else None

    found: dict[str, Any] = _wait(seen)
    return found


def _plan(lab: Lab) -> tuple[PlanResult, str]:
    result = lab.plan(fold=False)
    assert not result.errors, [str(e) for e in result.errors]
    return result, render_text(result.plan)


def _apply(lab: Lab) -> None:
    actions = lab.propose(fold=False)
    assert lab.run_now(actions) == ["done"] * len(actions)


def _observer_file_events(lab: Lab, name: str) -> list[dict[str, Any]]:
    out = []
    for path in sorted(lab.root.events.glob("*/observer.jsonl")):
        for line in path.read_bytes().splitlines():
            event = orjson.loads(line)
            if event["ref"] == {"kind": "File", "name": name}:
                out.append(event)
    return out


def test_chmod_edit_and_chown_by_hand_are_updates_and_applying_fixes_them(observed: Lab) -> None:
    lab = observed
    target = lab.files / "app.conf"
    text = "listen 80\nroot /srv/www\nindex index.html\n"
    manifest = file_yaml("conf", path=str(target), content=text, mode="0640", owner="root", group=0)
    lab.write("manifests/conf.yaml", manifest)
    lab.commit("the config")
    _apply(lab)
    status = _observed_as(lab, "conf", mode="0640", owner="root", group="0")
    assert status["runtime"] == {"size": len(text), "content": text}
    assert _plan(lab)[0].plan.empty
    before = len(_observer_file_events(lab, "conf"))
    time.sleep(0.5)  # five collector periods: the executor's report is what the collector sees
    assert len(_observer_file_events(lab, "conf")) == before

    target.chmod(0o604)
    _observed_as(lab, "conf", mode="0604")
    result, shown = _plan(lab)
    [change] = result.plan.changes
    assert change.operation == "update"
    assert change.patch == [{"op": "replace", "path": "/mode", "value": "0640"}]
    assert '~ mode: "0604" -> "0640"' in shown

    target.write_text("listen 8080\nroot /srv/www\nindex index.html\n")
    _observed_as(lab, "conf", sha256=_fingerprint(target))
    result, shown = _plan(lab)
    [change] = result.plan.changes
    assert change.operation == "update"
    assert "~ sha256: " in shown
    diff = "\n".join(
        [
            "        --- observed",
            "        +++ desired",
            "        @@ -1,3 +1,3 @@",
            "        -listen 8080",
            "        +listen 80",
            "         root /srv/www",
            "         index index.html",
        ]
    )
    assert diff in shown
    assert shown.index("~ sha256: ") < shown.index("--- observed")
    cli = homelab("plan", "--repo", str(lab.repo.path), "--root", str(lab.root.path))
    assert cli.returncode == 0, cli.stderr
    assert diff in cli.stdout  # what the operator's `homelab plan` prints
    as_json = homelab("plan", "--json", "--repo", str(lab.repo.path), "--root", str(lab.root.path))
    [planned] = orjson.loads(as_json.stdout)["changes"]
    assert planned["contentDiff"]["/sha256"].splitlines()[3:5] == ["-listen 8080", "+listen 80"]

    os.chown(target, UNUSED_UID, UNUSED_GID)
    _observed_as(lab, "conf", owner=str(UNUSED_UID), group=str(UNUSED_GID))
    result, shown = _plan(lab)
    [change] = result.plan.changes
    assert change.operation == "update"
    assert {op["path"] for op in change.patch} == {"/mode", "/sha256", "/owner", "/group"}
    assert f'~ owner: "{UNUSED_UID}" -> "root"' in shown
    assert f'~ group: "{UNUSED_GID}" -> "0"' in shown

    [action] = lab.propose(fold=False)
    assert action.summary == render_text(result.plan).split("\n\n")[1]  # the plan's block
    assert lab.run_now([action]) == ["done"]
    st = target.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, 0, 0)
    assert target.read_text() == text
    _observed_as(lab, "conf", mode="0640", owner="root", group="0", sha256=_fingerprint(target))
    assert _plan(lab)[0].plan.empty


def test_ownership_alone_is_fixed_in_place_without_rewriting(observed: Lab) -> None:
    lab = observed
    target = lab.files / "motd"
    lab.write("manifests/motd.yaml", file_yaml("motd", path=str(target), content="hi\n", group="0"))
    lab.commit("motd")
    _apply(lab)
    _observed_as(lab, "motd", group="0")
    inode = target.stat().st_ino
    os.chown(target, -1, UNUSED_GID)
    _observed_as(lab, "motd", group=str(UNUSED_GID))
    [action] = lab.propose(fold=False)
    assert action.operation == "update"
    assert action.patch == [{"op": "replace", "path": "/group", "value": "0"}]
    assert lab.run_now([action]) == ["done"]
    assert (target.stat().st_gid, target.stat().st_ino) == (0, inode)  # chown, no new file
    assert "set owner -:0" in lab.action(action.id).outcome["output"]


def test_a_mode_changed_by_hand_is_fixed_in_place(observed: Lab) -> None:
    lab = observed
    target = lab.files / "motd"
    lab.write("manifests/motd.yaml", file_yaml("motd", path=str(target), content="hi\n"))
    lab.commit("motd")
    _apply(lab)
    _observed_as(lab, "motd", mode="0644")
    inode = target.stat().st_ino
    target.chmod(0o666)
    _observed_as(lab, "motd", mode="0666")
    [action] = lab.propose(fold=False)
    assert action.patch == [{"op": "replace", "path": "/mode", "value": "0644"}]
    assert lab.run_now([action]) == ["done"]
    assert (stat.S_IMODE(target.stat().st_mode), target.stat().st_ino) == (0o644, inode)
    assert lab.action(action.id).outcome["output"] == f"set mode 0644 on {target}"
    _observed_as(lab, "motd", mode="0644")
    assert _plan(lab)[0].plan.empty


def test_an_unknown_owner_name_fails_with_a_clear_error(observed: Lab) -> None:
    lab = observed
    target = lab.files / "x"
    lab.write(
        "manifests/x.yaml", file_yaml("x", path=str(target), content="x", owner="nobody-here")
    )
    lab.commit("x")
    [action] = lab.propose(fold=False)
    assert lab.run_now([action]) == ["failed"]
    error = lab.action(action.id).outcome["error"]
    assert "owner 'nobody-here' is not a user on this machine" in error
    assert not target.exists()  # resolved before anything was written


def test_a_secret_backed_files_text_is_never_in_events_world_plan_queue_or_ui(
    observed: Lab,
) -> None:
    lab = observed
    (lab.root.secrets / "api-token").write_bytes(b"s3cr3t-from-the-vault\n")
    target = lab.files / "token"
    lab.write("manifests/token.yaml", file_yaml("token", path=str(target), secret="api-token"))
    lab.commit("token")
    _apply(lab)
    _observed_as(lab, "token", sha256=_fingerprint(target))
    target.write_bytes(b"s3cr3t-typed-by-hand\n")
    status = _observed_as(lab, "token", sha256=_fingerprint(target))
    assert status["runtime"] == {"size": len(b"s3cr3t-typed-by-hand\n")}
    result, shown = _plan(lab)
    [change] = result.plan.changes
    assert change.text_diffs == {} and "--- observed" not in shown
    [action] = lab.propose(fold=False)
    pages = _ui_pages(lab, [f"/actions/{action.id}", "/resources/File/token", "/events"])
    assert lab.run_now([action]) == ["done"]
    _observed_as(lab, "token", sha256=_fingerprint(target))
    pages += _ui_pages(lab, [f"/api/actions/{action.id}", "/api/events?limit=500"])
    assert all(b"File/token" in page or b'"token"' in page for page in pages)
    everything = (
        shown.encode()
        + b"".join(pages)
        + b"".join(
            p.read_bytes()
            for folder in (lab.root.events, lab.root.world, lab.root.queue)
            for p in folder.rglob("*")
            if p.is_file()
        )
    )
    assert b"s3cr3t" not in everything


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR", b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDX"),
        (b"line\n" * 14000, b"line\n" * 13999 + b"edited\n"),  # 70,000 bytes: over 64 KiB
    ],
    ids=["binary", "over-64KiB"],
)
def test_binary_and_large_files_fall_back_to_the_fingerprint_line(
    observed: Lab, before: bytes, after: bytes
) -> None:
    lab = observed
    target = lab.files / "blob"
    (lab.repo.path / "assets").mkdir()
    (lab.repo.path / "assets" / "blob").write_bytes(before)
    lab.write("manifests/blob.yaml", file_yaml("blob", path=str(target), source="assets/blob"))
    lab.commit("blob")
    _apply(lab)
    status = _observed_as(lab, "blob", sha256=_fingerprint(target))
    assert status["runtime"] == {"size": len(before)}
    target.write_bytes(after)
    _observed_as(lab, "blob", sha256=_fingerprint(target))
    result, shown = _plan(lab)
    [change] = result.plan.changes
    assert change.operation == "update" and change.text_diffs == {}
    assert "~ sha256: " in shown and "--- observed" not in shown


def test_a_source_files_diff_is_against_the_repository_file_at_the_commit(observed: Lab) -> None:
    lab = observed
    target = lab.files / "index.html"
    lab.write("site/index.html", "<h1>v1</h1>\n")
    lab.write("manifests/page.yaml", file_yaml("page", path=str(target), source="site/index.html"))
    lab.commit("v1")
    _apply(lab)
    _observed_as(lab, "page", sha256=_fingerprint(target))
    lab.write("site/index.html", "<h1>v2</h1>\n")
    lab.commit("v2")
    lab.write("site/index.html", "<h1>not committed</h1>\n")  # the working tree is not git
    result, shown = _plan(lab)
    assert "        -<h1>v1</h1>\n        +<h1>v2</h1>" in shown
    assert "not committed" not in shown
    [action] = lab.propose(fold=False)
    assert action.change().text_diffs == result.plan.changes[0].text_diffs
    assert lab.run_now([action]) == ["done"]
    assert target.read_text() == "<h1>v2</h1>\n"


def _ui_pages(lab: Lab, urls: list[str]) -> list[bytes]:
    """The UI's pages (as the operator's browser gets them) over the lab's root."""
    srv = serve(lab.root)
    try:
        with srv.client() as client:
            headers = {"Accept": "text/html"}
            out = []
            for url in urls:
                response = client.get(url, headers=headers)
                assert response.status_code == 200, (url, response.status_code)
                out.append(response.content)
            return out
    finally:
        srv.close()


def _fingerprint(path: Path) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_hand_edit_is_seen_through_the_folder_watch_not_the_period(lab: Lab) -> None:
    """With the File period at 10 minutes, a chmod and an edit still reach the world at once."""
    settings = ObserverSettings(docker=False, file_period=600, nodes_period=0.2, durable=False)
    target = lab.files / "watched.conf"
    lab.write("manifests/watched.yaml", file_yaml("watched", path=str(target), content="a\n"))
    lab.commit("a watched file")
    _apply(lab)
    service = ObserverService(lab.root, lab.repo.path, settings)
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,))
    thread.start()
    try:
        _observed_as(lab, "watched", mode="0644")  # the first check, at start
        time.sleep(0.5)  # the watch is made after the first check
        began = time.monotonic()
        target.chmod(0o600)
        _wait(lambda: _status(lab, "watched").get("observed", {}).get("mode") == "0600", 5)
        chmod_seen = time.monotonic() - began
        began = time.monotonic()
        target.write_text("b\n")
        _wait(
            lambda: (
                _status(lab, "watched").get("observed", {}).get("sha256") == _fingerprint(target)
            ),
            5,
        )
        edit_seen = time.monotonic() - began
    finally:
        stop.set()
        thread.join(timeout=20)
    assert not thread.is_alive()
    assert chmod_seen < 3.0 and edit_seen < 3.0, (chmod_seen, edit_seen)
