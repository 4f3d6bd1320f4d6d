"""What the Network and Volume drivers share: one engine object found by its engine name.

Docker changes neither a network nor a volume in place, so a driver of
either only creates, adopts, replaces (remove, create) and deletes; the
subclasses (`drivers/network.py`, `drivers/volume.py`) say how to find,
create and remove one and when a removal must be refused. Every object the
driver creates carries the managed labels (`netvol_observe.managed_labels`,
action id and spec hash included) and is written to the registry
(`ROOT/state/adopted/<Kind>/<name>.json`: identity, node, last-applied spec,
action), which is also where an adopted object and a released Volume are
recorded. A restarted executor sees a create already done by the labels
(same spec hash) and only writes the record again; the record is written
after the engine call, so a crash between the two loses nothing.
"""

from __future__ import annotations

from typing import Any

import docker
import docker.errors

from reconciler.drivers.adopted import read_adopted, remove_adopted, write_adopted
from reconciler.drivers.base import ApplyContext, ApplyResult
from reconciler.drivers.docker import EngineClients, map_docker_error
from reconciler.drivers.netvol_observe import (
    PREFIX,
    identity,
    managed_labels,
    observed_spec,
    owner,
)
from reconciler.errors import PermanentError, TemporaryError
from reconciler.resources.normalize import spec_hash


class EngineObjectDriver:
    """The shared converge logic; subclasses fill in the engine calls."""

    kind = ""
    noun = ""  # "network", "volume"

    def __init__(self) -> None:
        self._clients = EngineClients()

    # -- what a subclass provides -------------------------------------------------

    def find(self, ctx: ApplyContext, client: Any, name: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def create(self, ctx: ApplyContext, client: Any, labels: dict[str, str]) -> dict[str, Any]:
        raise NotImplementedError

    def remove(self, ctx: ApplyContext, client: Any, attrs: dict[str, Any], why: str) -> str:
        """Remove the object (refusing with the reason when that is unsafe); what was done."""
        raise NotImplementedError

    def runtime(self, attrs: dict[str, Any]) -> dict[str, Any] | None:
        return None

    def delete(self, ctx: ApplyContext, client: Any, attrs: dict[str, Any]) -> ApplyResult:
        text = self.remove(ctx, client, attrs, "delete")
        remove_adopted(ctx.root, self.kind, ctx.name)
        return ApplyResult(True, text, "Stopped")

    # -- shared ---------------------------------------------------------------------

    def client(self, ctx: ApplyContext) -> Any:
        return self._clients.get(ctx)

    def call(self, ctx: ApplyContext, what: str, fn: Any, *args: Any, **kw: Any) -> Any:
        """Call the SDK with errors mapped (NotFound passes through for the caller)."""
        try:
            return fn(*args, **kw)
        except docker.errors.NotFound:
            raise
        except Exception as exc:
            mapped = map_docker_error(exc, f"{ctx.kind}/{ctx.name}: {what}")
            if isinstance(mapped, TemporaryError):
                self._clients.drop(ctx)
            raise mapped from exc

    def engine_name(self, ctx: ApplyContext) -> str:
        spec = ctx.action.desired or ctx.action.observed or {}
        return str(spec.get("name") or ctx.name)

    def _owned(self, ctx: ApplyContext, attrs: dict[str, Any]) -> Any:
        records = read_adopted(ctx.root, self.kind)
        return owner(self.kind, attrs, ctx.node.name, ctx.root.instance_id(), records)

    def observed_basis(self, ctx: ApplyContext, attrs: dict[str, Any]) -> str:
        found = self._owned(ctx, attrs)
        last = found.last_applied if found is not None else None
        return spec_hash(observed_spec(self.kind, attrs, last, ctx.node.name))

    def _ours(self, ctx: ApplyContext, attrs: dict[str, Any]) -> bool:
        """Created or recorded by this very action (a retry after a crash)."""
        labels = attrs.get("Labels") or {}
        if labels.get(f"{PREFIX}/action-id") == ctx.action.id:
            return True
        record = read_adopted(ctx.root, self.kind).get(ctx.name)
        return bool(record and record.get("action") == ctx.action.id)

    def check(self, ctx: ApplyContext) -> str | None:
        name = self.engine_name(ctx)
        found = self.find(ctx, self.client(ctx), name)
        if ctx.operation == "create":
            if found is not None and not self._ours(ctx, found):
                return f"{self.noun} {name} already exists on node {ctx.node.name}"
            return None
        if found is None:
            return f"{self.noun} {name} no longer exists"
        if self._ours(ctx, found) or not ctx.action.basis:
            return None
        seen = self.observed_basis(ctx, found) == ctx.action.basis
        labelled = (found.get("Labels") or {}).get(f"{PREFIX}/spec-hash") == ctx.action.basis
        if not (seen or (ctx.operation in ("replace", "delete") and labelled)):
            return f"{self.noun} {name} changed since the plan was made"
        return None

    def record(self, ctx: ApplyContext, attrs: dict[str, Any], **extra: Any) -> None:
        spec = ctx.action.desired if ctx.action.desired is not None else ctx.action.observed
        write_adopted(
            ctx.root,
            self.kind,
            ctx.name,
            {
                "id": identity(self.kind, attrs),
                "engineName": str(attrs.get("Name") or ""),
                "node": ctx.node.name,
                "spec": spec,
                "action": ctx.action.id,
                **extra,
            },
        )

    def apply(self, ctx: ApplyContext) -> ApplyResult:
        client = self.client(ctx)
        name = self.engine_name(ctx)
        found = self.find(ctx, client, name)
        if ctx.operation == "delete":
            if found is None:
                remove_adopted(ctx.root, self.kind, ctx.name)
                return ApplyResult(False, f"{self.noun} {name} already absent", "Stopped")
            return self.delete(ctx, client, found)
        desired = ctx.desired
        steps: list[str] = []
        if found is not None:
            labels = found.get("Labels") or {}
            at_spec = labels.get(f"{PREFIX}/spec-hash") == spec_hash(desired)
            if ctx.operation == "create" and at_spec and self._ours(ctx, found):
                self.record(ctx, found)
                return self._done(f"{self.noun} {name} already created", found, False)
            if ctx.operation == "adopt" and not ctx.action.patch:
                self.record(ctx, found)
                return self._done(f"adopted {self.noun} {name} as it is", found, True)
            if ctx.operation == "update":  # what changes in place is ours alone (the record)
                self.record(ctx, found)
                fields = sorted({op["path"].split("/")[1] for op in ctx.action.patch})
                return self._done(f"recorded {', '.join(fields)} for {name}", found, True)
            steps.append(self.remove(ctx, client, found, ctx.operation))
            remove_adopted(ctx.root, self.kind, ctx.name)
        labels = {
            **(desired.get("labels") or {}),
            **_managed(ctx, self.kind, desired),
        }
        created = self.create(ctx, client, labels)
        self.record(ctx, created)
        steps.append(f"created {self.noun} {name}")
        return self._done("; ".join(steps), created, True)

    def _done(self, text: str, attrs: dict[str, Any], changed: bool) -> ApplyResult:
        return ApplyResult(changed, text, "Healthy", {}, self.runtime(attrs))

    def close(self) -> None:
        self._clients.close()


def _managed(ctx: ApplyContext, kind: str, desired: dict[str, Any]) -> dict[str, str]:
    return managed_labels(
        kind, ctx.name, ctx.node.name, desired, str(ctx.action.id), ctx.root.instance_id()
    )


def refuse(ctx: ApplyContext, reason: str) -> PermanentError:
    return PermanentError(f"{ctx.kind}/{ctx.name}: {reason}")
