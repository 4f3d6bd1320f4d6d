"""One observation pass in memory, for `homelab plan --refresh`.

`refresh_world(root, state)` reads every Node of the planned commit once
with the observer's own collectors (node probe, then
`DockerCollector.full_listing`; the `FileCollector` for files on this
machine), folds what they emit with the observer's fold (`WorldState`) into
a copy of the world documents on disk, and returns that copy, typed, for
`compute_plan`. No observer service is needed and nothing is written: the
events go to a list, not to the event log, and no world document changes
(see "Refresh" in docs/internals.md for why a plan stays read-only). A node
whose engine cannot be reached is reported with the reason; the resources on
it keep their last observation and are listed as not refreshed. Called by
`reconciler.cli.plan`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import docker
import orjson

from reconciler.events.log import new_event_id
from reconciler.events.reader import LogEvent, LogRef
from reconciler.observer.collectors.docker import DockerCollector
from reconciler.observer.collectors.file import FileCollector
from reconciler.observer.collectors.node import (
    NodeTarget,
    probe_node,
    targets_from_state,
    unreachable,
)
from reconciler.observer.fold import WorldState
from reconciler.resources.key import ResourceKey
from reconciler.resources.kinds import KINDS
from reconciler.runtime_root import RuntimeRoot
from reconciler.sources.git import DesiredState
from reconciler.world import read_doc_bytes
from reconciler.world.doc import InvalidWorldDoc, WorldDoc, world_doc_from_dict

PRODUCER = "refresh"  # the producer in the ids of the in-memory events (never written)
NODE_KINDS = (
    "Container",
    "ComposeStack",
    "Network",
    "Volume",
)  # kinds observed through a node's engine


@dataclass(frozen=True)
class NodeRefresh:
    """How reading one node went."""

    name: str
    ready: bool
    message: str
    seconds: float


@dataclass(frozen=True)
class Drift:
    """A resource whose observation the refresh changed (seen outside any plan)."""

    ref: ResourceKey
    what: str  # "health Healthy -> Stopped", "spec changed", "now missing", ...


@dataclass
class RefreshResult:
    world: dict[ResourceKey, WorldDoc]
    nodes: list[NodeRefresh] = field(default_factory=list)
    not_refreshed: dict[ResourceKey, str] = field(default_factory=dict)  # ref -> why
    drift: list[Drift] = field(default_factory=list)
    events: int = 0  # observations the collectors emitted

    @property
    def unreachable(self) -> list[NodeRefresh]:
        return [n for n in self.nodes if not n.ready]


Progress = Callable[[str], None]  # called with a step's name before it runs


class _Recorder:
    """The collectors' `Emit`: events kept in memory, in emission order.

    Every id carries the time the pass started and a sequence number, so the
    events sort in the order they were emitted and after every event already
    folded into the world (those were written before the pass started).
    """

    def __init__(self) -> None:
        self.events: list[LogEvent] = []
        self._ns = time.time_ns()
        self._ts = datetime.fromtimestamp(self._ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def __call__(self, etype: str, ref: ResourceKey | None, data: dict[str, Any]) -> None:
        self.events.append(
            LogEvent(
                id=new_event_id(PRODUCER, self._ns, len(self.events) + 1),
                ts=self._ts,
                source=PRODUCER,
                type=etype,
                ref=None if ref is None else LogRef(ref[0], ref[1]),
                data=data,
            )
        )


def _start_docs(root: RuntimeRoot) -> dict[ResourceKey, dict[str, Any]]:
    """The world on disk as the fold's plain documents (unreadable ones are left out)."""
    docs = {}
    for kind in KINDS:
        try:
            entries = list(os.scandir(root.world / kind))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if entry.name.startswith(".") or not entry.name.endswith(".json"):
                continue
            try:
                raw = orjson.loads(read_doc_bytes(entry.path)[0])
                world_doc_from_dict(raw)  # the shape every reader relies on
            except (OSError, orjson.JSONDecodeError, InvalidWorldDoc):
                continue  # as WorldReader does: a document nobody can read plans as unknown
            status = raw["status"]
            status.setdefault("node", None)
            status.setdefault("eventIds", {"observed": "", "lastAction": "", "conditions": {}})
            docs[ResourceKey(kind, entry.name[:-5])] = raw
    return docs


