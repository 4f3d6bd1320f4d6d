"""`ResourceKey`: the one name of a resource everywhere (kind, name).

A named tuple, so it is hashable, unpacks as `kind, name = key`, sorts by
kind then name, and equals the plain `(kind, name)` pairs that JSON decoding
and older callers produce; `str(key)` is the `Kind/name` form the CLI, the
UI and messages print. Pure; used by every layer.
"""

from __future__ import annotations

from typing import NamedTuple


class ResourceKey(NamedTuple):
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"

    @classmethod
    def parse(cls, text: str) -> ResourceKey:
        """`Kind/name` -> key; ValueError when there is no slash."""
        kind, sep, name = text.partition("/")
        if not sep or not kind or not name:
            raise ValueError(f"{text!r}: expected Kind/name")
        return cls(kind, name)
