"""The Network and Volume half of the Docker collector: one node's networks and volumes.

`NetVolObserver.check(client, kind)` lists the node's networks (or volumes),
decides for each which resource it is (`drivers.netvol_observe.owner`:
managed by labels or by the registry, else unmanaged under a key made from
its engine name, built-ins and anonymous volumes left out), writes an
`observed.resource` for each through the collector's ledger (so an
unchanged one is not written again) and returns the names for the kind's
`observed.listing` (which marks the ones gone as missing). The Docker
collector calls it on every full listing. On an engine event of type
network (create, destroy, a container connected or disconnected: every
start and stop of a container on a user network is one) only that network
is inspected again (`network_event`; the container too, so a network left
by hand is drift of the Container); on a volume event (create, destroy)
the volumes are listed again, one call for all of them
(hack/bench/netvol_listing.py has the figures). A volume's `runtime.usage` (bytes held,
containers using it; `drivers.volume.measure_usage`) is read at most once
per `usage_every` seconds and only in a full listing that is not the first
(the engine walks each volume's files and sizes every container, seconds on
a loaded or remote node: the first listing runs before the events stream
opens, and an event must not wait for it); `homelab plan --refresh` reads it
at once.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import docker.errors

from reconciler.drivers.adopted import read_adopted
from reconciler.drivers.netvol_observe import (
    ignored,
    key_name,
    network_runtime,
    observed_spec,
    owner,
    volume_runtime,
)
from reconciler.drivers.volume import measure_usage
from reconciler.observer.collectors.ledger import ObservationLedger
from reconciler.resources.key import ResourceKey
from reconciler.runtime_root import RuntimeRoot

KINDS = ("Network", "Volume")
EVENT_TYPES = {"network": "Network", "volume": "Volume"}
USAGE_EVERY = 300.0


class NetVolObserver:
    def __init__(
        self,
        node: str,
        root: RuntimeRoot,
        ledger: ObservationLedger,
        usage_every: float = USAGE_EVERY,
        instance: str | None = None,
    ) -> None:
        self.node = node
        self.root = root
        self.ledger = ledger
        self.instance = root.instance_id() if instance is None else instance  # as DockerCollector
        self.usage_every = usage_every
        self._usage: dict[str, dict[str, int]] = {}
        self._usage_at = -1e18
        self._keys: dict[str, str] = {}  # network id -> its key, from the last look
        self._managed: set[str] = set()  # managed network keys, from the last full listing

    def _objects(self, client: Any, kind: str) -> list[dict[str, Any]]:
        if kind == "Volume":
            return list((client.api.volumes() or {}).get("Volumes") or [])
        out = []
        for summary in client.api.networks():
            if ignored("Network", summary):
                continue  # bridge, host, none: never resources, not worth an inspect
            try:
                out.append(client.api.inspect_network(summary["Id"]))
            except docker.errors.NotFound:
                continue  # removed since the list: its destroy event follows
        return out

    def usage(self, client: Any, *, fresh: bool = False) -> dict[str, dict[str, int]]:
        now = time.monotonic()
        if fresh or now - self._usage_at >= self.usage_every:
            with contextlib.suppress(
                docker.errors.DockerException
            ):  # keep the last reading; it is only shown
                self._usage = measure_usage(client)
            self._usage_at = now
        return self._usage

    def check(
        self, client: Any, kind: str, *, resync: bool = False, measure: bool = False
    ) -> list[str]:
        """Observe every network (or volume) of the node; the names for the listing.

        `measure`: read the volumes' usage when it is due (else the last reading).
        """
        records = read_adopted(self.root, kind)
        usage = self.usage(client) if kind == "Volume" and measure else self._usage
        seen = []
        for attrs in self._objects(client, kind):
            found = owner(kind, attrs, self.node, self.instance, records)
            if found is not None:
                seen.append((attrs, found))
        managed = {o.name for _, o in seen if o.managed}
        names: list[str] = []
        keys = {}
        for attrs, found in seen:
            name = found.name if found.managed else key_name(str(attrs.get("Name") or ""), managed)
            if name in names:
                continue  # two objects claim one resource: the first (sorted by engine) wins
            names.append(name)
            keys[str(attrs.get("Id") or "")] = name
            self._write(kind, name, attrs, found, usage, resync)
        if kind == "Network":
            self._keys, self._managed = keys, managed
        return names

    def _write(
        self,
        kind: str,
        name: str,
        attrs: dict[str, Any],
        found: Any,
        usage: dict[str, dict[str, int]],
        resync: bool,
    ) -> None:
        spec = observed_spec(kind, attrs, found.last_applied, self.node)
        runtime = (
            network_runtime(attrs)
            if kind == "Network"
            else volume_runtime(attrs, usage.get(str(attrs.get("Name") or "")))
        )
        data = {
            "spec": spec,
            "health": "Healthy",
            "node": self.node,
            "managed": found.managed,
            "conditions": [
                {
                    "type": "SpecReadable",
                    "status": "True" if found.last_applied is not None else "False",
                    "reason": found.reason,
                    "message": f"engine name {spec['name']}",
                }
            ],
            "runtime": runtime,
        }
        self.ledger.write("observed.resource", ResourceKey(kind, name), data, resync=resync)

    def network_event(self, client: Any, event: dict[str, Any]) -> list[str]:
        """One network's event: only that network is inspected again; the listing's names.

        Every start and stop of a container on a user network is a connect or
        disconnect event, so this must not re-list every network.
        """
        ident = str((event.get("Actor") or {}).get("ID") or event.get("id") or "")
        try:
            attrs = client.api.inspect_network(ident) if ident else None
        except docker.errors.NotFound:
            attrs = None
        records = read_adopted(self.root, "Network")
        found = None
        if attrs is not None:
            found = owner("Network", attrs, self.node, self.instance, records)
        old = self._keys.get(ident)
        if found is None or attrs is None:
            if old is not None:
                self._keys.pop(ident, None)
                self.ledger.write(
                    "observed.missing", ResourceKey("Network", old), {"reason": "network removed"}
                )
            return sorted(set(self._keys.values()))
        name = (
            found.name if found.managed else key_name(str(attrs.get("Name") or ""), self._managed)
        )
        if old is not None and old != name:
            self.ledger.write(
                "observed.missing", ResourceKey("Network", old), {"reason": "network changed hands"}
            )
        if found.managed:
            self._managed.add(name)
        self._keys[ident] = name
        self._write("Network", name, attrs, found, {}, False)
        return sorted(set(self._keys.values()))

    @staticmethod
    def event_kind(event: dict[str, Any]) -> str | None:
        return EVENT_TYPES.get(str(event.get("Type") or ""))

    @staticmethod
    def connected_container(event: dict[str, Any]) -> str | None:
        """The container a network connect/disconnect event is about, else None."""
        if event.get("Type") != "network":
            return None
        if str(event.get("Action") or "") not in ("connect", "disconnect"):
            return None
        attrs = (event.get("Actor") or {}).get("Attributes") or {}
        container = attrs.get("container")
        return str(container) if container else None
