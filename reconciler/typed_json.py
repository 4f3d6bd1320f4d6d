"""`Codec`: one typed JSON document kind, decoded and encoded with msgspec.

The typed core documents (`reconciler.queue.action.Action`,
`reconciler.world.doc.WorldDoc`) are frozen msgspec structs; each module
makes one `Codec` for its struct and its own error type, so a malformed
file is always that error (a `ValueError`) naming the field, never a
`KeyError` later. Pure; used by the queue and the world.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

T = TypeVar("T")


class Codec(Generic[T]):
    def __init__(self, type_: type[T], error: type[ValueError]) -> None:
        self.type = type_
        self.error = error
        self._decoder = msgspec.json.Decoder(type_)

    def from_json(self, data: bytes) -> T:
        try:
            return self._decoder.decode(data)
        except msgspec.DecodeError as exc:  # ValidationError included
            raise self.error(str(exc)) from None

    def from_dict(self, doc: Any) -> T:
        try:
            return msgspec.convert(doc, self.type)
        except msgspec.ValidationError as exc:
            raise self.error(str(exc)) from None

    @staticmethod
    def to_dict(value: T) -> dict[str, Any]:
        out: dict[str, Any] = msgspec.to_builtins(value)
        return out
