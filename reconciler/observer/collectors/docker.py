"""The Docker collector: one Node's engine → container, stack and node events.

For its node it observes every container that is a `Container` resource:
labelled as managed by this runtime root for this node, recorded in the
adoption registry (`ROOT/state/adopted/Container/`, by container id), or
named `homelab-<name>` (or a manifest's `containerName`, `NodeTarget.claims`;
then also a compose project's container) without managed labels (observed with `managed:
false`, so the planner can offer to adopt it); containers of another root,
another node or a compose project are left alone. The observation is what
the engine runs, mapped back to the comparable spec
(`reconciler.drivers.container_observe`; the spec label or the registry
record is only the last-applied spec that tells image defaults from set
values), with the image id, digests and start time as `runtime`; image
inspects are cached by image id. It also observes the compose projects
(`compose_stack.StackObserver` compares the stacks applied under
`ROOT/stacks/` with their services), emits `observed.resource` / `observed.missing`
for each and one `observed.listing` per kind (every name it observed), then
follows the engine's `events` stream, one long-lived request, so a
container changed, stopped or removed by hand is seen at once and an idle
engine wakes nothing; every `resync` seconds, or when the engine ends the
stream, a helper thread closes it, a full re-list runs
(`full_listing(client)` is also callable alone) and the stream is opened
again from the second of the last event read (`_follow`, `_stream`). It
writes only what changed: observations go through an `ObservationLedger`
(nothing the world already holds is written again, after a restart
included), healthcheck execs trigger no inspection and events repeated
across reopened streams are dropped (`engine_events`), and a listing is
written when its names changed, at the collector's start (the supervisor's
delete gate waits for it) and otherwise once per `heartbeat` seconds. An
unreachable engine becomes `node.status` ready=false and a retry with
backoff, never a crash. Run in its own thread by the observer service.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import docker
import docker.errors

from reconciler.drivers.adopted import read_adopted
from reconciler.drivers.container_fields import observed_secrets
from reconciler.drivers.container_observe import (
    MANAGED_BY,
    SPEC_LABEL,
    KnownSecrets,
    container_health,
    container_runtime,
    label_spec,
    observed_container_spec,
    record_matches,
    secret_files,
    secret_fingerprints,
)
from reconciler.observer.collectors import Emit
from reconciler.observer.collectors.compose_stack import StackObserver
from reconciler.observer.collectors.engine_events import (
    EVENT_FILTERS,
    SeenEvents,
    action_of,
    triggers_inspection,
)
from reconciler.observer.collectors.ledger import ObservationLedger
from reconciler.observer.collectors.netvol import KINDS as NETVOL_KINDS
from reconciler.observer.collectors.netvol import NetVolObserver
from reconciler.observer.collectors.node import NodeTarget, probe_node, unreachable
from reconciler.resources.key import ResourceKey
from reconciler.resources.meta import check_dns_label
from reconciler.runtime_root import RuntimeRoot

log = logging.getLogger("reconciler.observer")
P = "homelab.reconciler"
COMPOSE_PROJECT = "com.docker.compose.project"
HEARTBEAT = 600.0  # an unchanged listing is written again after this many seconds


def resource_name(container_name: str) -> str | None:
    """`homelab-<name>` -> `<name>` when it is a DNS label, else None."""
    name = container_name.lstrip("/")
    if not name.startswith("homelab-"):
        return None
    try:
        return check_dns_label(name.removeprefix("homelab-"))
    except ValueError:
        return None


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


@dataclass(frozen=True)
class Owned:
    """A container this collector reports: its resource name and what was last applied."""

    name: str
    managed: bool
    last_applied: dict[str, Any] | None
    reason: str  # LabelRead, LabelMissing, LabelUnreadable, RegistryRecord, NotManaged


_REASONS = {
    "LabelRead": ("True", "the last-applied spec is the container's spec label"),
    "RegistryRecord": ("True", "the last-applied spec is the adoption registry's record"),
    "LabelMissing": (
        "False",
        f"label {SPEC_LABEL} is missing: values the image sets count as unset",
    ),
    "LabelUnreadable": (
        "False",
        f"label {SPEC_LABEL} is not a JSON object: values the image sets count as unset",
    ),
    "NotManaged": ("False", "not managed by this control plane: no last-applied spec"),
}


def container_observation(
    attrs: dict[str, Any],
    image_attrs: dict[str, Any] | None,
    owned: Owned,
    node: str,
    known_secrets: KnownSecrets | None = None,
    secrets: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """`observed.resource` data for one container (from docker inspect of it and its image).

    The spec is what the engine runs (`observed_container_spec`); the spec
    label (or the adoption record) only tells image defaults from set values.
    """
    status, message = _REASONS[owned.reason]
    return {
        "spec": observed_container_spec(
            attrs,
            image_attrs,
            owned.last_applied,
            node,
            known_secrets=known_secrets,
            name=owned.name,
            secrets=secrets,
        ),
        "health": container_health(attrs.get("State") or {}),
        "node": node,
        "managed": owned.managed,
        "conditions": [
            {"type": "SpecReadable", "status": status, "reason": owned.reason, "message": message}
        ],
        "containerId": attrs.get("Id", "")[:12],
        "runtime": container_runtime(attrs, image_attrs),
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
        instance: str | None = None,
    ) -> None:
        self.target = target
        self.root = root
        self.emit = emit
        self.resync = resync
        self.heartbeat = heartbeat
        self.started_at = now_iso()
        self.ready = False
        # `instance`: a refresh of a root that has none yet passes one no label carries.
        self.instance = root.instance_id() if instance is None else instance
        self.ledger = ObservationLedger(root, emit)
        self._seen = SeenEvents()
        self._listed: dict[str, tuple[list[str], float]] = {}  # kind -> (names, monotonic)
        self._images: dict[str, dict[str, Any]] = {}  # image id -> docker image inspect
        self._secrets: KnownSecrets = {}
        self._secret_stats: dict[str, tuple[int, int, int]] = {}
        self.stacks = StackObserver(target, root, self.ledger, compose_command)
        self.claims = dict(target.claims)  # engine name -> Container resource name
        self.netvol = NetVolObserver(target.name, root, self.ledger, instance=self.instance)

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
        self.full_listing(client, usage=False)  # the stream opens sooner (see netvol.py)
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

    def owner(
        self,
        cname: str,
        labels: dict[str, str],
        container_id: str,
        adopted: dict[str, dict[str, Any]] | None = None,
    ) -> Owned | None:
        """Which resource a container (name, labels, id) is on this node, or None.

        Labelled by this root for this node: managed, last-applied = the spec
        label. Labelled by another root or for another node, or part of a
        compose project: not ours. Otherwise a container named
        `homelab-<name>`: managed when the adoption registry records its id
        (last-applied = the record's spec), else observed unmanaged.
        `adopted` is `read_adopted(root, "Container")`, read here when not given.
        """
        if labels.get(f"{P}/managed-by") == MANAGED_BY:
            if labels.get(f"{P}/instance") != self.instance:
                return None  # another control plane's container on a shared engine
            if labels.get(f"{P}/kind") != "Container" or labels.get(f"{P}/node") != self.node:
                return None
            name = labels.get(f"{P}/name")
            if not name:
                return None
            spec, reason = label_spec(labels)
            return Owned(name, True, spec, reason)
        claimed = self.claims.get(cname.lstrip("/"))  # a manifest's containerName
        if labels.get(COMPOSE_PROJECT) and claimed is None:
            return None  # a compose service: its stack reports it
        name = claimed or resource_name(cname)
        if name is None:
            return None
        record = (read_adopted(self.root, "Container") if adopted is None else adopted).get(name)
        if record is not None and record_matches(record, container_id, self.node):
            spec = record.get("spec")
            return Owned(name, True, spec if isinstance(spec, dict) else None, "RegistryRecord")
        return Owned(name, False, None, "NotManaged")

    def _image(self, client: Any, image_id: str) -> dict[str, Any] | None:
        """`docker image inspect` by id, cached (an id's config never changes); None if gone."""
        found = self._images.get(image_id)
        if found is None and image_id:
            try:
                found = client.api.inspect_image(image_id)
            except docker.errors.NotFound:
                return None
            self._images[image_id] = found
        return found

    def known_secrets(self) -> KnownSecrets:
        """Fingerprints of the values of ROOT/secrets/* (re-read when a file changes)."""
        stats: dict[str, tuple[int, int, int]] = {}
        folder = self.root.secrets
        try:
            for path in folder.iterdir() if folder.is_dir() else []:
                st = path.stat()
                stats[path.name] = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            pass  # a file removed while listed: read what is there
        if stats != self._secret_stats:
            self._secrets = secret_fingerprints(secret_files(folder))
            self._secret_stats = stats
        return self._secrets

    def observe(self, client: Any, attrs: dict[str, Any], owned: Owned) -> dict[str, Any]:
        """The `observed.resource` data of one inspected container."""
        image = self._image(client, str(attrs.get("Image") or ""))
        try:  # the fingerprints of the secret files copied in (one call per secret)
            mounted = observed_secrets(client, str(attrs.get("Id") or ""), owned.last_applied)
        except docker.errors.APIError:
            mounted = None  # not readable now: observed as absent, the next look reads again
        return container_observation(attrs, image, owned, self.node, self.known_secrets(), mounted)

    def full_listing(self, client: Any, *, usage: bool = True) -> None:
        """Observe every container and stack of this node once, then write the listings.

        `usage`: read what the volumes hold too (`docker system df`, due every
        few minutes); the listing before the first events stream skips it.
        """
        started = now_iso()
        adopted = read_adopted(self.root, "Container")
        names = []
        images = set()
        for summary in client.api.containers(all=True):
            cname = next(iter(summary.get("Names") or []), "")
            owned = self.owner(cname, summary.get("Labels") or {}, summary.get("Id", ""), adopted)
            if owned is None:
                continue
            try:
                attrs = client.api.inspect_container(summary["Id"])
            except docker.errors.NotFound:
                continue  # removed since the list: its destroy event follows
            names.append(owned.name)
            images.add(str(attrs.get("Image") or ""))
            self.ledger.write(
                "observed.resource",
                ResourceKey("Container", owned.name),
                self.observe(client, attrs, owned),
                resync=True,
            )
        self._images = {k: v for k, v in self._images.items() if k in images}
        self._listing("Container", names, started)
        self._listing("ComposeStack", self.stacks.check(client, None, resync=True), started)
        for kind in NETVOL_KINDS:
            check = self.netvol.check(client, kind, resync=True, measure=usage)
            self._listing(kind, check, started)

    def _on_netvol_event(self, client: Any, event: dict[str, Any], kind: str) -> None:
        """A network or volume created or removed, a container (dis)connected: look again."""
        started = now_iso()
        if kind == "Network":
            self._listing(kind, self.netvol.network_event(client, event), started)
        else:  # one call lists them all (the usage report as last read)
            self._listing(kind, self.netvol.check(client, kind), started)
        ident = self.netvol.connected_container(event)
        if ident is None:
            return
        try:
            inspected = client.api.inspect_container(ident)
        except docker.errors.NotFound:
            return  # removed: its destroy event follows
        now = self.owner(
            str(inspected.get("Name") or ""),
            (inspected.get("Config") or {}).get("Labels") or {},
            str(inspected.get("Id") or ""),
        )
        if now is not None:
            key = ResourceKey("Container", now.name)
            self.ledger.write("observed.resource", key, self.observe(client, inspected, now))

    def _on_event(self, client: Any, event: dict[str, Any]) -> None:
        kind = self.netvol.event_kind(event)
        if kind is not None:
            self._on_netvol_event(client, event, kind)
            return
        if not triggers_inspection(event):
            return  # a healthcheck exec, an attach...: nothing an observation holds
        actor = event.get("Actor") or {}
        attrs = dict(actor.get("Attributes") or {})
        project = attrs.get(COMPOSE_PROJECT)
        if project:
            self.stacks.check(client, project)
        ident = str(event.get("id") or actor.get("ID") or "")
        owned = self.owner(str(attrs.get("name") or ""), attrs, ident)
        action = action_of(event)
        if action == "rename":
            old = self.owner(str(attrs.get("oldName") or ""), attrs, ident)
            if old is not None and (owned is None or old.name != owned.name):
                key = ResourceKey("Container", old.name)
                self.ledger.write("observed.missing", key, {"reason": "container renamed"})
        if owned is None:
            return
        key = ResourceKey("Container", owned.name)
        if action == "destroy":
            self.ledger.write("observed.missing", key, {"reason": "container removed"})
            return
        try:
            inspected = client.api.inspect_container(ident)
        except docker.errors.NotFound:
            self.ledger.write("observed.missing", key, {"reason": "container removed"})
            return
        # Decide again on what the engine holds now (the event's attributes may be older).
        now = self.owner(
            str(inspected.get("Name") or ""),
            (inspected.get("Config") or {}).get("Labels") or {},
            str(inspected.get("Id") or ""),
        )
        if now is None or now.name != owned.name:
            return  # renamed or relabelled since: that event follows
        self.ledger.write("observed.resource", key, self.observe(client, inspected, now))
