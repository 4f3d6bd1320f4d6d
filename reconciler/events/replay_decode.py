"""Typed decoding for the from-scratch rebuild: only the keys the fold reads, nothing else built.

`LogEvent` decodes an event's `data` into a dict, every nested value with
it, which is most of a rebuild's time and memory: a million events are a
million dicts, each with its spec's dict, and the fold ends up using the
spec of only the newest event of each resource. `ReplayEvent` decodes the
same line into a struct whose `data` (`ReplayData`) has a field for each key
the fold reads and nothing else: the keys it does not read are skipped by
msgspec without building anything, and the spec and runtime of an
observation stay raw JSON (`msgspec.Raw`) until the rebuild writes the one
document that uses them (`decode_value`).

A line must be a bad line for the rebuild exactly when it is one for
`LogEvent` (the property test in tests/events/test_replay_decode.py holds
them to it). A skipped value is checked for its JSON syntax (escapes, control
characters, nesting) but not for two things a full decode refuses:
- invalid UTF-8 in a skipped string: `REPLAY_DECODER` decodes a buffer the
  fast way only when it is valid UTF-8 as a whole (its ASCII test takes
  about 10 ms for a million events), and line by line through `LogEvent`
  first otherwise;
- a float beyond a double's range: every decoder of the log reads one as an
  infinity (`float_hook`, reconciler.events.reader), so none refuses it.
Pure, no I/O; used by the folding shell's rebuild (through `LogReader`'s
`decoder`) and folded by `reconciler.observer.replay.Replay`.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, Raw, UnsetType

__all__ = [
    "REPLAY_DECODER",
    "UNSET",
    "ReplayData",
    "ReplayDecoder",
    "ReplayEvent",
    "decode_value",
    "is_object",
    "value",
]

from reconciler.events.reader import LogRef, decode_event


class ReplayData(msgspec.Struct, frozen=True, gc=False):
    """The keys of an event's `data` the fold reads; UNSET where the event has none."""

    # observed.resource
    spec: Raw | UnsetType = UNSET
    runtime: Raw | UnsetType = UNSET
    health: Any = UNSET
    managed: Any = UNSET
    node: Any = UNSET  # also observed.listing
    labels: Any = UNSET
    conditions: Any = UNSET
    # node.status (and reason, message)
    ready: Any = UNSET
    info: Any = UNSET
    # resource.condition (and reason, message)
    type: Any = UNSET
    status: Any = UNSET
    reason: Any = UNSET  # also action.*
    message: Any = UNSET
    # observed.listing (and node)
    kind: Any = UNSET
    names: Any = UNSET
    startedAt: Any = UNSET
    # action.*
    action: Any = UNSET
    state: Any = UNSET
    operation: Any = UNSET
    actor: Any = UNSET
    outcome: Any = UNSET


_NO_DATA = ReplayData()


class ReplayEvent(msgspec.Struct, frozen=True, gc=False):
    """One event line as the rebuild folds it (`LogEvent` with a typed `data`)."""

    id: str
    ts: str
    source: str
    type: str
    ref: LogRef | None = None
    data: ReplayData = _NO_DATA


def value(field: Any, default: Any = None) -> Any:
    """A `ReplayData` field as `dict.get` gives it: `default` when the key is absent."""
    return default if field is UNSET else field


def is_object(raw: Raw | UnsetType) -> bool:
    """Whether a raw value is a JSON object (msgspec keeps it without leading blanks)."""
    return raw is not UNSET and len(raw) > 0 and memoryview(raw)[0] == 0x7B  # "{"


_VALUE = msgspec.json.Decoder(float_hook=float)


def decode_value(raw: Raw) -> Any:
    """A raw value decoded as `LogEvent` decodes it (same floats, same key order)."""
    return _VALUE.decode(memoryview(raw))


class ReplayDecoder:
    """A `LogReader` decoder into `ReplayEvent` that refuses exactly what `LogEvent` refuses."""

    def __init__(self) -> None:
        self._typed = msgspec.json.Decoder(ReplayEvent, float_hook=float)

    def decode(self, line: bytes) -> ReplayEvent:
        decode_event(line)  # raises as a full decode does (one line: the slow path)
        return self._typed.decode(line)

    def decode_lines(self, buf: bytes) -> list[ReplayEvent]:
        if not buf.isascii():
            try:
                buf.decode("utf-8")
            except UnicodeDecodeError:
                # A skipped string would hide it: let the reader go line by line (`decode`).
                raise msgspec.DecodeError("invalid UTF-8 in the buffer") from None
        return self._typed.decode_lines(buf)


REPLAY_DECODER = ReplayDecoder()
