"""The Docker collector: one Node's engine → container, stack and node events.

For its node it lists the containers this project manages (by label) and
the compose projects (`compose_stack.StackObserver` compares the stacks
applied under `ROOT/stacks/` with their services), emits `observed.resource`
/ `observed.missing` for each and one `observed.listing` per kind, then
follows the engine's `events` stream so a container that dies or is removed
by hand is seen at once; a full re-list runs every `resync` seconds. It
writes only what changed: observations go through an `ObservationLedger`
(nothing the world already holds is written again, after a restart
included), healthcheck execs trigger no inspection and events repeated by
the overlapping stream windows are dropped (`engine_events`), and a
listing is written when its names changed, at the collector's start (the
supervisor's delete gate waits for it) and otherwise once per `heartbeat`
seconds. An unreachable engine becomes `node.status` ready=false and a
retry with backoff, never a crash. Run in its own thread by the observer
service.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

import docker
import orjson

from reconciler.observer.collectors import Emit
from reconciler.observer.collectors.compose_stack import StackObserver
from reconciler.observer.collectors.engine_events import (
    EVENT_FILTERS,
    SeenEvents,
    action_of,
    triggers_inspection,
)
from reconciler.observer.collectors.ledger import ObservationLedger
from reconciler.observer.collectors.node import NodeTarget, probe_node, unreachable
from reconciler.resources.key import ResourceKey
from reconciler.runtime_root import RuntimeRoot

log = logging.getLogger("reconciler.observer")
P = "homelab.reconciler"
MANAGED = f"{P}/managed-by=homelab-reconciler"
SPEC_LABEL = f"{P}/spec"
COMPOSE_PROJECT = "com.docker.compose.project"
_WINDOW = 2  # seconds per events() call, so stop and resync are checked often
HEARTBEAT = 600.0  # an unchanged listing is written again after this many seconds


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def container_health(state: dict[str, Any]) -> str:
    status = state.get("Status")
    if status == "running":
        health = (state.get("Health") or {}).get("Status")
        return {"unhealthy": "Unhealthy", "starting": "Starting"}.get(health or "", "Healthy")
    if status == "restarting":
        return "Starting"
    if status in ("exited", "dead", "created", "paused", "removing"):
        return "Stopped"
    return "Unknown"


def container_observation(attrs: dict[str, Any], node: str) -> dict[str, Any]:
    """`observed.resource` data for one managed container (from docker inspect)."""
    config = attrs.get("Config") or {}
    labels = config.get("Labels") or {}
    image = config.get("Image") or ""
    conditions = []
    raw = labels.get(SPEC_LABEL)
    spec: Any = None
    if raw is not None:
        try:
            spec = orjson.loads(raw)
        except orjson.JSONDecodeError:
            spec = None
    if not isinstance(spec, dict):
        reason = "LabelMissing" if raw is None else "LabelUnreadable"
        spec = {"node": node, "image": image}
        conditions.append(
            {
                "type": "SpecReadable",
                "status": "False",
                "reason": reason,
                "message": f"label {SPEC_LABEL} is missing or not a JSON object; "
                "the container will be replaced to restore it",
            }
        )
    else:
        conditions.append({"type": "SpecReadable", "status": "True", "reason": "LabelRead"})
        if spec.get("image") != image:
            conditions.append(
                {
                    "type": "ImageMatches",
                    "status": "False",
                    "reason": "ImageChanged",
                    "message": f"label says {spec.get('image')!r}, the container runs {image!r}",
                }
            )
            spec = {**spec, "image": image}
    return {
        "spec": spec,
        "health": container_health(attrs.get("State") or {}),
        "node": node,
        "managed": True,
        "conditions": conditions,
        "containerId": attrs.get("Id", "")[:12],
    }


class DockerCollector:
    """Watches one node's engine until `stop` is set."""

    def __init__(
        self,
        target: NodeTarget,
        root: RuntimeRoot,
        emit: Emit,
        *,
        resync: float = 30.0,
        heartbeat: float = HEARTBEAT,
        compose_command: tuple[str, ...] | None = None,
    ) -> None:
        self.target = target
        self.root = root
        self.emit = emit
        self.resync = resync
        self.heartbeat = heartbeat
        self.started_at = now_iso()
        self.ready = False
        self.instance = root.instance_id()
        self.ledger = ObservationLedger(root, emit)
        self._seen = SeenEvents()
        self._listed: dict[str, tuple[list[str], float]] = {}  # kind -> (names, monotonic)
        self.stacks = StackObserver(target, root, self.ledger, compose_command)

    @property
    def node(self) -> str:
        return self.target.name

    def run(self, stop: threading.Event) -> None:
        backoff = 1.0
        while not stop.is_set():
            try:
                client = docker.DockerClient(base_url=self.target.docker_host, timeout=10)
                try:
                    self._follow(client, stop)
                    backoff = 1.0
                finally:
                    client.close()
            except Exception as exc:  # engine gone, ssh down...: report and retry
                self.ready = False
                self._node_status(unreachable(exc))
                log.warning("node %s: %s; retrying in %.0f s", self.node, exc, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    def _node_status(self, data: dict[str, Any]) -> None:
        self.ledger.write("node.status", ResourceKey("Node", self.node), data, resync=True)

    def _listing(self, kind: str, names: list[str], started: str) -> None:
        names = sorted(names)
        last = self._listed.get(kind)
        now = time.monotonic()
        if last is not None and last[0] == names and now - last[1] < self.heartbeat:
            return
        self.emit(
            "observed.listing",
            None,
            {"kind": kind, "node": self.node, "names": names, "startedAt": started},
        )
        self._listed[kind] = (names, now)

    def _follow(self, client: Any, stop: threading.Event) -> None:
        self._node_status(probe_node(client))
        self.ready = True
        since = int(time.time()) - 1
        self.full_listing(client)
        next_resync = time.monotonic() + self.resync
        while not stop.is_set():
            until = int(time.time()) + _WINDOW
            self._seen.forget_before(since)
            for event in client.events(
                since=since, until=until, filters=EVENT_FILTERS, decode=True
            ):
                if self._seen.first_time(event):
                    self._on_event(client, event)
                if stop.is_set():
                    return
            since = until - 1  # overlap a second so no event falls between windows
            if time.monotonic() >= next_resync:
                self._node_status(probe_node(client))
                self.full_listing(client)
                next_resync = time.monotonic() + self.resync

    def full_listing(self, client: Any) -> None:
        started = now_iso()
        filters = {
            "label": [
                MANAGED,
                f"{P}/instance={self.instance}",
                f"{P}/kind=Container",
                f"{P}/node={self.node}",
            ]
        }
        names = []
        for container in client.containers.list(all=True, filters=filters):
            name = container.labels.get(f"{P}/name")
            if name:
                names.append(name)
                self.ledger.write(
                    "observed.resource",
                    ResourceKey("Container", name),
                    container_observation(container.attrs, self.node),
                    resync=True,
                )
        self._listing("Container", names, started)
        self._listing("ComposeStack", self.stacks.check(client, None, resync=True), started)

    def _on_event(self, client: Any, event: dict[str, Any]) -> None:
        if not triggers_inspection(event):
            return  # a healthcheck exec, an attach...: nothing an observation holds
        attrs = (event.get("Actor") or {}).get("Attributes") or {}
        project = attrs.get(COMPOSE_PROJECT)
        if project:
            self.stacks.check(client, project)
        if attrs.get(f"{P}/managed-by") != "homelab-reconciler":
            return
        if attrs.get(f"{P}/instance") != self.instance:
            return  # another control plane's container on a shared engine
        if attrs.get(f"{P}/kind") != "Container" or attrs.get(f"{P}/node") != self.node:
            return
        name = attrs.get(f"{P}/name")
        if not name:
            return
        key = ResourceKey("Container", name)
        if action_of(event) == "destroy":
            self.ledger.write("observed.missing", key, {"reason": "container removed"})
            return
        try:
            container = client.containers.get(event.get("id") or (event.get("Actor") or {})["ID"])
        except docker.errors.NotFound:
            self.ledger.write("observed.missing", key, {"reason": "container removed"})
            return
        self.ledger.write(
            "observed.resource", key, container_observation(container.attrs, self.node)
        )
