"""A log file rewritten under the reader: noticed and reported, never silently skipped.

The log is only ever appended to. When bytes before the reader's offset
change (an in-place edit, a file replaced by another, a truncation), the
reader reports it as a `rewritten` bad line and a note and reads the file
again from the start: the observer quarantines the report. Checked while
running (the file grows) and on resume from a checkpoint (its fingerprints).
"""

from __future__ import annotations

import os
from pathlib import Path

from reconciler.atomic_files import read_json
from reconciler.events.log import EventLog
from reconciler.events.reader import LogReader
from reconciler.observer.world_builder import WorldBuilder
from reconciler.runtime_root import RuntimeRoot
from reconciler.world import world_path


def _log_with(root: RuntimeRoot, *names: str) -> tuple[EventLog, Path]:
    log = EventLog(root, "observer")
    for name in names:
        log.append("observed.resource", ("Container", name), {"spec": {"image": "a:1"}})
    [path] = root.events.glob("*/observer.jsonl")
    return log, path


def _overwrite(path: Path, old: bytes, new: bytes) -> None:
    """Change the last `old` in place: same inode, same size, as a careless edit would."""
    assert len(old) == len(new)
    data = path.read_bytes()
    at = data.rindex(old)
    with open(path, "r+b") as fh:
        fh.seek(at)
        fh.write(new)


def test_bytes_changed_before_the_offset_are_reported_when_the_file_grows(
    runtime_root: RuntimeRoot,
) -> None:
    log, path = _log_with(runtime_root, "web", "db")
    reader = LogReader(runtime_root)
    [first] = list(reader.batches())
    assert len(first.events) == 2 and not first.bad
    _overwrite(path, b'"image":"a:1"}}', b'"image":"x:9"}}')  # the last event's data
    log.append("observed.missing", ("Container", "cache"))
    [batch] = list(reader.batches())
    [bad] = batch.bad
    assert bad.reason.startswith("rewritten") and "before the offset changed" in bad.reason
    assert "rewritten before the saved offset" in batch.notes[0]
    assert [e.ref.name for e in batch.events if e.ref] == ["web", "db", "cache"]
    assert batch.events[1].data["spec"] == {"image": "x:9"}  # re-read, not skipped


def test_a_rewrite_while_stopped_is_found_on_resume(runtime_root: RuntimeRoot) -> None:
    _, path = _log_with(runtime_root, "web", "db")
    reader = LogReader(runtime_root)
    list(reader.batches())
    offsets, prints = dict(reader.offsets), reader.fingerprints()
    assert list(LogReader(runtime_root, offsets, prints).batches()) == []  # honest: no alarm
    _overwrite(path, b'"name":"web"', b'"name":"wex"')  # the first line, same size
    [batch] = list(LogReader(runtime_root, offsets, prints).batches())
    assert [b.reason for b in batch.bad] == ["rewritten: its bytes differ from what was read"]
    assert {e.ref.name for e in batch.events if e.ref} == {"wex", "db"}


def test_a_file_replaced_by_another_is_reported(runtime_root: RuntimeRoot) -> None:
    log, path = _log_with(runtime_root, "web")
    reader = LogReader(runtime_root)
    list(reader.batches())
    log.close()
    data = path.read_bytes()
    tmp = path.with_name("observer.jsonl.new")
    tmp.write_bytes(data + data)  # bigger, so a size check alone would read on
    os.replace(tmp, path)
    [batch] = list(reader.batches())
    assert [b.reason for b in batch.bad] == ["rewritten: it is another file (new inode)"]
    assert len(batch.events) == 2


def test_the_observer_quarantines_a_rewrite_found_on_restart(runtime_root: RuntimeRoot) -> None:
    log, path = _log_with(runtime_root, "web", "db")
    log.close()
    first = WorldBuilder(runtime_root)
    first.open()
    first.sync()
    _overwrite(path, b'"name":"db"', b'"name":"dx"')
    again = WorldBuilder(runtime_root)
    assert again.open().startswith("resumed")
    again.tick()
    entries = read_json(runtime_root.logs / "event-quarantine.json")["entries"]
    [(key, entry)] = [(k, v) for k, v in entries.items() if "rewritten" in str(v)]
    assert key.endswith("observer.jsonl:0") and "differ" in str(entry)
    assert world_path(runtime_root, "Container", "dx").exists()
