"""Parsing on every core gives exactly what parsing in one process gives."""

from __future__ import annotations

import threading

import pytest

from reconciler.sources import parallel
from reconciler.sources.manifests import parse_file

GOOD = """\
apiVersion: homelab.reconciler/v1alpha1
kind: File
metadata:
  name: f{i}
spec:
  path: /srv/homelab/f{i}
  content: "{i}"
"""


def items(count: int) -> list[tuple[str, bytes]]:
    out = []
    for i in range(count):
        text = GOOD.format(i=i) if i % 7 else "kind: [\n"  # every 7th file is broken
        out.append((f"manifests/f{i}.yaml", text.encode()))
    return out


@pytest.mark.parametrize("other_thread", [False, True], ids=["fork", "spawn"])
def test_parallel_parse_equals_serial(monkeypatch: pytest.MonkeyPatch, other_thread: bool) -> None:
    monkeypatch.setattr(parallel, "PARALLEL_MIN_FILES", 10)
    work = items(60)
    serial = [parse_file(path, text) for path, text in work]
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait) if other_thread else None
    if thread:
        thread.start()  # a live thread makes parse_many spawn instead of fork
    try:
        assert parallel.parse_many(work, workers=2) == serial
    finally:
        stop.set()
        if thread:
            thread.join()
