"""Parsing many manifest files on every core, for cold loads.

A cold plan of a large repository is bound by YAML parsing (about 0.4 ms a
file, all in one core). When many files are uncached, `parse_many` hands all
but one share to worker processes and parses the last share itself; results
come back msgpack-encoded in the blob cache's format, which costs far less
than pickling. Workers are forked when this process has no other threads
(the CLI), and spawned otherwise (a service with watcher threads), because
forking a threaded process can deadlock the child. Called by the git source.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor

import msgspec

from reconciler.sources.blobcache import decode_result, encode_result
from reconciler.sources.manifests import FileResult, gc_paused, parse_file

PARALLEL_MIN_FILES = 1500  # below this, starting workers costs more than it saves


def _parse_chunk(items: list[tuple[str, bytes]]) -> bytes:
    with gc_paused():
        return msgspec.msgpack.encode([encode_result(parse_file(p, t)) for p, t in items])


def parse_many(items: list[tuple[str, bytes]], workers: int | None = None) -> list[FileResult]:
    """`parse_file` over `items`, in order, on up to `workers` cores."""
    workers = workers or os.cpu_count() or 1
    if workers < 2 or len(items) < PARALLEL_MIN_FILES:
        return [parse_file(path, text) for path, text in items]
    size = -(-len(items) // workers)
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    method = "fork" if threading.active_count() == 1 else "spawn"
    context = multiprocessing.get_context(method)
    with ProcessPoolExecutor(len(chunks) - 1, mp_context=context) as pool:
        futures = [pool.submit(_parse_chunk, chunk) for chunk in chunks[1:]]
        results = [parse_file(path, text) for path, text in chunks[0]]
        for future, chunk in zip(futures, chunks[1:], strict=True):
            for (path, _), raw in zip(chunk, msgspec.msgpack.decode(future.result()), strict=True):
                results.append(decode_result(raw).at_path(path))
    return results
