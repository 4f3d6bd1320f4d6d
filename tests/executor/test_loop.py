"""The loop with the real observer: approve -> container -> world -> empty plan."""

from __future__ import annotations

import threading
import time

from reconciler.drivers.base import DriverSettings
from reconciler.executor import Executor, RetryPolicy
from reconciler.observer.service import ObserverService
from tests.executor.lab import Lab, ThreadedExecutor


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
        assert lab.wait_final(create["id"]) == "done"
        wait_plan_empty(lab)  # the world closed the loop, with the observer's own fold

        lab.container("loop", env={"A": "2"})
        lab.commit("change env")
        [replace] = lab.propose(fold=False)
        assert replace["operation"] == "replace"
        assert lab.wait_final(replace["id"]) == "done"
        wait_plan_empty(lab)
    assert len(lab.containers(name)) == 1
