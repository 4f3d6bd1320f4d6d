"""The rebuild's typed decoder refuses exactly the lines `LogEvent` refuses, and keeps the rest.

`ReplayEvent` skips the keys of `data` the fold does not read, and a skipped
value is not checked the way a decoded one is; these tests hold the two
decoders to the same verdict on every line, buffer by buffer (the fast
path) and line by line (the reader's fallback), through a real `LogReader`
on real files, and check that what the fold reads comes out the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.events.reader import LogReader, decode_event
from reconciler.events.replay_decode import REPLAY_DECODER, decode_value, is_object, value
from reconciler.runtime_root import RuntimeRoot

# Pieces of raw JSON a value can be: valid, odd (a float beyond a double, non-ASCII
# UTF-8) and broken (invalid UTF-8, bad escapes, bad numbers, control characters).
_PIECES = [
    b"1",
    b"-0.5",
    b"1e999",
    b"-1e400",
    b"1e-999",
    b"123456789012345678901234567890",
    b'"plain"',
    b'"caf\xc3\xa9"',
    b'"\xf0\x9f\x98\x80"',
    b'"\xff"',
    b'"\xc3"',
    b'"\xed\xa0\x80"',
    b'"\\ud800"',
    b'"\\x"',
    b'"\x01"',
    b"tru",
    b"01",
    b"1.",
    b"[1,]",
    b"null",
    b"{}",
    b'{"a":[1,{"b":"\xff"}]}',
    b'{"node":"local","image":"x:1"}',
    b"[" * 300 + b"]" * 300,
]
_KEYS = ["spec", "runtime", "health", "labels", "conditions", "names", "reason", "zz", "note"]
_raw = st.sampled_from(_PIECES)


@st.composite
def _line(draw: Any) -> bytes:
    members = draw(st.lists(st.tuples(st.sampled_from(_KEYS), _raw), max_size=4))
    data = b"{" + b",".join(b'"' + k.encode() + b'":' + v for k, v in members) + b"}"
    if draw(st.booleans()):
        data = draw(_raw)  # data that is not an object at all, sometimes
    extra = draw(st.sampled_from([b"", b',"top":' + draw(_raw)]))
    return (
        b'{"id":"0001-p-0001","ts":"2024-05-01T00:00:00Z","source":"p",'
        b'"type":"observed.resource","ref":{"kind":"Container","name":"a"},"data":'
        + data
        + extra
        + b"}"
    )


def _verdict(decode: Any, buf: bytes) -> bool:
    try:
        decode(buf)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return False
    return True


@settings(max_examples=1500, deadline=None)
@given(lines=st.lists(_line(), min_size=1, max_size=4))
def test_both_decoders_refuse_the_same_lines(lines: list[bytes]) -> None:
    for line in lines:
        assert _verdict(REPLAY_DECODER.decode, line) == _verdict(decode_event, line), line
    # A buffer it takes whole holds only lines a full decode takes (one it refuses, the
    # reader reads again line by line, where the verdicts above are the same).
    buf = b"\n".join(lines) + b"\n"
    if _verdict(REPLAY_DECODER.decode_lines, buf):
        assert all(_verdict(decode_event, line) for line in lines), buf


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(_line(), min_size=1, max_size=6))
def test_what_the_fold_reads_is_what_a_full_decode_gives(lines: list[bytes]) -> None:
    for line in lines:
        if not _verdict(decode_event, line):
            continue
        full, typed = decode_event(line), REPLAY_DECODER.decode(line)
        assert (full.id, full.ts, full.source, full.type, full.ref) == (
            typed.id,
            typed.ts,
            typed.source,
            typed.type,
            typed.ref,
        )
        spec = full.data.get("spec")
        assert is_object(typed.data.spec) == isinstance(spec, dict)
        if isinstance(spec, dict):  # the same dict, floats and key order included
            assert orjson.dumps(decode_value(typed.data.spec)) == orjson.dumps(spec)
        for key in ("health", "labels", "conditions", "names", "reason"):
            assert value(getattr(typed.data, key), "absent") == full.data.get(key, "absent")


def test_a_reader_with_either_decoder_hands_back_the_same_bad_lines(tmp_path: Path) -> None:
    """Real files, one buffer per file: a buffer with invalid UTF-8 in a skipped value
    goes line by line, and both readers report the same bad lines at the same offsets."""
    good = [
        b'{"id":"0001-p-0001","ts":"t","source":"p","type":"observed.resource",'
        b'"ref":{"kind":"Container","name":"a"},"data":{"spec":{"image":"x"},"zz":"caf\xc3\xa9"}}',
        b'{"id":"0001-p-0002","ts":"t","source":"p","type":"queue.added","data":{"n":1e999}}',
    ]
    bad = [
        b'{"id":"0001-p-0003","ts":"t","source":"p","type":"queue.added","data":{"zz":"\xff"}}',
        b'{"id":"0001-p-0004","ts":"t","source":"p","type":"observed.resource",'
        b'"data":{"spec":{"a":"\xc3"},"health":"Healthy"}}',
        b'{"id": torn',
    ]
    day = tmp_path / "events" / "2024-05-01"
    day.mkdir(parents=True)
    (day / "a.jsonl").write_bytes(b"\n".join([good[0], bad[0], good[1]]) + b"\n")
    (day / "b.jsonl").write_bytes(b"\n".join([bad[1], good[0], bad[2]]) + b"\n")
    (day / "c.jsonl").write_bytes(b"\n".join(good) + b"\n")
    root = RuntimeRoot(tmp_path)
    full = list(LogReader(root).batches())
    typed = list(LogReader(root, decoder=REPLAY_DECODER).batches())
    assert [b.bad for b in typed] == [b.bad for b in full]
    assert [(b.offset, b.line) for b in full[0].bad] == [
        (len(good[0]) + 1, bad[0]),
        (0, bad[1]),
        (len(bad[1]) + len(good[0]) + 2, bad[2]),
    ]
    assert [e.id for e in typed[0].events] == [e.id for e in full[0].events]
    assert len(typed[0].events) == 5
    assert [b.offsets for b in typed] == [b.offsets for b in full]
