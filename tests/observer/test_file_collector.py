"""The File collector: sha256 and mode of managed paths, in the comparable shape."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from reconciler.observer.collectors.file import FileCollector
from reconciler.observer.collectors.node import DesiredFile


def test_file_is_observed_changed_and_missing(tmp_path: Path) -> None:
    target = tmp_path / "motd"
    target.write_bytes(b"hello\n")
    target.chmod(0o640)
    emitted: list[tuple[str, Any, dict[str, Any]]] = []
    collector = FileCollector(lambda t, r, d: emitted.append((t, r, d)))
    collector.learn({}, [DesiredFile("motd", "local", str(target))])
    assert collector.check({}, {"local"}) == 1
    etype, ref, data = emitted[-1]
    assert (etype, ref) == ("observed.resource", ("File", "motd"))
    assert data["spec"] == {
        "node": "local",
        "path": str(target),
        "mode": "0640",
        "sha256": "sha256:" + hashlib.sha256(b"hello\n").hexdigest(),
    }
    world = {("File", "motd"): {"status": {"exists": True, "observed": data["spec"]}}}
    assert collector.check(world, {"local"}) == 0  # unchanged: nothing emitted
    target.write_bytes(b"changed\n")
    assert collector.check(world, {"local"}) == 1
    target.unlink()
    assert collector.check(world, {"local"}) == 1
    assert emitted[-1][0] == "observed.missing"
    assert collector.check(world, set()) == 0  # files of remote nodes are not stat'ed here
