"""`WorldDoc`: a world document, typed, as every reader sees it.

The observer's fold builds and writes world documents as plain JSON objects
(`new_world_doc`, `reconciler.observer.fold`): it mutates field groups in
place per event, which a frozen type would make a copy per event. Every
other service reads them through this type, decoded once where the file is
read (`WorldReader`, `read_world_doc`), so a malformed document is one
`InvalidWorldDoc` at the edge instead of a `KeyError` deep in a planner or a
page. Keys that the fold writes only sometimes (`lastAction.reason`,
`lastAction.outcome`, a Node's `status.info`) stay unset when absent, so
`world_doc_to_dict` gives back exactly the object on disk. Pure; used by the
planner, the supervisor, the executor, the UI and the CLI.
"""

from __future__ import annotations

from typing import Any

import msgspec

from reconciler.typed_json import Codec

UNSET = msgspec.UNSET


class InvalidWorldDoc(ValueError):
    """A world file that is not a world document (the message says which field)."""


class Condition(msgspec.Struct, frozen=True, rename="camel"):
    type: str
    status: str
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = None


class LastAction(msgspec.Struct, frozen=True):
    """The newest `action.*` event folded for the resource."""

    id: str | None = None
    state: str | None = None
    operation: str | None = None
    actor: str | None = None
    at: str | None = None
    reason: Any = UNSET
    outcome: Any = UNSET


class WorldStatus(msgspec.Struct, frozen=True, rename="camel"):
    exists: bool = False
    managed: bool = False
    observed: dict[str, Any] | None = None
    observed_at: str | None = None
    health: str = "Unknown"
    conditions: tuple[Condition, ...] = ()
    basis: str | None = ""
    last_action: LastAction | None = None
    last_event_id: str | None = None
    node: str | msgspec.UnsetType | None = UNSET
    event_ids: dict[str, Any] | msgspec.UnsetType = UNSET
    info: dict[str, Any] | msgspec.UnsetType = UNSET
    runtime: dict[str, Any] | msgspec.UnsetType = UNSET

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)


class WorldMeta(msgspec.Struct, frozen=True):
    name: str
    labels: dict[str, Any] = {}


class WorldDoc(msgspec.Struct, frozen=True, rename="camel"):
    api_version: str
    kind: str
    metadata: WorldMeta
    status: WorldStatus = WorldStatus()

    @property
    def observed_spec(self) -> dict[str, Any] | None:
        """The spec as seen, or None when the resource does not exist."""
        return self.status.observed if self.status.exists else None

    @property
    def basis(self) -> str:
        """The hash of the observed spec ("" when missing)."""
        return self.status.basis or "" if self.status.exists else ""


_CODEC = Codec(WorldDoc, InvalidWorldDoc)
world_doc_from_json = _CODEC.from_json
world_doc_from_dict = _CODEC.from_dict
world_doc_to_dict = _CODEC.to_dict  # exactly the object on disk
