"""The in-process service runner behind `homelab up`, with small real services."""

from __future__ import annotations

import threading

import pytest

from reconciler.cli.service_runner import Backoff, Bound, ServiceRunner

FAST = Backoff(initial=0.01, cap=0.04, healthy_after=3600)


class Flaky:
    """Fails `failures` times, then runs until stopped."""

    def __init__(self, name: str, failures: int) -> None:
        self.name = name
        self.failures = failures
        self.calls = 0
        self.running = threading.Event()

    def run(self, stop: threading.Event) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError(f"boom {self.calls}")
        self.running.set()
        stop.wait()


class Steady:
    def __init__(self, name: str) -> None:
        self.name = name
        self.running = threading.Event()
        self.stopped = threading.Event()

    def run(self, stop: threading.Event) -> None:
        self.running.set()
        stop.wait()
        self.stopped.set()


class Quitter:
    """Returns without being asked to stop, twice, then behaves."""

    def __init__(self) -> None:
        self.name = "quitter"
        self.calls = 0
        self.running = threading.Event()

    def run(self, stop: threading.Event) -> None:
        self.calls += 1
        if self.calls > 2:
            self.running.set()
            stop.wait()


def test_failing_service_is_restarted_with_backoff_and_reported() -> None:
    flaky, steady = Flaky("flaky", failures=2), Steady("steady")
    seen: list[tuple[str, str, str]] = []
    runner = ServiceRunner(
        [flaky, steady], report=lambda s, m: seen.append((s.name, s.state, m)), backoff=FAST
    )
    runner.start()
    assert flaky.running.wait(10) and steady.running.wait(10)
    status = runner.status()
    assert status["flaky"].restarts == 2
    assert status["flaky"].last_error == "RuntimeError: boom 2"
    assert status["flaky"].state == "running"
    assert status["steady"].restarts == 0
    failures = [m for n, s, m in seen if n == "flaky" and s == "backoff"]
    assert failures == [
        "failed: RuntimeError: boom 1; restarting in 0.01s",
        "failed: RuntimeError: boom 2; restarting in 0.02s",
    ]
    assert runner.stop() == []


def test_one_failing_loop_never_stops_the_others() -> None:
    broken, steady = Flaky("broken", failures=10**9), Steady("steady")
    # Far from the failure bound (past it the runner stops everything, on purpose).
    runner = ServiceRunner([broken, steady], backoff=FAST, bound=Bound(10**6, 600))
    runner.start()
    assert steady.running.wait(10)
    while broken.calls < 5:
        runner.stop_event.wait(0.01)
    assert runner.status()["steady"].state == "running"
    assert not steady.stopped.is_set()
    assert runner.stop() == []
    assert steady.stopped.is_set()


def test_service_returning_early_is_restarted() -> None:
    quitter = Quitter()
    runner = ServiceRunner([quitter], backoff=FAST)
    runner.start()
    assert quitter.running.wait(10)
    assert runner.status()["quitter"].restarts == 2
    assert runner.status()["quitter"].last_error == "run() returned before stop was requested"
    runner.stop()


def test_stop_ends_every_service_cleanly() -> None:
    services = [Steady(f"s{i}") for i in range(4)]
    runner = ServiceRunner(services, backoff=FAST)
    runner.start()
    assert all(s.running.wait(10) for s in services)
    assert runner.stop(timeout=10) == []
    assert all(s.stopped.is_set() for s in services)
    assert {st.state for st in runner.status().values()} == {"stopped"}


def test_a_service_that_ignores_stop_is_named_not_waited_for_forever() -> None:
    release = threading.Event()

    class Stubborn:
        name = "stubborn"

        def run(self, stop: threading.Event) -> None:
            release.wait(30)

    runner = ServiceRunner([Stubborn()], backoff=FAST)
    runner.start()
    assert runner.stop(timeout=0.05) == ["stubborn"]
    release.set()


def test_backoff_doubles_up_to_the_cap() -> None:
    backoff = Backoff(initial=1, cap=10)
    assert [backoff.delay(n) for n in range(6)] == [0, 1, 2, 4, 8, 10]
    assert backoff.delay(10_000) == 10


def test_healthy_run_resets_the_backoff() -> None:
    flaky = Flaky("flaky", failures=3)
    runner = ServiceRunner([flaky], backoff=Backoff(initial=0.01, cap=1, healthy_after=0))
    runner.start()
    assert flaky.running.wait(10)
    assert runner.status()["flaky"].failures == 1
    assert runner.status()["flaky"].restarts == 3
    runner.stop()


def test_duplicate_service_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        ServiceRunner([Steady("a"), Steady("a")])


class SetsItsStop:
    """Sets the stop event it was given (as the observer once did), then fails once."""

    def __init__(self) -> None:
        self.name = "setter"
        self.calls = 0
        self.running = threading.Event()

    def run(self, stop: threading.Event) -> None:
        self.calls += 1
        if self.calls == 1:
            stop.set()
            raise RuntimeError("world/File is not a folder")
        self.running.set()
        stop.wait()


def test_a_service_setting_its_stop_event_stops_only_itself() -> None:
    setter, steady = SetsItsStop(), Steady("steady")
    runner = ServiceRunner([setter, steady], backoff=FAST)
    runner.start()
    assert setter.running.wait(5), runner.status()
    assert not runner.stop_event.is_set()
    assert runner.status()["steady"].state == "running"
    assert runner.status()["setter"].restarts == 1
    runner.stop()


def test_failures_past_the_bound_give_up_and_name_the_service() -> None:
    flaky, steady = Flaky("flaky", failures=100), Steady("steady")
    runner = ServiceRunner([flaky, steady], backoff=FAST, bound=Bound(3, 60))
    runner.start()
    assert runner.stop_event.wait(5)
    runner.wait()
    assert runner.exhausted == "flaky failed 3 times in 60s (last: RuntimeError: boom 3); giving up"
    assert runner.failing()["flaky"].state == "failed"
    assert runner.stop() == []
    assert steady.stopped.is_set()
