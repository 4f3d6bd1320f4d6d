"""World documents replaced by swapping names with a twin: readers never see a mix."""

from __future__ import annotations

import threading
from pathlib import Path

import orjson

from reconciler.atomic_files import swap_in_many, twin_path
from reconciler.runtime_root import RuntimeRoot
from reconciler.world import WorldReader, new_world_doc, read_world_doc, world_path
from reconciler.world.doc import WorldDoc


def _doc(letter: str) -> bytes:
    # Same length for every version, so only the bytes can tell a torn read.
    doc = new_world_doc("Container", "web")
    doc["status"] |= {"exists": True, "observed": {"a": letter * 3000, "b": letter * 3000}}
    return orjson.dumps(doc)


def test_swap_in_many_replaces_whole_files_and_keeps_one_twin(tmp_path: Path) -> None:
    path = tmp_path / "web.json"
    swap_in_many([(str(tmp_path), "web.json", b"one")])  # first write: a plain rename, no twin left
    assert path.read_bytes() == b"one" and not twin_path(path).exists()
    swap_in_many([(str(tmp_path), "web.json", b"second")])
    assert path.read_bytes() == b"second" and twin_path(path).read_bytes() == b"one"
    swap_in_many(
        [(str(tmp_path), "web.json", b"3")]
    )  # shorter than what the twin held: truncated to fit
    assert path.read_bytes() == b"3" and twin_path(path).read_bytes() == b"second"


def test_readers_see_whole_versions_while_documents_are_swapped(
    runtime_root: RuntimeRoot,
) -> None:
    path = world_path(runtime_root, "Container", "web")
    path.parent.mkdir(parents=True)
    versions = [_doc(c) for c in "abcdefgh"]
    swap_in_many([(str(path.parent), path.name, versions[0])])
    stop = threading.Event()
    writes = 0

    def writer() -> None:
        nonlocal writes
        while not stop.is_set():
            swap_in_many([(str(path.parent), path.name, versions[writes % len(versions)])])
            writes += 1

    thread = threading.Thread(target=writer)
    thread.start()
    reader = WorldReader(runtime_root)
    seen: set[str] = set()
    try:
        for _ in range(3000):
            for doc in (read_world_doc_or_none(path), reader.read().get(("Container", "web"))):
                if doc is None:
                    continue
                observed = doc.status.observed or {}
                a, b = observed["a"], observed["b"]
                assert a == b and len(set(a)) == 1, "a torn document was read"
                seen.add(a[0])
    finally:
        stop.set()
        thread.join()
    assert writes > 100 and len(seen) > 1  # the race really ran


def read_world_doc_or_none(path: Path) -> WorldDoc | None:
    try:
        doc = read_world_doc(path)
    except (OSError, ValueError):
        return None  # detected as torn: the caller reads again later
    return doc
