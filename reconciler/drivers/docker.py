"""The Docker driver: `Container` resources through the Docker Engine API.

Connects to the node's engine with the Docker SDK (`unix://`, `tcp://`, or
`ssh://user@host:port` through paramiko; one cached client per URL) and
converges the container named `homelab-<name>` (or the spec's
`containerName`; found by this root's labels when that name changed): `create` (image per
`imagePullPolicy`, create, start unless `state: stopped`, wait for the
healthcheck), `replace` (the new container beside the old one, which is
removed once the new one proved itself, or restored: `safe_replace`),
`delete` (remove); and in place, keeping the container: `start` (start, or unpause
a paused one), `stop` (stop with the grace period), `update` (the engine's
update call for the restart policy and the limits, then the run state). Every path ends by
bringing restart policy and run state to the desired ones (`_converge`).
`adopt` takes over a container someone started under the name: with no
difference it is recorded in the adoption registry
(`reconciler.drivers.adopted`) as it runs, without a restart; with one it is
replaced. A new container clears the name's registry record, a delete too.
Every container the driver creates carries the labels fixed in
docs/internals.md, including the action id and the spec hash, which is how a
restarted executor sees that an action was already applied; the in-place
operations are idempotent by themselves (starting a running container is a
no-op). `check` compares the plan's `basis` with the hash of the container's
observed spec, computed as the collector computes it (`container_observe`,
through `_observed_spec`). Env values from secrets (`valueFrom: {secret:
NAME}`, ROOT/secrets/NAME with one trailing newline stripped) go only into
the container; the spec label holds their fingerprint. Called by the
executor through the `Driver` interface.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import docker
import docker.errors
import orjson
import requests.exceptions

from reconciler.drivers.adopted import read_adopted, remove_adopted, write_adopted
from reconciler.drivers.attachments import (
    attach_kwargs,
    connect_networks,
    repair_networks,
    require_present,
)
from reconciler.drivers.base import ApplyContext, ApplyResult
from reconciler.drivers.container_fields import (
    create_container,
    field_kwargs,
    limits_differ,
    observed_secrets,
    put_secrets,
    update_limits,
)
from reconciler.drivers.container_observe import (
    container_runtime,
    label_spec,
    observed_container_spec,
    record_matches,
    secret_files,
    secret_fingerprints,
)
from reconciler.drivers.generations import is_leftover
from reconciler.drivers.hostpaths import container_findings_on
from reconciler.drivers.safe_replace import SafeReplace, remove_parked
from reconciler.errors import PermanentError, TemporaryError
from reconciler.resources.guardrails import refusal
from reconciler.resources.normalize import spec_hash

PREFIX = "homelab.reconciler"
MANAGED_BY = "homelab-reconciler"
_TRANSIENT = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, OSError, EOFError)
IN_PLACE_OPERATIONS = ("start", "stop", "update")


def container_name(name: str) -> str:
    """The default engine name of Container/<name> (a spec's `containerName` overrides it)."""
    return f"homelab-{name}"


def engine_name(ctx: ApplyContext) -> str:
    """The engine name of the action's container: `containerName`, else `homelab-<name>`."""
    desired = ctx.action.desired
    given = desired.get("containerName") if isinstance(desired, dict) else None
    return str(given) if given else container_name(ctx.name)


def managed_labels(
    name: str, node: str, desired: dict[str, Any], action_id: str, instance: str
) -> dict[str, str]:
    """The labels docs/internals.md fixes; the collector reads them back."""
    return {
        f"{PREFIX}/managed-by": MANAGED_BY,
        f"{PREFIX}/instance": instance,
        f"{PREFIX}/kind": "Container",
        f"{PREFIX}/name": name,
        f"{PREFIX}/node": node,
        f"{PREFIX}/spec-hash": spec_hash(desired),
        f"{PREFIX}/action-id": action_id,
        f"{PREFIX}/spec": orjson.dumps(desired, option=orjson.OPT_SORT_KEYS).decode(),
    }


# Why an engine does not answer, from the transport's message (first match wins).
_NO_ANSWER = (
    ("connection refused", "connection refused"),
    ("no such file or directory", "no socket at that path"),
    ("permission denied", "permission denied"),
    ("timed out", "timed out"),
    ("read timeout", "timed out"),
    ("name or service not known", "host name not found"),
    ("temporary failure in name resolution", "host name not found"),
    ("no route to host", "no route to host"),
    ("network is unreachable", "network unreachable"),
    ("connection reset", "connection reset"),
    ("remote end closed connection", "connection closed by the engine"),
    ("connection aborted", "connection aborted"),
)


def _no_answer(exc: BaseException) -> str | None:
    """Why the engine did not answer (short), or None when `exc` is not a transport failure.

    The SDK wraps the transport's error (`DockerException("Error while fetching server
    API version: ('Connection aborted.', ConnectionRefusedError(...))")`, requests'
    ConnectionError around urllib3's): the chain and the text are searched.
    """
    seen: list[BaseException] = []
    cursor: BaseException | None = exc
    while cursor is not None and cursor not in seen and len(seen) < 10:
        seen.append(cursor)
        cursor = cursor.__cause__ or cursor.__context__
    transport = any(isinstance(e, _TRANSIENT) for e in seen) or (
        isinstance(exc, docker.errors.DockerException)
        and not isinstance(exc, docker.errors.APIError)
        and "error while fetching server api version" in str(exc).lower()
    )
    if not transport:
        return None
    text = " ".join(str(e) for e in seen).lower()
    for marker, reason in _NO_ANSWER:
        if marker in text:
            return reason
    return f"{type(seen[-1]).__name__}"


def map_docker_error(
    exc: Exception, what: str, *, node: str | None = None, url: str | None = None
) -> Exception:
    """Docker SDK / transport errors -> TemporaryError or PermanentError.

    An engine that does not answer is named in one sentence, `node NAME: Docker
    engine at URL does not answer: connection refused`, when `node` and `url` are
    given (never the SDK's nested tuple of exceptions).
    """
    if isinstance(exc, docker.errors.APIError):
        detail = exc.explanation or str(exc)
        if exc.status_code in (408, 409, 429, 502, 503, 504):
            return TemporaryError(f"{what}: {detail}")
        return PermanentError(f"{what}: {detail}")
    why = _no_answer(exc)
    if why is not None:
        engine = f"Docker engine at {url}" if url else "Docker engine"
        where = f"node {node}: " if node else ""
        prefix = "" if what == f"node {node}" else f"{what}: "
        return TemporaryError(f"{prefix}{where}{engine} does not answer: {why}")
    if isinstance(exc, _TRANSIENT):
        return TemporaryError(f"{what}: engine unreachable ({type(exc).__name__}: {exc})")
    if isinstance(exc, docker.errors.DockerException):
        return TemporaryError(f"{what}: {exc}")
    return exc


def _seconds(value: int) -> int:
    return int(value) * 1_000_000_000


def create_kwargs(ctx: ApplyContext, spec: dict[str, Any]) -> dict[str, Any]:
    """Docker SDK `containers.create` arguments for a comparable Container spec."""
    env = []
    for var in spec.get("env") or []:
        source = var.get("valueFrom")
        if source:
            raw = ctx.secret(source["secret"], source.get("sha256"))
            value = raw.decode("utf-8", errors="strict").removesuffix("\n")
        else:
            value = var.get("value") or ""
        env.append(f"{var['name']}={value}")
    ports: dict[str, Any] = {}
    for port in spec.get("ports") or []:
        key = f"{port['containerPort']}/{port.get('protocol', 'tcp')}"
        host_port = port.get("hostPort")
        ports[key] = (port["hostIP"], host_port) if port.get("hostIP") else host_port
    volumes = {
        vol["source"]: {"bind": vol["target"], "mode": "ro" if vol.get("readOnly") else "rw"}
        for vol in spec.get("volumes") or []
        if vol.get("source")  # named volumes ({volume:}) are mounts: drivers/attachments.py
    }
    kwargs: dict[str, Any] = {
        "image": spec["image"],
        "name": engine_name(ctx),
        "entrypoint": spec.get("command"),
        "command": spec.get("args"),
        "environment": env,
        "ports": ports or None,
        "volumes": volumes or None,
        "restart_policy": {"Name": spec.get("restartPolicy", "unless-stopped")},
        "labels": {
            **(spec.get("labels") or {}),
            **managed_labels(
                ctx.name, ctx.node.name, spec, str(ctx.action.id), ctx.root.instance_id()
            ),
        },
        "network_mode": spec.get("networkMode") or "bridge",
        "user": spec.get("user"),
        "working_dir": spec.get("workingDir"),
        "privileged": bool(spec.get("privileged")),
        "pid_mode": spec.get("pidMode"),
        "cap_add": spec.get("capAdd") or None,
        "cap_drop": spec.get("capDrop") or None,
    }
    kwargs.update(field_kwargs(spec))  # the compose-parity fields (drivers/container_fields.py)
    check = spec.get("healthcheck")
    if check and check.get("disable"):
        kwargs["healthcheck"] = {"test": ["NONE"]}
    elif check:
        kwargs["healthcheck"] = {
            "test": check["test"],
            "interval": _seconds(check.get("interval", 30)),
            "timeout": _seconds(check.get("timeout", 10)),
            "retries": int(check.get("retries", 3)),
            "start_period": _seconds(check.get("startPeriod", 0)),
        }
    return attach_kwargs({k: v for k, v in kwargs.items() if v is not None}, spec)


def run_state(attrs: dict[str, Any]) -> str:
    """`running`, `paused` or `stopped`, as the observed spec's `state` says it."""
    state = attrs.get("State") or {}
    if state.get("Paused"):
        return "paused"
    return "running" if state.get("Running") else "stopped"


def restart_policy_of(attrs: dict[str, Any]) -> str:
    policy = ((attrs.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name")
    return str(policy or "no")


def _observed_spec(ctx: ApplyContext, container: Any) -> dict[str, Any]:
    """The comparable spec of a freshly inspected container, as the collector observes it.

    Last-applied is the spec label, else the adoption record of this container
    id; the image is inspected through the container's own client, so image
    defaults are no drift; known secret values appear only as fingerprints.
    """
    attrs = container.attrs or {}
    last, _ = label_spec(container.labels)
    if last is None:
        record = read_adopted(ctx.root, "Container").get(ctx.name)
        if record is not None and record_matches(record, container.id, ctx.node.name):
            last = record.get("spec") if isinstance(record.get("spec"), dict) else None
    try:
        image = container.client.api.inspect_image(attrs.get("Image") or "")
    except docker.errors.NotFound:
        image = None
    except Exception as exc:
        raise map_docker_error(
            exc,
            f"{ctx.kind}/{ctx.name}: image inspect",
            node=ctx.node.name,
            url=ctx.node.docker_host,
        ) from exc
    known = secret_fingerprints(secret_files(ctx.root.secrets))
    try:
        mounted = observed_secrets(container.client, container.id, last)
    except Exception as exc:
        raise map_docker_error(exc, f"{ctx.kind}/{ctx.name}: read secrets") from exc
    return observed_container_spec(
        attrs, image, last, ctx.node.name, known_secrets=known, name=ctx.name, secrets=mounted
    )


def health_of(attrs: dict[str, Any]) -> str:
    state = attrs.get("State") or {}
    if not state.get("Running"):
        return "Stopped"
    health = (state.get("Health") or {}).get("Status")
    return {"healthy": "Healthy", "unhealthy": "Unhealthy", "starting": "Starting"}.get(
        health or "", "Healthy"
    )


class EngineClients:
    """One Docker SDK client per engine URL, shared by a driver's threads."""

    def __init__(self) -> None:
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, ctx: ApplyContext) -> Any:
        url = ctx.node.docker_host
        with self._lock:
            client = self._clients.get(url)
            if client is None:
                try:
                    client = docker.DockerClient(
                        base_url=url, timeout=int(ctx.settings.docker_timeout), use_ssh_client=False
                    )
                except Exception as exc:
                    raise map_docker_error(
                        exc, f"node {ctx.node.name}", node=ctx.node.name, url=url
                    ) from exc
                self._clients[url] = client
            return client

    def drop(self, ctx: ApplyContext) -> None:
        """Forget the node's client (after a transient error: the next call reconnects)."""
        with self._lock:
            client = self._clients.pop(ctx.node.docker_host, None)
        if client is not None:
            client.close()

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()


class DockerDriver:
    """Applies `Container` actions; one Docker SDK client per engine URL."""

    kind = "Container"

    def __init__(self) -> None:
        self._clients = EngineClients()

    def client(self, ctx: ApplyContext) -> Any:
        return self._clients.get(ctx)

    def _drop_client(self, ctx: ApplyContext) -> None:
        self._clients.drop(ctx)

    def _call(
        self, ctx: ApplyContext, what: str, fn: Any, *args: Any, missing_ok: bool = False, **kw: Any
    ) -> Any:
        """Call the SDK; NotFound passes through only when the caller handles it."""
        try:
            return fn(*args, **kw)
        except docker.errors.NotFound:
            if missing_ok:
                raise
            raise PermanentError(f"{ctx.kind}/{ctx.name}: {what}: not found") from None
        except Exception as exc:
            mapped = map_docker_error(
                exc, f"{ctx.kind}/{ctx.name}: {what}", node=ctx.node.name, url=ctx.node.docker_host
            )
            if isinstance(mapped, TemporaryError):
                self._drop_client(ctx)
            raise mapped from exc

    def _existing(self, ctx: ApplyContext) -> Any | None:
        """The resource's container: by its engine name, else by this root's labels.

        The labels find it after `containerName` changed (or for a delete,
        which has no desired spec); the adoption record finds an adopted
        container under a name of its own.
        """
        client = self.client(ctx)
        try:
            return self._call(
                ctx, "inspect", client.containers.get, engine_name(ctx), missing_ok=True
            )
        except docker.errors.NotFound:
            pass
        labels = [
            f"{PREFIX}/managed-by={MANAGED_BY}",
            f"{PREFIX}/instance={ctx.root.instance_id()}",
            f"{PREFIX}/kind=Container",
            f"{PREFIX}/name={ctx.name}",
            f"{PREFIX}/node={ctx.node.name}",
        ]
        found = self._call(ctx, "list", client.containers.list, all=True, filters={"label": labels})
        found = [c for c in found if not is_leftover(c.name)]  # a replace's parked generations
        if found:
            return found[0]
        record = read_adopted(ctx.root, "Container").get(ctx.name)
        if record is not None and record.get("node", ctx.node.name) == ctx.node.name:
            try:
                return self._call(
                    ctx,
                    "inspect",
                    client.containers.get,
                    str(record.get("containerId") or ""),
                    missing_ok=True,
                )
            except docker.errors.NotFound:
                return None
        return None

    def check(self, ctx: ApplyContext) -> str | None:
        found = self._existing(ctx)
        labels = (found.labels or {}) if found is not None else {}
        ours = labels.get(f"{PREFIX}/action-id") == ctx.action.id
        if ctx.operation == "create":
            if found is not None and not ours:
                return f"container {engine_name(ctx)} already exists"
            return None
        if found is None:
            return f"container {engine_name(ctx)} no longer exists"
        if ours:
            return None
        seen = self.observed_basis(ctx, found) == ctx.action.basis
        if ctx.operation in (*IN_PLACE_OPERATIONS, "adopt"):
            # Acting on the container as it is: it must still be what the plan saw.
            ok = seen
        else:  # a replace or delete removes it anyway; its label may still vouch for it
            ok = seen or labels.get(f"{PREFIX}/spec-hash") == ctx.action.basis
        if not ok:
            return f"container {engine_name(ctx)} changed since the plan was made"
        return None

    def observed_basis(self, ctx: ApplyContext, container: Any) -> str:
        """The basis the observer gives this container: the hash of its observed spec."""
        return spec_hash(_observed_spec(ctx, container))

    def apply(self, ctx: ApplyContext) -> ApplyResult:
        if ctx.operation == "delete":
            return self._delete(ctx)
        desired = ctx.desired
        found = container_findings_on(ctx.node.docker_host, desired)
        if found and not ctx.allow_dangerous:
            raise PermanentError(refusal(ctx.name, found))
        existing = self._existing(ctx)
        steps: list[str] = []
        if ctx.operation in IN_PLACE_OPERATIONS:
            if existing is None:
                raise PermanentError(
                    f"Container/{ctx.name}: container {engine_name(ctx)} no longer "
                    f"exists; nothing to {ctx.operation}"
                )
            self._keep_record(ctx, existing)
            return self._converge(ctx, existing, steps)
        if ctx.operation == "adopt" and not ctx.action.patch:
            return self._adopt(ctx, existing)
        # Before anything is removed: a replace never leaves nothing to return to.
        self._call(ctx, "networks and volumes", require_present, self.client(ctx), desired)
        # create (after a crash too), replace, adopt with differences: the new one beside the old
        return SafeReplace(self, ctx).apply()

    def engine_name(self, ctx: ApplyContext) -> str:
        """The engine name of the resource's container (`containerName`, else `homelab-<name>`)."""
        return engine_name(ctx)

    def create_container(self, ctx: ApplyContext, labels: dict[str, str]) -> Any:
        """Create (not start) the desired container at its name, with extra `labels`."""
        kwargs = create_kwargs(ctx, ctx.desired)
        kwargs["name"] = self.engine_name(ctx)
        kwargs["labels"] = {**kwargs.get("labels", {}), **labels}
        container = self._call(ctx, "create", create_container, self.client(ctx), **kwargs)
        self.finish_create(ctx, container)
        return container

    def finish_create(self, ctx: ApplyContext, container: Any) -> list[str]:
        """Join the networks after the first and copy the secrets in; again after a crash.

        Both are idempotent (only missing networks are connected, the secret
        files are rewritten); the networks joined, for the action's output.
        """
        client = self.client(ctx)
        joined = self._call(
            ctx, "connect networks", connect_networks, client, container.id, ctx.desired
        )
        self._call(ctx, "copy secrets", put_secrets, container, ctx.desired, ctx.secret)
        return list(joined or [])

    def repair_networks(self, ctx: ApplyContext, container: Any) -> list[str]:
        """A container at its desired spec whose networks drifted by hand: mended in place."""
        return list(
            self._call(
                ctx, "networks", repair_networks, self.client(ctx), container.id, ctx.desired
            )
            or []
        )

    def forget_adoption(self, ctx: ApplyContext) -> None:
        remove_adopted(ctx.root, "Container", ctx.name)

    def _adopt(self, ctx: ApplyContext, container: Any | None) -> ApplyResult:
        """Take over the running container as it is: recorded, never restarted."""
        if container is None:
            raise PermanentError(
                f"Container/{ctx.name}: container {engine_name(ctx)} to adopt no longer exists"
            )
        self._record(ctx, container)
        steps = [f"adopted {engine_name(ctx)} ({container.short_id}) as it runs"]
        return self._converge(ctx, container, steps, changed=True)

    def _record(self, ctx: ApplyContext, container: Any) -> None:
        record = {
            "containerId": container.id,
            "node": ctx.node.name,
            "spec": ctx.desired,
            "action": ctx.action.id,
        }
        write_adopted(ctx.root, "Container", ctx.name, record)

    def _keep_record(self, ctx: ApplyContext, container: Any) -> None:
        """An adopted container changed in place: its record holds the new last-applied spec."""
        record = read_adopted(ctx.root, "Container").get(ctx.name)
        if record is not None and record.get("containerId") == container.id:
            self._record(ctx, container)

    def _converge(
        self, ctx: ApplyContext, container: Any, steps: list[str], *, changed: bool = False
    ) -> ApplyResult:
        """Bring restart policy and run state to the desired ones, in place."""
        desired = ctx.desired
        self._call(ctx, "inspect", container.reload)
        want = desired.get("restartPolicy", "unless-stopped")
        have = restart_policy_of(container.attrs)
        if want != have:
            self._call(ctx, "update", container.update, restart_policy={"Name": want})
            steps.append(f"restart policy {have} -> {want}")
            changed = True
        if limits_differ(container.attrs, desired):
            self._call(ctx, "update", update_limits, container.client, container.id, desired)
            self._call(ctx, "inspect", container.reload)
            steps.append("limits updated")
            changed = True
        state = run_state(container.attrs)
        if desired.get("state", "running") == "stopped":
            if state != "stopped":
                grace = desired.get("stopGracePeriod", ctx.settings.stop_grace)
                self._call(ctx, "stop", container.stop, timeout=grace)
                steps.append("stopped")
                changed = True
            return ApplyResult(
                changed,
                "; ".join(steps),
                "Stopped",
                {"containerId": container.id},
                self._runtime(ctx, container),
            )
        if state == "paused":
            self._call(ctx, "unpause", container.unpause)
            steps.append("unpaused")
            changed = True
        elif state == "stopped":
            self._call(ctx, "start", container.start)
            steps.append("started")
            changed = True
        health = self._wait_healthy(ctx, container)
        steps.append(f"health {health}")
        return ApplyResult(
            changed,
            "; ".join(steps),
            health,
            {"containerId": container.id},
            self._runtime(ctx, container),
        )

    def _runtime(self, ctx: ApplyContext, container: Any) -> dict[str, Any]:
        """The runtime facts the collector reports, so its next look finds nothing new."""
        self._call(ctx, "inspect", container.reload)
        try:
            image = container.client.api.inspect_image(container.attrs.get("Image") or "")
        except Exception:  # the facts are a courtesy; the collector reports them anyway
            image = None
        return container_runtime(container.attrs, image)

    def _remove(self, ctx: ApplyContext, container: Any, steps: list[str]) -> None:
        grace = ctx.settings.stop_grace
        try:
            self._call(ctx, "stop", container.stop, timeout=grace, missing_ok=True)
            self._call(ctx, "remove", container.remove, force=True, missing_ok=True)
        except docker.errors.NotFound:
            pass  # already gone: removed by hand or by an earlier attempt
        steps.append(f"removed {container.name} ({container.short_id})")

    def _delete(self, ctx: ApplyContext) -> ApplyResult:
        existing = self._existing(ctx)
        steps: list[str] = []
        if existing is not None:
            self._remove(ctx, existing, steps)
        remove_parked(self, ctx, steps)  # generations an interrupted replace left behind
        remove_adopted(ctx.root, "Container", ctx.name)  # after the container: a crash keeps it
        if existing is None:
            return ApplyResult(False, f"{engine_name(ctx)} already absent", "Stopped")
        return ApplyResult(True, "; ".join(steps), "Stopped")

    def _ensure_image(self, ctx: ApplyContext, image: str, policy: str) -> None:
        client = self.client(ctx)
        if policy != "Always":
            try:
                self._call(ctx, "image", client.images.get, image, missing_ok=True)
                return
            except docker.errors.NotFound:
                if policy == "Never":
                    raise PermanentError(
                        f"Container/{ctx.name}: image {image} is not present on node "
                        f"{ctx.node.name} and imagePullPolicy is Never "
                        "(load it there, or use IfNotPresent)"
                    ) from None
        try:
            self._call(ctx, "pull", client.images.pull, image, missing_ok=True)
        except docker.errors.NotFound as exc:
            raise PermanentError(f"Container/{ctx.name}: image {image} not found: {exc}") from exc

    def _wait_healthy(self, ctx: ApplyContext, container: Any) -> str:
        check = ctx.desired.get("healthcheck")
        if not check:
            # Re-inspect: the attributes still describe the container before its start.
            self._call(ctx, "inspect", container.reload)
            return health_of(container.attrs)
        budget = ctx.settings.health_timeout or (
            check.get("startPeriod", 0)
            + (check.get("interval", 30) + check.get("timeout", 10)) * (check.get("retries", 3) + 1)
            + 5
        )
        deadline = time.monotonic() + budget
        while True:
            self._call(ctx, "inspect", container.reload)
            health = health_of(container.attrs)
            if health == "Healthy":
                return health
            if health in ("Unhealthy", "Stopped"):
                log = ((container.attrs.get("State") or {}).get("Health") or {}).get("Log") or []
                last = (log[-1].get("Output") or "").strip()[:200] if log else ""
                raise PermanentError(
                    f"Container/{ctx.name}: container is {health.lower()} after start"
                    + (f" (last check: {last})" if last else "")
                )
            if time.monotonic() > deadline:
                raise PermanentError(
                    f"Container/{ctx.name}: not healthy within {budget:.0f}s (still {health})"
                )
            time.sleep(0.2)

    def close(self) -> None:
        self._clients.close()
