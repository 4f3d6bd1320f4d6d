"""Running one action: claim, re-check, apply with retries, record, settle.

`ActionRunner.claim_and_run(id)` renames `approved/<id>.json` to `running/`
(losing that race to another process, or to a reject, is a no-op), then
`run(action)` re-checks the action against the desired tip and the world
(and, through the driver's `check`, the real resource); a plan that no longer
holds goes to `superseded/` with a "stale plan" reason and is never run.
Otherwise it records `action.started`, runs the kind's driver under the one
tenacity retry policy of the project (exponential backoff with jitter,
bounded attempts, `TemporaryError` only, an `action.retrying` event before
each sleep), emits `observed.resource` (with the driver's `runtime` facts,
when it has them) / `observed.missing` so the world closes the loop at
once, then `action.succeeded` and a move to `done/`; or `failed/` with the
error, output and duration. `recover(action)` is the same
for an action found in `running/` at start-up: the world check is skipped
(the world may show our own half-done work) and the idempotent driver
finishes or adopts what was done. Called by `reconciler.executor.service`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import tenacity

from reconciler.drivers.base import ApplyContext, ApplyResult, Driver, DriverSettings, InputChanged
from reconciler.errors import HomelabError, QueueConflict, TemporaryError
from reconciler.events.log import EventLog
from reconciler.executor.context import DesiredView
from reconciler.executor.guard import refuse_unsafe
from reconciler.planning import stale_reason
from reconciler.queue.action import Action, now_iso
from reconciler.queue.store import ActionQueue

ACTOR = "executor"


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter for `TemporaryError`s."""

    attempts: int = 5
    initial: float = 0.5
    maximum: float = 10.0


class _Stale(Exception):
    """The plan no longer holds; carries the reason."""