def _read_node(
    target: NodeTarget, root: RuntimeRoot, emit: _Recorder, timeout: float
) -> NodeRefresh:
    t0 = time.perf_counter()
    client = None
    try:
        client = docker.DockerClient(base_url=target.docker_host, timeout=timeout)
        status = probe_node(client)
        emit("node.status", ResourceKey("Node", target.name), status)
        # A root without an instance id never created a container (the id is made
        # on first use, and a refresh writes nothing): none is managed, but the
        # containers to adopt (`homelab import`, `homelab-<name>`) are still listed.
        fresh = None if (root.state / "instance_id").exists() else "none-yet"
        DockerCollector(target, root, emit, instance=fresh).full_listing(client)
        ready, message = True, str(status["message"])
    except Exception as exc:  # engine down, ssh refused, bad host string: a line, not a crash
        status = unreachable(exc)
        emit("node.status", ResourceKey("Node", target.name), status)
        ready, message = False, str(status["message"])
    finally:
        if client is not None:
            client.close()
    return NodeRefresh(target.name, ready, message, time.perf_counter() - t0)


def _drift(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """What changed between two statuses of one document, in words (None: nothing shown)."""
    if bool(old.get("exists")) != bool(new["exists"]):
        return "now present" if new["exists"] else "now missing"
    if not new["exists"]:
        return None
    parts = []
    if old.get("observed") != new["observed"]:
        changed = sorted(
            k
            for k in set(old.get("observed") or {}) | set(new["observed"] or {})
            if (old.get("observed") or {}).get(k) != (new["observed"] or {}).get(k)
        )
        parts.append("spec " + ", ".join(changed) + " changed")
    if old.get("health") != new["health"]:
        parts.append(f"health {old.get('health')} -> {new['health']}")
    return "; ".join(parts) or None


def _not_refreshed(
    state: DesiredState,
    docs: dict[ResourceKey, dict[str, Any]],
    engines_down: dict[str, str],
    remote_files: dict[str, str],
) -> dict[ResourceKey, str]:
    """Resources the pass could not read (node -> why, per kind of read), with why."""

    def why(kind: str, node: Any) -> str | None:
        skipped = remote_files if kind == "File" else engines_down
        return skipped.get(node) if kind in (*NODE_KINDS, "File") else None

    out: dict[ResourceKey, str] = {}
    for ref, manifest in state.manifests.items():
        reason = why(ref.kind, str((manifest.doc.get("spec") or {}).get("node") or "local"))
        if reason is not None:
            out[ref] = reason
    for ref, doc in docs.items():
        reason = why(ref.kind, doc["status"].get("node"))
        if reason is not None:
            out.setdefault(ref, reason)
    return dict(sorted(out.items()))


def refresh_world(
    root: RuntimeRoot,
    state: DesiredState,
    *,
    progress: Progress | None = None,
    timeout: float = 10.0,
) -> RefreshResult:
    """Observe every node of `state` once and fold it into a copy of the world."""
    targets, files = targets_from_state(state)
    emit = _Recorder()
    nodes = []
    for target in targets.values():
        if progress is not None:
            progress(f"node {target.name}")
        nodes.append(_read_node(target, root, emit, timeout))
    down = {n.name: f"node {n.name} unreachable: {n.message}" for n in nodes if not n.ready}
    if progress is not None:
        progress("files")
    docs = _start_docs(root)
    collector = FileCollector(emit)
    collector.learn(docs, files)
    local = {name for name, t in targets.items() if t.local}
    collector.check(docs, local)
    # Files of a node whose engine is not a local socket are not on this machine.
    remote = {n: f"node {n} is not this machine" for n, t in targets.items() if not t.local}
    before_status = {ref: dict(doc["status"]) for ref, doc in docs.items()}
    world = WorldState(docs=docs)
    for event in sorted(emit.events, key=lambda e: e.id):
        world.apply(event)
    changed = world.take_dirty()
    drift = []
    for ref in sorted(changed):
        if ref.kind == "Node":
            continue
        status = changed[ref]["status"]
        if (
            ref.kind in ("Network", "Volume")
            and not status.get("managed")
            and ref not in state.manifests
        ):
            continue  # a network or volume no manifest names (compose's, made by hand): not drift
        what = _drift(before_status.get(ref, {}), changed[ref]["status"])
        if what is not None:
            drift.append(Drift(ref, what))
    typed = {ref: world_doc_from_dict(doc) for ref, doc in world.docs.items()}
    return RefreshResult(
        typed,
        nodes,
        _not_refreshed(state, world.docs, down, remote),
        drift,
        len(emit.events),
    )
