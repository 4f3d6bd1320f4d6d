"""The driver interface: how the executor applies one action to one kind.

A driver turns an approved action into real changes for one resource kind
(`Container` -> Docker Engine API, `File` -> an atomic write, `ComposeStack`
-> the compose CLI). The executor owns everything around it: claiming the
action, the stale-plan check, retries, events and the queue. A driver only
talks to the thing it manages, and follows these rules:

* **Convergent and idempotent.** `apply(ctx)` makes the real resource match
  `ctx.action.desired` (or makes it absent for `delete`) and does nothing
  that is already done. It is called again after a crash with the same
  action, so it must finish a half-done job and must never apply the same
  change twice (e.g. never start a second container). Managed resources carry
  the action id and the spec hash (`homelab.reconciler/action-id`,
  `homelab.reconciler/spec-hash` labels for containers; `applied.json` for
  stacks; the content hash for files) so a driver can see what is done.
* **Errors say whether to retry.** Raise `reconciler.errors.TemporaryError`
  for what may pass by itself (engine unreachable, timeout, name conflict
  during a race) and `reconciler.errors.PermanentError` for what will not
  (invalid image reference, image missing with `imagePullPolicy: Never`,
  path outside the allowed roots, unhealthy container). Raise `InputChanged`
  when a secret or repository file no longer matches the plan's fingerprint:
  the executor then supersedes the action as a stale plan. Never retry or
  sleep-and-loop inside a driver: the executor retries in one place.
* **`check(ctx)`** runs before `apply` on a fresh claim: it compares the real
  resource with what the plan assumed (`action.operation`,
  `action.basis`) and returns a reason when the plan no longer holds
  (e.g. the container to replace was removed by hand), else None.
* **Secrets stay secret.** Secret values are read at apply time through
  `ctx.secret(name)` and go only to the resource itself; outputs, errors
  and labels carry names and `sha256:` fingerprints only.
* **Results.** `apply` returns an `ApplyResult`: whether anything changed,
  a short human-readable `output` (recorded in `action.*` events) and the
  `health` the observer vocabulary uses (`Healthy`, `Unhealthy`, `Starting`,
  `Stopped`, `Unknown`), and optionally the `runtime` facts the executor
  reports beside the spec (they must be what the kind's collector would
  report, or the world flips between the two).

Drivers never import the supervisor, the executor or the git source; the
executor passes what they need in an `ApplyContext`. Called by
`reconciler.executor`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from reconciler.errors import PermanentError
from reconciler.queue.action import Action
from reconciler.resources.normalize import fingerprint
from reconciler.runtime_root import RuntimeRoot

LOCAL_DOCKER_HOST = "unix:///var/run/docker.sock"
DEFAULT_ALLOWED_ROOTS = ("/srv/homelab",)


class InputChanged(PermanentError):
    """A secret or repository file differs from the fingerprint in the plan."""


@dataclass(frozen=True)
class NodeInfo:
    """Where a resource lives: the node's name, docker host URL and file roots."""

    name: str
    docker_host: str = LOCAL_DOCKER_HOST
    allowed_roots: tuple[str, ...] = DEFAULT_ALLOWED_ROOTS

    @property
    def is_local(self) -> bool:
        return self.docker_host.startswith("unix://")


@dataclass(frozen=True)
class ApplyContext:
    """Everything a driver may use for one action."""

    action: Action
    node: NodeInfo
    root: RuntimeRoot
    repo_file: Callable[[str], bytes | None]
    secret_file: Callable[[str], bytes | None]
    settings: DriverSettings
    allow_dangerous: bool = False

    @property
    def kind(self) -> str:
        return self.action.kind

    @property
    def name(self) -> str:
        return self.action.name

    @property
    def operation(self) -> str:
        return self.action.operation

    @property
    def desired(self) -> dict[str, Any]:
        desired = self.action.desired
        if not isinstance(desired, dict):
            raise PermanentError(f"{self.kind}/{self.name}: action has no desired spec")
        return desired

    def secret(self, name: str, expected: str | None) -> bytes:
        """The secret's bytes, checked against the plan's fingerprint."""
        value = self.secret_file(name)
        if value is None:
            raise PermanentError(
                f"{self.kind}/{self.name}: secret {name!r} is missing "
                f"(expected a file at {self.root.secrets / name})"
            )
        if expected is not None and fingerprint(value) != expected:
            raise InputChanged(f"stale plan: secret {name!r} changed since the plan was made")
        return value

    def repo_bytes(self, path: str, expected: str | None) -> bytes:
        """A repository file at the desired commit, checked against the plan's fingerprint."""
        value = self.repo_file(path)
        if value is None:
            commit = self.action.commit[:12]
            raise PermanentError(
                f"{self.kind}/{self.name}: {path!r} is not in the repository at {commit}"
            )
        if expected is not None and fingerprint(value) != expected:
            raise InputChanged(f"stale plan: repository file {path!r} differs from the plan")
        return value


@dataclass(frozen=True)
class DriverSettings:
    """Knobs shared by the drivers (the executor's CLI flags set them)."""

    stop_grace: int = 10
    health_timeout: float | None = None
    compose_command: tuple[str, ...] = ("docker-compose",)
    command_timeout: float = 300.0
    docker_timeout: float = 30.0
    replace_grace: float = 5.0  # a replaced container without a healthcheck must run this long


@dataclass(frozen=True)
class ApplyResult:
    """What an `apply` did: changed anything?, human output, health afterwards.

    `runtime`: the resource's runtime facts as its collector reports them
    (beside the spec in the world document), or None when the driver has none.
    """

    changed: bool
    output: str
    health: str = "Healthy"
    details: dict[str, Any] = field(default_factory=dict)
    runtime: dict[str, Any] | None = None


class Driver(Protocol):
    """One kind's driver; see the module docstring for the rules."""

    kind: str

    def check(self, ctx: ApplyContext) -> str | None:
        """A reason the plan no longer matches the real resource, or None."""
        ...

    def apply(self, ctx: ApplyContext) -> ApplyResult:
        """Converge the real resource to the action (idempotent)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
