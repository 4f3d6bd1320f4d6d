"""The File collector: managed paths observed in full (spec and runtime facts), real files."""

from __future__ import annotations

import hashlib
import os
import pwd
from pathlib import Path
from typing import Any

import pytest

from reconciler.observer.collectors.file import FileCollector
from reconciler.observer.collectors.node import DesiredFile
from reconciler.resources.file_runtime import TEXT_LIMIT

Emitted = list[tuple[str, Any, dict[str, Any]]]


def _collector(*files: DesiredFile) -> tuple[FileCollector, Emitted]:
    emitted: Emitted = []
    collector = FileCollector(lambda t, r, d: emitted.append((t, r, d)))
    collector.learn({}, list(files))
    return collector, emitted


def _world(data: dict[str, Any], name: str = "motd") -> dict[Any, dict[str, Any]]:
    """The world document the fold makes of one observed.resource."""
    status = {"exists": True, "managed": True, "observed": data["spec"]}
    if "runtime" in data:
        status["runtime"] = data["runtime"]
    return {("File", name): {"status": status}}


def test_file_is_observed_changed_and_missing(tmp_path: Path) -> None:
    target = tmp_path / "motd"
    target.write_bytes(b"hello\n")
    target.chmod(0o640)
    collector, emitted = _collector(DesiredFile("motd", "local", str(target), show_content=True))
    assert collector.check({}, {"local"}) == 1
    etype, ref, data = emitted[-1]
    assert (etype, ref) == ("observed.resource", ("File", "motd"))
    assert data["spec"] == {
        "node": "local",
        "path": str(target),
        "mode": "0640",
        "sha256": "sha256:" + hashlib.sha256(b"hello\n").hexdigest(),
    }
    assert data["runtime"] == {"size": 6, "content": "hello\n"}
    world = _world(data)
    assert collector.check(world, {"local"}) == 0  # unchanged: nothing emitted
    target.write_bytes(b"changed\n")
    assert collector.check(world, {"local"}) == 1
    assert emitted[-1][2]["runtime"] == {"size": 8, "content": "changed\n"}
    target.unlink()
    assert collector.check(world, {"local"}) == 1
    assert emitted[-1][0] == "observed.missing"
    assert collector.check(world, set()) == 0  # files of remote nodes are not stat'ed here


def test_a_chmod_by_hand_is_seen_although_size_and_mtime_stay(tmp_path: Path) -> None:
    target = tmp_path / "motd"
    target.write_bytes(b"hello\n")
    target.chmod(0o644)
    collector, emitted = _collector(DesiredFile("motd", "local", str(target)))
    collector.check({}, {"local"})
    world = _world(emitted[-1][2])
    before = target.stat()
    target.chmod(0o600)
    assert (target.stat().st_mtime_ns, target.stat().st_size) == (before.st_mtime_ns, 6)
    assert collector.check(world, {"local"}) == 1
    assert emitted[-1][2]["spec"]["mode"] == "0600"


def test_a_file_without_show_content_never_has_its_text_read(tmp_path: Path) -> None:
    """Secret-backed files (and files known only from the world) report their size only."""
    target = tmp_path / "token"
    target.write_bytes(b"s3cr3t\n")
    collector, emitted = _collector(DesiredFile("token", "local", str(target)))
    collector.check({}, {"local"})
    assert emitted[-1][2]["runtime"] == {"size": 7}
    assert b"s3cr3t" not in repr(emitted).encode()

    other, seen = _collector()
    other.learn(_world(emitted[-1][2], "token"), [])  # known from the world only
    other.check({}, {"local"})
    assert seen[-1][2]["runtime"] == {"size": 7}


@pytest.mark.parametrize(
    "data",
    [b"\x89PNG\r\n\x1a\n\x00\x00", b"caf\xe9\n", b"x" * (TEXT_LIMIT + 1)],
    ids=["binary", "not-utf8", "over-64KiB"],
)
def test_binary_or_large_files_have_no_content(tmp_path: Path, data: bytes) -> None:
    target = tmp_path / "blob"
    target.write_bytes(data)
    collector, emitted = _collector(DesiredFile("blob", "local", str(target), show_content=True))
    collector.check({}, {"local"})
    spec, runtime = emitted[-1][2]["spec"], emitted[-1][2]["runtime"]
    assert runtime == {"size": len(data)}
    assert spec["sha256"] == "sha256:" + hashlib.sha256(data).hexdigest()


def test_owner_and_group_are_reported_only_when_wanted_in_the_manifests_notation(
    tmp_path: Path,
) -> None:
    target = tmp_path / "conf"
    target.write_bytes(b"x\n")
    os.chown(target, 0, 0)
    root_name = pwd.getpwuid(0).pw_name
    plain, emitted = _collector(DesiredFile("conf", "local", str(target)))
    plain.check({}, {"local"})
    assert "owner" not in emitted[-1][2]["spec"] and "group" not in emitted[-1][2]["spec"]

    by_name, emitted = _collector(DesiredFile("conf", "local", str(target), root_name, None))
    by_name.check({}, {"local"})
    assert emitted[-1][2]["spec"]["owner"] == root_name and "group" not in emitted[-1][2]["spec"]

    by_id, emitted = _collector(DesiredFile("conf", "local", str(target), "0", "0"))
    by_id.check({}, {"local"})
    assert (emitted[-1][2]["spec"]["owner"], emitted[-1][2]["spec"]["group"]) == ("0", "0")

    os.chown(target, 54321, 54322)  # ids no user or group has
    assert 54321 not in {p.pw_uid for p in pwd.getpwall()}
    by_id.check({}, {"local"})
    assert emitted[-1][2]["spec"]["owner"] == "54321"  # a user-less uid: the bare id
    named, emitted = _collector(DesiredFile("conf", "local", str(target), root_name, root_name))
    named.check({}, {"local"})
    assert (emitted[-1][2]["spec"]["owner"], emitted[-1][2]["spec"]["group"]) == (
        "54321",
        "54322",
    )
