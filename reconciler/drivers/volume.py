"""The Volume driver: `Volume` resources through the Docker Engine API.

Creates the named volume with its driver, driver options and the managed
labels; adopts one that exists under the name as it is (recorded). A
volume's data is never lost by accident:

* a **delete** (the manifest removed from git) follows the `deletionPolicy`
  of the last applied spec (the observed one the plan carries): `Retain`,
  the default, leaves the volume and its data on the node and records it as
  *released* (the collector then reports it unmanaged: it leaves
  management, and a manifest naming it again adopts it); `Delete` removes
  it, after the containers using it are gone (a temporary error until then);
* a **replace** (driver, options or labels changed: Docker changes nothing
  of a volume in place) would delete the data too, so it is refused unless
  the last applied spec says `deletionPolicy: Delete`, and refused while a
  container uses the volume.

`measure_usage` reads what each volume holds from the engine's disk-usage
report (`docker system df -v`: bytes and the number of containers using
it), which the collector attaches as `runtime.usage` and the plan quotes
for a delete. Shared logic: `drivers/engine_object.py`. Called by the
executor.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import docker.errors

from reconciler.drivers.adopted import remove_adopted
from reconciler.drivers.base import ApplyContext, ApplyResult
from reconciler.drivers.engine_object import EngineObjectDriver, refuse
from reconciler.errors import TemporaryError


def measure_usage(client: Any, tries: int = 20) -> dict[str, dict[str, int]]:
    """Bytes held and containers using, per volume name (the engine's `df` report).

    The engine runs one disk-usage walk at a time and answers a second caller
    "a disk usage operation is already running": asked again, a bounded number
    of times, 0.1 s apart.
    """
    for attempt in range(tries):
        try:
            report = client.api.df()
            break
        except docker.errors.APIError as exc:
            if "already running" not in str(exc.explanation) or attempt == tries - 1:
                raise
            time.sleep(0.1)
    out = {}
    for vol in report.get("Volumes") or []:
        usage = vol.get("UsageData") or {}
        size = usage.get("Size")
        if vol.get("Name") and isinstance(size, int) and size >= 0:
            out[str(vol["Name"])] = {"bytes": size, "containers": int(usage.get("RefCount") or 0)}
    return out


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def holds_text(usage: dict[str, Any] | None) -> str:
    """`holds data: 12.0 MB`, `empty`, or `size unknown` (not measured yet)."""
    if not usage or not isinstance(usage.get("bytes"), int):
        return "size unknown"
    if usage["bytes"] == 0:
        return "empty"
    return f"holds data: {human_bytes(usage['bytes'])}"


def _users(client: Any, name: str) -> list[str]:
    found = client.api.containers(all=True, filters={"volume": name})
    return sorted(str(next(iter(c.get("Names") or []), c.get("Id", ""))).lstrip("/") for c in found)


class VolumeDriver(EngineObjectDriver):
    kind = "Volume"
    noun = "volume"

    def find(self, ctx: ApplyContext, client: Any, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.call(ctx, "inspect", client.api.inspect_volume, name)
        except docker.errors.NotFound:
            return None
        return found

    def create(self, ctx: ApplyContext, client: Any, labels: dict[str, str]) -> dict[str, Any]:
        spec = ctx.desired
        created: dict[str, Any] = self.call(
            ctx,
            "create",
            client.api.create_volume,
            spec["name"],
            driver=spec.get("driver") or "local",
            driver_opts=spec.get("driverOpts") or None,
            labels=labels,
        )
        return created

    def _policy(self, ctx: ApplyContext) -> str:
        return str((ctx.action.observed or {}).get("deletionPolicy") or "Retain")

    def _usage(self, client: Any, name: str) -> dict[str, int] | None:
        try:
            return measure_usage(client).get(name)
        except docker.errors.DockerException:
            return None  # the report is a courtesy in the output

    def remove(self, ctx: ApplyContext, client: Any, attrs: dict[str, Any], why: str) -> str:
        name = str(attrs.get("Name") or "")
        if why != "delete" and self._policy(ctx) != "Delete":
            raise refuse(
                ctx,
                f"{why} of volume {name} refused: recreating it deletes its data and its "
                "deletionPolicy is Retain (set deletionPolicy: Delete and apply that first, "
                "or give the new volume another spec.name)",
            )
        users = self.call(ctx, "list containers", _users, client, name)
        if users:
            listed = ", ".join(users)
            message = f"volume {name} is in use by {listed}"
            if why == "delete":
                raise TemporaryError(
                    f"Volume/{ctx.name}: {message}; it is removed once they are gone"
                )
            raise refuse(ctx, f"{why} of volume {name} refused: {message} (remove them first)")
        held = holds_text(self._usage(client, name))
        with contextlib.suppress(
            docker.errors.NotFound
        ):  # removed by hand or by an earlier attempt
            self.call(ctx, "remove", client.api.remove_volume, name)
        return f"deleted volume {name} ({held.replace('holds data', 'held data')})"

    def delete(self, ctx: ApplyContext, client: Any, attrs: dict[str, Any]) -> ApplyResult:
        name = str(attrs.get("Name") or "")
        if self._policy(ctx) == "Delete":
            text = self.remove(ctx, client, attrs, "delete")
            remove_adopted(ctx.root, self.kind, ctx.name)
            return ApplyResult(True, text, "Stopped")
        self.record(ctx, attrs, released=True)
        return ApplyResult(
            True,
            f"retained: deletionPolicy Retain; volume {name} stays on node {ctx.node.name} "
            f"({holds_text(self._usage(client, name))}), no longer managed",
            "Stopped",
        )
