"""The Network driver: `Network` resources through the Docker Engine API.

Creates the network with its driver, IPAM subnets, flags, options and the
managed labels; adopts one that exists under the name as it is (recorded,
never recreated); replaces one (remove, create) when a field differs, as
Docker changes nothing of a network in place. A network that containers
are attached to is never removed: a replace is refused with the containers
named (detaching them would cut their traffic and lose what `docker network
connect` gave them by hand; remove or move those containers first), and a
delete is retried as a temporary error (a delete of those containers in the
same plan usually frees it), then fails with the same reason. Shared logic:
`drivers/engine_object.py`. Called by the executor.
"""

from __future__ import annotations

import contextlib
from typing import Any

import docker.errors

from reconciler.drivers.base import ApplyContext
from reconciler.drivers.engine_object import EngineObjectDriver, refuse
from reconciler.drivers.netvol_observe import network_runtime
from reconciler.errors import TemporaryError


def find_network(client: Any, name: str) -> dict[str, Any] | None:
    """`docker network inspect` of the network named exactly `name` (not an id prefix)."""
    for summary in client.api.networks(names=[name]):
        if summary.get("Name") == name:
            try:
                found: dict[str, Any] = client.api.inspect_network(summary["Id"])
            except docker.errors.NotFound:
                return None
            return found
    return None


def _users(attrs: dict[str, Any]) -> list[str]:
    return sorted(
        str((c or {}).get("Name") or k) for k, c in (attrs.get("Containers") or {}).items()
    )


class NetworkDriver(EngineObjectDriver):
    kind = "Network"
    noun = "network"

    def find(self, ctx: ApplyContext, client: Any, name: str) -> dict[str, Any] | None:
        return self.call(ctx, "inspect", find_network, client, name)  # type: ignore[no-any-return]

    def create(self, ctx: ApplyContext, client: Any, labels: dict[str, str]) -> dict[str, Any]:
        spec = ctx.desired
        subnets = (spec.get("ipam") or {}).get("subnets") or []
        ipam = None
        if subnets:
            pools = [
                docker.types.IPAMPool(
                    subnet=s["subnet"], gateway=s.get("gateway"), iprange=s.get("ipRange")
                )
                for s in subnets
            ]
            ipam = docker.types.IPAMConfig(pool_configs=pools)
        created = self.call(
            ctx,
            "create",
            client.api.create_network,
            spec["name"],
            driver=spec.get("driver") or "bridge",
            options=spec.get("options") or None,
            ipam=ipam,
            check_duplicate=True,
            internal=bool(spec.get("internal")),
            labels=labels,
            attachable=bool(spec.get("attachable")),
        )
        found: dict[str, Any] = self.call(ctx, "inspect", client.api.inspect_network, created["Id"])
        return found

    def remove(self, ctx: ApplyContext, client: Any, attrs: dict[str, Any], why: str) -> str:
        name = str(attrs.get("Name") or "")
        users = _users(attrs)
        if users:
            listed = ", ".join(users)
            if why == "delete":
                raise TemporaryError(
                    f"Network/{ctx.name}: network {name} is in use by {listed}; it is removed "
                    "once no container is attached (remove or move them first)"
                )
            raise refuse(
                ctx,
                f"{why} of network {name} refused: containers {listed} are attached; a "
                "network in use is never recreated under them (remove or move them to "
                "another network first, then approve again)",
            )
        with contextlib.suppress(
            docker.errors.NotFound
        ):  # removed by hand or by an earlier attempt
            self.call(ctx, "remove", client.api.remove_network, attrs["Id"])
        return f"removed network {name}"

    def runtime(self, attrs: dict[str, Any]) -> dict[str, Any] | None:
        return network_runtime(attrs)
