"""The loop with the real observer: approve -> container -> world -> empty plan."""

from __future__ import annotations

import threading
import time

import pytest

from reconciler.drivers.base import DriverSettings
from reconciler.executor import Executor, RetryPolicy
from reconciler.observer.service import ObserverService
from tests.executor.lab import Lab, ThreadedExecutor

pytestmark = pytest.mark.docker  # every test here uses the real engine


class ThreadedObserver:
    def __init__(self, lab: Lab) -> None:
        self.service = ObserverService(lab.root, lab.repo.path)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.service.run, args=(self.stop,), daemon=True)

    def __enter__(self) -> ThreadedObserver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive(), "observer did not stop"


def wait_plan_empty(lab: Lab, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not lab.plan(fold=False).plan.empty:
        assert time.monotonic() < deadline, lab.plan(fold=False).plan.changes
        time.sleep(0.1)


def test_the_real_observer_sees_what_the_executor_applied(lab: Lab) -> None:
    name = lab.container("loop", env={"A": "1"})
    lab.commit()
    executor = Executor(
        lab.root,
        lab.repo.path,
        settings=DriverSettings(stop_grace=1),
        retry=RetryPolicy(attempts=3, initial=0.1, maximum=0.5),
    )
    with ThreadedObserver(lab), ThreadedExecutor(executor):
        [create] = lab.propose(fold=False)
        assert lab.wait_final(create.id) == "done"
        wait_plan_empty(lab)  # the world closed the loop, with the observer's own fold

        lab.container("loop", env={"A": "2"})
        lab.commit("change env")
        [replace] = lab.propose(fold=False)
        assert replace.operation == "replace"
        assert lab.wait_final(replace.id) == "done"
        wait_plan_empty(lab)
    assert len(lab.containers(name)) == 1


def test_a_container_removed_by_hand_is_proposed_again_and_recreated(lab: Lab) -> None:
    """Observer, supervisor and executor together: drift after `done` comes back."""
    from reconciler.atomic_files import read_json
    from reconciler.supervisor.service import Supervisor
    from reconciler.world import world_path

    name = lab.container("again")
    lab.commit()
    supervisor = Supervisor(lab.repo.path, lab.root)
    executor = Executor(lab.root, lab.repo.path, settings=DriverSettings(stop_grace=1))

    def propose_and_approve() -> dict[str, object]:
        supervisor.reconcile(force=True)
        [action] = lab.queue.actions("pending")
        lab.queue.move(str(action.id), "pending", "approved", actor="alice")
        return action

    def world_exists() -> bool:
        try:
            return bool(read_json(world_path(lab.root, "Container", name))["status"]["exists"])
        except OSError:
            return False

    with ThreadedObserver(lab), ThreadedExecutor(executor):
        first = propose_and_approve()
        assert (first.operation, first.generation) == ("create", 0)
        assert lab.wait_final(str(first.id)) == "done"
        wait_plan_empty(lab)

        [container] = lab.containers(name)
        container.remove(force=True)  # by hand, outside the control plane
        deadline = time.monotonic() + 10
        while world_exists():
            assert time.monotonic() < deadline, "the observer did not see the removal"
            time.sleep(0.05)

        second = propose_and_approve()
        assert second.operation == "create"
        assert second.id != first.id
        assert second.generation == 1
        assert lab.wait_final(str(second.id)) == "done"
        wait_plan_empty(lab)
    supervisor.events.close()
    assert len(lab.containers(name)) == 1
