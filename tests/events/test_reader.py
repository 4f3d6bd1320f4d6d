"""The log reader: offsets, torn tails, corrupt lines, truncated files, new days."""

from __future__ import annotations

from reconciler.events import EventLog
from reconciler.events.reader import LogReader, log_files
from reconciler.runtime_root import RuntimeRoot


def _all(reader: LogReader) -> list[str]:
    return [ev.id for batch in reader.batches() for ev in batch.events]


def test_reader_resumes_from_offsets(runtime_root: RuntimeRoot) -> None:
    log = EventLog(runtime_root, "observer")
    first = log.append("observed.missing", ("Container", "a"))
    reader = LogReader(runtime_root)
    assert _all(reader) == [first["id"]]
    second = log.append("observed.missing", ("Container", "b"))
    assert _all(reader) == [second["id"]]
    assert _all(LogReader(runtime_root, reader.offsets)) == []


def test_torn_last_line_is_left_for_later(runtime_root: RuntimeRoot) -> None:
    log = EventLog(runtime_root, "observer")
    ev = log.append("observed.missing", ("Container", "a"))
    path = runtime_root.events / ev["ts"][:10] / "observer.jsonl"
    whole = path.read_bytes()
    line = whole.splitlines(keepends=True)[0]
    with open(path, "ab") as fh:
        fh.write(line[:20])
    reader = LogReader(runtime_root)
    assert _all(reader) == [ev["id"]]
    assert reader.lag_bytes() == 20
    with open(path, "ab") as fh:
        fh.write(line[20:])
    assert _all(reader) == [ev["id"]]  # the completed line, read once
    assert reader.lag_bytes() == 0


def test_corrupt_line_in_the_middle_is_reported_and_reading_goes_on(
    runtime_root: RuntimeRoot,
) -> None:
    log = EventLog(runtime_root, "observer")
    a = log.append("observed.missing", ("Container", "a"))
    path = runtime_root.events / a["ts"][:10] / "observer.jsonl"
    offset = path.stat().st_size
    with open(path, "ab") as fh:
        fh.write(b'{"id": "broken", \n')
    b = log.append("observed.missing", ("Container", "b"))
    batches = list(LogReader(runtime_root).batches())
    assert [ev.id for ev in batches[0].events] == [a["id"], b["id"]]
    [bad] = batches[0].bad
    assert bad.offset == offset
    assert bad.file.endswith("/observer.jsonl")
    assert bad.line.startswith(b'{"id": "broken"')


def test_truncated_file_is_reread_from_the_start_with_a_note(runtime_root: RuntimeRoot) -> None:
    log = EventLog(runtime_root, "observer")
    a = log.append("observed.missing", ("Container", "a"))
    log.close()
    reader = LogReader(runtime_root)
    _all(reader)
    key = next(iter(reader.offsets))
    reader.offsets[key] += 1000  # a checkpoint pointing past the end
    [batch] = list(reader.batches())
    assert [ev.id for ev in batch.events] == [a["id"]]
    assert "truncated" in batch.notes[0]


def test_a_day_folder_that_appears_later_is_read(runtime_root: RuntimeRoot) -> None:
    log = EventLog(runtime_root, "observer")
    log.append("observed.missing", ("Container", "a"))
    reader = LogReader(runtime_root)
    _all(reader)
    later = runtime_root.events / "2999-01-01"
    later.mkdir()
    line = (
        b'{"id":"9999-x-1","ts":"2999-01-01T00:00:00.000000Z","source":"x",'
        b'"type":"observed.missing","ref":{"kind":"Container","name":"z"},"data":{}}\n'
    )
    (later / "x.jsonl").write_bytes(line)
    assert _all(reader) == ["9999-x-1"]
    assert "2999-01-01" in log_files(runtime_root)
