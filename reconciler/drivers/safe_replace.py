"""Safe replace: the new container proves itself beside the old one, or the old one returns.

`SafeReplace(driver, ctx).apply()` converges a Container's create, replace
and adopt-with-differences. The steps, each one idempotent and each one
visible in the engine's names and labels (`reconciler.drivers.generations`):

1. the image is present (pulled or checked): a missing image fails here,
   before anything is touched;
2. the old container (at the resource's name `C`) is renamed `C.old-<action>`;
3. the new one is created at `C`, labelled with this action's id and with
   the old one's id and run state (`replaces`, `replaces-state`);
4. the old one is stopped when it holds what the new one needs (host ports,
   the host network, a device, a static address), else it keeps serving;
5. the new one is started and must pass its healthcheck, or, without one,
   stay running (no exit, no restart) for `DriverSettings.replace_grace`;
6. the old one is removed (and its adoption record, if it had one).

When the new one fails (create error, exit, crash loop, unhealthy) the
rollback stops it and renames it `C.failed-<action>`, renames the old one back to `C`,
starts it again if it was running, then removes the failed one; the action
fails with the reason and the new container's last log lines (a few,
capped, known secret values masked). After a kill -9 at any point the retried
action reads the names: a `.failed-` generation means a rollback to finish
(then the replace is tried again from the start); `.old-` with ours at `C`
means the new one is to be started and proved; `.old-` alone means it is
to be created. Parked generations of another action (one superseded while
it was half done) are rolled back first. Between the steps the resource
always has a container to return to, and only the one at `C` is ever
reported as the resource. `HOMELAB_TEST_KILL_AT_STEP=<step>` in the
executor's environment makes it kill itself with SIGKILL after that step:
for the crash tests only (an environment variable, never a manifest field).
Called by `DockerDriver.apply`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import TYPE_CHECKING, Any

import docker.errors

from reconciler.drivers.base import ApplyContext, ApplyResult, InputChanged
from reconciler.drivers.generations import (
    PREFIX,
    REPLACES_LABEL,
    REPLACES_STATE_LABEL,
    failed_name,
    generation_of,
    name_filter,
    needs_stop,
    old_name,
    run_state_label,
    short_action,
)
from reconciler.errors import HomelabError, PermanentError, TemporaryError
from reconciler.resources.normalize import spec_hash

if TYPE_CHECKING:
    from reconciler.drivers.docker import DockerDriver

KILL_ENV = "HOMELAB_TEST_KILL_AT_STEP"
STEPS = (
    "image",
    "renamed-old",
    "created-new",
    "stopped-old",
    "started-new",
    "proved-new",
    "removed-old",
    "renamed-failed",
    "restored-old",
    "started-old",
    "removed-failed",
)
LOG_LINES = 10
LOG_LINE_CHARS = 200
_POLL = 0.2


def reached(step: str) -> None:
    """Tests only: SIGKILL this process after `step` when the environment asks for it."""
    if os.environ.get(KILL_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


class NewGenerationFailed(PermanentError):
    """The new container failed to prove itself; carries the reason and its log lines."""


class SafeReplace:
    def __init__(self, driver: DockerDriver, ctx: ApplyContext) -> None:
        self.driver = driver
        self.ctx = ctx
        self.cname = driver.engine_name(ctx)
        self.steps: list[str] = []
        self.failed_logs: list[str] = []

    # -- engine state --------------------------------------------------------

    def _get(self, name: str) -> Any | None:
        client = self.driver.client(self.ctx)
        try:
            return self.driver._call(
                self.ctx, "inspect", client.containers.get, name, missing_ok=True
            )
        except docker.errors.NotFound:
            return None

    def _parked(self) -> dict[tuple[str, str], Any]:
        """The parked generations of this resource: (old|failed, short action id) -> container."""
        client = self.driver.client(self.ctx)
        found = self.driver._call(
            self.ctx,
            "list",
            client.containers.list,
            all=True,
            filters={"name": name_filter(self.cname)},
        )
        out = {}
        for container in found:
            which = generation_of(container.name, self.cname)
            if which is not None:
                out[which] = container
        return out

    def _ours(self, container: Any | None) -> bool:
        labels = (container.labels or {}) if container is not None else {}
        return labels.get(f"{PREFIX}/action-id") == self.ctx.action.id

    # -- the steps -----------------------------------------------------------

    def _locate(self, me: str) -> tuple[Any | None, Any | None]:
        """(the container at the resource's name, this action's parked old one), after
        finishing other rollbacks and clearing other actions' leftovers."""
        parked = self._parked()
        for (what, action), _container in sorted(parked.items()):
            if what == "failed" or action != me:
                self._rollback(action)  # a rollback to finish, or another action's leftovers
        parked = self._parked()
        current = self._get(self.cname)
        old = parked.get(("old", me))
        if current is None and old is None:
            # Under another engine name (containerName changed): found by this root's labels.
            current = self.driver._existing(self.ctx)
        return current, old

    def apply(self) -> ApplyResult:
        me = short_action(self.ctx.action.id)
        current, old = self._locate(me)
        desired = self.ctx.desired
        if old is None:
            if current is not None and current.labels.get(f"{PREFIX}/spec-hash") == spec_hash(
                desired
            ):
                self.steps.append("already at the desired spec")
                mended = self.driver.repair_networks(self.ctx, current)
                return self.driver._converge(
                    self.ctx, current, [*self.steps, *mended], changed=bool(mended)
                )
            self._image()
            if current is None:  # a first create: nothing to return to, nothing to roll back
                new = self.driver.create_container(self.ctx, {})
                self.steps.append(f"created {self.cname} ({new.short_id})")
                self.driver.forget_adoption(self.ctx)
                return self.driver._converge(self.ctx, new, self.steps, changed=True)
            old = self._rename(current, old_name(self.cname, self.ctx.action.id))
            current = None
            reached("renamed-old")
        elif current is not None and not self._ours(current):
            raise PermanentError(
                f"Container/{self.ctx.name}: both {self.cname} ({current.short_id}) and "
                f"{old.name} ({old.short_id}) exist, and {self.cname} is not this action's: "
                "remove one of them by hand"
            )
        try:
            if current is not None:  # created by this action before a crash: finish it
                self.steps.extend(self.driver.finish_create(self.ctx, current))
            new = current if current is not None else self._create(old)
            self._prove(new, old)
        except PermanentError as exc:
            try:
                self._rollback(me)
            except TemporaryError as undo:  # retried: the next attempt finishes the rollback
                raise TemporaryError(f"{exc}; and the rollback stopped: {undo}") from undo
            except PermanentError as undo:
                raise PermanentError(f"{exc}; and the rollback failed: {undo}") from undo
            if isinstance(exc, InputChanged):
                raise  # a stale plan: superseded, not failed
            raise self._failure(exc, old) from None
        self._remove(old, "old")
        reached("removed-old")
        self.driver.forget_adoption(self.ctx)  # the name's container is ours now
        return self.driver._converge(self.ctx, new, self.steps, changed=True)

    def _image(self) -> None:
        desired = self.ctx.desired
        self.driver._ensure_image(
            self.ctx, desired["image"], desired.get("imagePullPolicy", "IfNotPresent")
        )
        reached("image")

    def _rename(self, container: Any, to: str) -> Any:
        self.driver._call(self.ctx, "rename", container.rename, to)
        self.steps.append(f"renamed {container.name} ({container.short_id}) to {to}")
        self.driver._call(self.ctx, "inspect", container.reload)
        return container

    def _create(self, old: Any) -> Any:
        self.driver._call(self.ctx, "inspect", old.reload)
        labels = {REPLACES_LABEL: old.id, REPLACES_STATE_LABEL: run_state_label(old.attrs)}
        container = self.driver.create_container(self.ctx, labels)
        self.steps.append(f"created {self.cname} ({container.short_id})")
        reached("created-new")
        return container

    def _prove(self, new: Any, old: Any) -> None:
        """Start the new container (stopping the old one first if need be) and watch it."""
        if self.ctx.desired.get("state", "running") == "stopped":
            return  # nothing to start: the old one is removed, the new one stays stopped
        self.driver._call(self.ctx, "inspect", new.reload)
        self.driver._call(self.ctx, "inspect", old.reload)
        held = needs_stop(old.attrs, self.ctx.desired)
        if held and run_state_label(old.attrs) == "running":
            self.driver._call(self.ctx, "stop", old.stop, timeout=self.ctx.settings.stop_grace)
            self.steps.append(f"stopped {old.name} (it holds {', '.join(held)})")
            reached("stopped-old")
        if not (new.attrs.get("State") or {}).get("Running"):
            self.driver._call(self.ctx, "start", new.start)
            self.steps.append(f"started {self.cname}")
            reached("started-new")
        check = self.ctx.desired.get("healthcheck")
        if check and not check.get("disable"):
            self.driver._wait_healthy(self.ctx, new)
            self.steps.append("healthcheck passed")
        else:
            self._stays_running(new)
        reached("proved-new")

    def _stays_running(self, new: Any) -> None:
        """Without a healthcheck: no exit and no restart during the grace period."""
        grace = self.ctx.settings.replace_grace
        self.driver._call(self.ctx, "inspect", new.reload)
        started = (new.attrs.get("State") or {}).get("StartedAt")
        restarts = new.attrs.get("RestartCount", 0)
        deadline = time.monotonic() + grace
        while True:
            state = new.attrs.get("State") or {}
            if state.get("Restarting") or new.attrs.get("RestartCount", 0) != restarts:
                raise NewGenerationFailed("the new container is restarting (a crash loop)")
            if not state.get("Running"):
                code = state.get("ExitCode")
                raise NewGenerationFailed(f"the new container exited (exit code {code})")
            if state.get("StartedAt") != started:
                raise NewGenerationFailed("the new container restarted")
            if time.monotonic() >= deadline:
                self.steps.append(f"stayed running for {grace:g}s")
                return
            time.sleep(_POLL)
            self.driver._call(self.ctx, "inspect", new.reload)

    def _remove(self, container: Any, what: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):  # an earlier attempt removed it
            self.driver._call(self.ctx, "remove", container.remove, force=True, missing_ok=True)
        self.steps.append(f"removed the {what} {container.name} ({container.short_id})")

    # -- the rollback --------------------------------------------------------

    def _rollback(self, action: str) -> None:
        """Undo action `action`'s replace: its new generation out, the old one back at C."""
        current = self._get(self.cname)
        labels = (current.labels or {}) if current is not None else {}
        if current is not None and short_action(labels.get(f"{PREFIX}/action-id", "")) == action:
            self.failed_logs = self._logs(current)
            # Stopped first: the engine cannot rename a container its restart policy restarts.
            self.driver._call(self.ctx, "stop", current.stop, timeout=self.ctx.settings.stop_grace)
            self._rename(current, failed_name(self.cname, action))
            reached("renamed-failed")
            current = None
        parked = self._parked()
        failed = parked.get(("failed", action))
        old = parked.get(("old", action))
        if old is not None and current is None:
            current = self._rename(old, self.cname)
            reached("restored-old")
        was = (failed.labels or {}).get(REPLACES_STATE_LABEL) if failed is not None else None
        if current is not None and was == "running":  # no failed one: the old one never stopped
            self.driver._call(self.ctx, "inspect", current.reload)
            if run_state_label(current.attrs) != "running":
                self.driver._call(self.ctx, "start", current.start)
                self.steps.append(f"started {self.cname} ({current.short_id}) again")
                reached("started-old")
        if failed is not None:
            self._remove(failed, "failed")
            reached("removed-failed")

    def _logs(self, container: Any) -> list[str]:
        try:
            raw = container.logs(tail=LOG_LINES, stdout=True, stderr=True)
        except (docker.errors.DockerException, HomelabError, OSError):
            return []
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
        for name, value in self._secret_values():
            text = text.replace(value, f"<secret {name}>")
        return [line[:LOG_LINE_CHARS] for line in text.splitlines()[-LOG_LINES:]]

    def _secret_values(self) -> list[tuple[str, str]]:
        out = []
        for var in self.ctx.desired.get("env") or []:
            source = var.get("valueFrom")
            if source:
                raw = self.ctx.secret_file(source["secret"]) or b""
                value = raw.decode("utf-8", errors="replace").removesuffix("\n")
                if len(value) >= 4:
                    out.append((str(source["secret"]), value))
        return out

    def _failure(self, exc: Exception, old: Any) -> PermanentError:
        reason = str(exc).removeprefix(f"Container/{self.ctx.name}: ")
        current = self._get(self.cname)
        state = run_state_label(current.attrs) if current is not None else "missing"
        kept = f"the old container {self.cname} ({old.short_id}) is back, {state}"
        message = f"Container/{self.ctx.name}: replace failed: {reason}; {kept}"
        logs = self.failed_logs
        if logs:
            message += "\nlast log lines of the new container:\n" + "\n".join(
                f"  {line}" for line in logs
            )
        return PermanentError(message)


def remove_parked(driver: DockerDriver, ctx: ApplyContext, steps: list[str]) -> None:
    """A delete removes the generations an interrupted replace parked, too."""
    shell = SafeReplace(driver, ctx)
    for container in shell._parked().values():
        shell._remove(container, "parked")
    steps.extend(shell.steps)
