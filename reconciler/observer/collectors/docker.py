"""The Docker collector: one Node's engine → container, stack and node events.

For its node it lists the containers this project manages (by label) and
the compose stacks applied under `ROOT/stacks/`, emits `observed.resource`
/ `observed.missing` for each and one `observed.listing` per kind, then
follows the engine's `events` stream, one long-lived request, so a container
that dies or is removed by hand is seen at once and an idle engine wakes
nothing; every `resync` seconds, or when the engine ends the stream, a
helper thread closes it, a full re-list runs and the stream is opened again
from the second of the last event read (`_follow`, `_stream`). It
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

from reconciler.atomic_files import read_json
from reconciler.observer.collectors import Emit
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
HEARTBEAT = 600.0  # an unchanged listing is written again after this many seconds


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _close(stream: Any) -> None:
    """Close an events stream, waking a thread blocked reading it (any transport)."""
    try:
        stream.close()  # shuts the socket down: the reader's next() ends
    except docker.errors.DockerException:
        # ssh:// through paramiko: docker-py does not cancel those; close the channel.
        channel = getattr(stream._response.raw._fp.fp, "channel", None)
        if channel is not None:
            channel.close()
    except OSError:
        pass  # already closed


def _close_later(stream: Any, stop: threading.Event, seconds: float) -> None:
    """Close `stream` when `stop` is set or after `seconds` (the next resync)."""
    stop.wait(seconds)
    _close(stream)


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
        since = int(time.time()) - 1  # before the listing: nothing falls between the two
        self.full_listing(client)
        while not stop.is_set():
            since = self._stream(client, stop, since)
            if stop.is_set():
                return
            self._node_status(probe_node(client))
            self.full_listing(client)

    def _stream(self, client: Any, stop: threading.Event, since: int) -> int:
        """Read the events stream from `since` until stop, the resync time or its end.

        Returns where the next stream starts: the second of the last event read
        (the engine's clock), or `since` again when none came. Every event not
        read yet is at or after it, and those read in that second are dropped
        as repeats (`SeenEvents`).
        """
        self._seen.forget_before(since)
        stream = client.events(since=since, filters=EVENT_FILTERS, decode=True)
        closer = threading.Thread(
            target=_close_later,
            args=(stream, stop, self.resync),
            name=f"collector-{self.node}-closer",
            daemon=True,
        )
        closer.start()
        try:
            for event in stream:
                when = event.get("time")
                if isinstance(when, int) and when > since:
                    since = when
                if self._seen.first_time(event):
                    self._on_event(client, event)
                if stop.is_set():
                    break
        finally:
            _close(stream)
        return since

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
        self._listing("ComposeStack", self._check_stacks(client, None, resync=True), started)

    def _on_event(self, client: Any, event: dict[str, Any]) -> None:
        if not triggers_inspection(event):
            return  # a healthcheck exec, an attach...: nothing an observation holds
        attrs = (event.get("Actor") or {}).get("Attributes") or {}
        project = attrs.get(COMPOSE_PROJECT)
        if project:
            self._check_stacks(client, project)
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

    def _applied_stacks(self) -> dict[str, dict[str, Any]]:
        stacks: dict[str, dict[str, Any]] = {}
        if not self.root.stacks.is_dir():
            return stacks
        for folder in sorted(self.root.stacks.iterdir()):
            try:
                spec = read_json(folder / "applied.json").get("spec")
            except (OSError, ValueError, AttributeError):
                continue
            if isinstance(spec, dict) and spec.get("node", "local") == self.node:
                stacks[folder.name] = spec
        return stacks

    def _check_stacks(self, client: Any, project: str | None, *, resync: bool = False) -> list[str]:
        """Observe applied stacks (all, or those of one compose project); names present."""
        present = []
        for name, spec in self._applied_stacks().items():
            proj = str(spec.get("project") or name)
            if project is not None and proj != project:
                continue
            found = client.containers.list(all=True, filters={"label": f"{COMPOSE_PROJECT}={proj}"})
            key = ResourceKey("ComposeStack", name)
            if not found:
                missing = {"reason": "no containers"}
                self.ledger.write("observed.missing", key, missing, resync=resync)
                continue
            present.append(name)
            states = [container_health(c.attrs.get("State") or {}) for c in found]
            health = (
                "Healthy"
                if all(s == "Healthy" for s in states)
                else ("Stopped" if all(s == "Stopped" for s in states) else "Unhealthy")
            )
            data = {
                "spec": spec,
                "health": health,
                "node": self.node,
                "managed": True,
                "containers": len(found),
            }
            self.ledger.write("observed.resource", key, data, resync=resync)
        return present