class ActionRunner:
    def __init__(
        self,
        queue: ActionQueue,
        events: EventLog,
        view: DesiredView,
        drivers: dict[str, Driver],
        *,
        settings: DriverSettings | None = None,
        retry: RetryPolicy | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.queue = queue
        self.events = events
        self.view = view
        self.drivers = drivers
        self.settings = settings or DriverSettings()
        self.retry = retry or RetryPolicy()
        self.stop = stop or threading.Event()

    def claim_and_run(self, action_id: str) -> str | None:
        """Claim an approved action and run it; its final state, or None if not claimed."""
        try:
            action = self.queue.move(action_id, "approved", "running", actor=ACTOR)
        except QueueConflict:
            return None
        return self.run(action, recovering=False)

    def fail_unrun(self, action: Action, reason: str) -> str | None:
        """Fail an approved action without running it (its dependency failed)."""
        outcome = self._outcome("failed", time.monotonic(), 0, "")
        outcome["error"] = reason
        try:
            self.queue.move(
                action.id, "approved", "failed", actor=ACTOR, reason=reason, outcome=outcome
            )
        except QueueConflict:
            return None
        return "failed"

    def waiting(self, action: Action, reason: str) -> None:
        """Say why an approved action is not run yet (once per reason)."""
        self._event("action.waiting", action, "waiting", {"reason": reason})

    def recover(self, action: Action) -> str | None:
        return self.run(action, recovering=True)

    def run(self, action: Action, *, recovering: bool) -> str | None:
        started = time.monotonic()
        attempts = [0]
        try:
            ctx, driver = self._checked(action, recovering, attempts)
            self._event("action.started", action, "started", {"recovering": recovering})
            result: ApplyResult = self._retrying(action, attempts, driver.apply, ctx)
        except _Stale as stale:
            return self._settle(action, "superseded", str(stale), started, attempts[0])
        except InputChanged as exc:
            return self._settle(action, "superseded", str(exc), started, attempts[0])
        except TemporaryError as exc:
            if self.stop.is_set():
                return None  # shutting down: left in running/, recovered on the next start
            what = f"{attempts[0]} attempt(s)" if attempts[0] else "checking the plan"
            reason = f"gave up after {what}: {exc}"
            return self._settle(action, "failed", reason, started, attempts[0])
        except HomelabError as exc:
            return self._settle(action, "failed", str(exc), started, attempts[0])
        except Exception as exc:  # a driver bug must not kill the service
            reason = f"internal error: {type(exc).__name__}: {exc}"
            return self._settle(action, "failed", reason, started, attempts[0])
        self._observed(action, ctx, result)
        outcome = self._outcome("succeeded", started, attempts[0], result.output)
        outcome["changed"] = result.changed
        outcome["health"] = result.health
        if recovering and not result.changed:
            outcome["adopted"] = True
        self._event("action.succeeded", action, "succeeded", {"outcome": outcome})
        return self._move(action, "done", None, outcome)

    def _checked(
        self, action: Action, recovering: bool, attempts: list[int]
    ) -> tuple[ApplyContext, Driver]:
        driver = self.drivers.get(action.kind)
        if driver is None:
            raise HomelabError(f"no driver for kind {action.kind!r}")
        tip = self._retrying(action, [0], lambda: self.view.tip())
        refuse_unsafe(self.view, action, tip)  # guard rails, whatever the plan said
        basis = None if recovering else self.view.world_basis(action.kind, action.name)
        reason = stale_reason(action, tip, basis, check_world=not recovering)
        if reason:
            raise _Stale(reason)
        ctx = self.view.context(action, tip, self.settings)
        if not recovering:
            real = self._retrying(action, [0], driver.check, ctx)
            if real:
                raise _Stale(f"stale plan: {real}")
        return ctx, driver

    def _retrying(self, action: Action, attempts: list[int], fn: Any, *args: Any) -> Any:
        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            self._event(
                "action.retrying",
                action,
                "retrying",
                {"attempt": state.attempt_number, "error": str(exc), "waitSeconds": wait},
            )

        def counted(*a: Any) -> Any:
            attempts[0] += 1
            return fn(*a)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(TemporaryError),
            stop=tenacity.stop_after_attempt(self.retry.attempts)
            | tenacity.stop_when_event_set(self.stop),
            wait=tenacity.wait_exponential_jitter(
                multiplier=self.retry.initial, max=self.retry.maximum, jitter=self.retry.initial
            ),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(counted, *args)

    def _sleep(self, seconds: float) -> None:
        self.stop.wait(seconds)

    def _observed(self, action: Action, ctx: ApplyContext, result: ApplyResult) -> None:
        ref = action.key
        if action.operation == "delete":
            self.events.append("observed.missing", ref, {"reason": f"deleted by {action.id}"})
            return
        data = {"spec": action.desired, "health": result.health, "node": ctx.node.name}
        if result.runtime is not None:  # the facts the collector reports beside the spec
            data["runtime"] = result.runtime
        self.events.append("observed.resource", ref, {**data, "managed": True}, sync=True)

    @staticmethod
    def _outcome(result: str, started: float, attempts: int, output: str) -> dict[str, Any]:
        return {
            "result": result,
            "output": output,
            "durationSeconds": round(time.monotonic() - started, 3),
            "attempts": attempts,
            "finishedAt": now_iso(),
        }

    def _settle(
        self, action: Action, dst: str, reason: str, started: float, attempts: int
    ) -> str | None:
        outcome = self._outcome(dst, started, attempts, "")
        outcome["error"] = reason
        return self._move(action, dst, reason, outcome)

    def _move(
        self, action: Action, dst: str, reason: str | None, outcome: dict[str, Any]
    ) -> str | None:
        try:
            self.queue.move(action.id, "running", dst, actor=ACTOR, reason=reason, outcome=outcome)
        except QueueConflict:
            return None
        return dst

    def _event(self, type: str, action: Action, state: str, extra: dict[str, Any]) -> None:
        data = {
            "action": action.id,
            "operation": action.operation,
            "actor": ACTOR,
            "state": state,
            **extra,
        }
        self.events.append(type, action.key, data)
