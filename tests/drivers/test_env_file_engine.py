"""`envFile` on the real engine: the container holds the file's values; a file change diffs.

Through the real planner, queue, executor and engine: a Container whose
`envFile` names a repository file is created with the file's variables (the
manifest's `env` winning), observes as its spec (nothing left to plan), and a
commit that changes only the file plans a replace whose patch is that variable.
"""

from __future__ import annotations

import pytest

from tests.executor.lab import Lab

pytestmark = pytest.mark.docker  # every test here uses the real engine


def test_a_container_gets_its_env_file_and_a_changed_file_is_a_diff(lab: Lab) -> None:
    lab.write("env/app.env", "TZ=Europe/Berlin\nPUID=1000\nLOG_LEVEL=debug\n")
    name = lab.container("envfile", envFile=["env/app.env"], env={"LOG_LEVEL": "info"})
    lab.commit()
    [create] = lab.propose()
    assert lab.run_now([create]) == ["done"]
    [container] = lab.containers(name)
    held = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
    assert (held["TZ"], held["PUID"], held["LOG_LEVEL"]) == ("Europe/Berlin", "1000", "info")
    assert lab.plan().plan.empty  # observed as desired

    lab.write("env/app.env", "TZ=Europe/Berlin\nPUID=1001\nLOG_LEVEL=debug\n")
    lab.commit("a new uid")
    [change] = lab.plan().plan.changes
    assert change.operation == "replace"
    assert change.patch == [{"op": "replace", "path": "/env/1/value", "value": "1001"}]
