"""The pure planner and its rendering: colours and the JSON Patch round trip.

Given-desired-and-observed-expect-this-plan cases are data in tests/diff/cases/
(run by test_plan_cases.py); this module keeps what a golden text cannot show.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.diff import make_plan, plan_to_json, render_text

IN_PLACE = {"Container": frozenset({"restartPolicy"}), "File": frozenset({"mode", "sha256"})}
WEB = {"image": "local/busybox:1", "restartPolicy": "always", "env": [{"name": "A", "value": "1"}]}
FILE = {"node": "local", "path": "/srv/homelab/f", "mode": "0644", "sha256": "sha256:aa"}


def plan_of(desired: dict[Any, Any], observed: dict[Any, Any], **kw: Any) -> Any:
    return make_plan("0123456789abcdef", desired, observed, in_place=IN_PLACE, **kw)


def test_colour_only_when_asked() -> None:
    desired = {("Container", "new"): WEB, ("File", "f"): {**FILE, "mode": "0600"}}
    observed = {("File", "f"): FILE, ("Container", "gone"): WEB}
    plan = plan_of(desired, observed)
    plain, coloured = render_text(plan), render_text(plan, colour=True)
    assert "\x1b[" not in plain
    assert "\x1b[32m  + Container/new\x1b[0m" in coloured  # create: green
    assert "\x1b[33m  ~ File/f\x1b[0m" in coloured  # update: yellow
    assert "\x1b[31m  - Container/gone\x1b[0m" in coloured  # delete: red
    # Three titles and every field line are painted, nothing else.
    painted = coloured.replace("\x1b[0m", "").count("\x1b[")
    assert painted == 3 + plain.count("\n      ")


json_scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text("ab~/", max_size=3)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text("ab~/", max_size=3), inner, max_size=4)
    ),
    max_leaves=12,
)
specs = st.dictionaries(st.sampled_from(["image", "env", "mode", "sha256", "x~1/"]), json_values)


@settings(max_examples=300, deadline=None)
@given(desired=st.none() | specs, observed=st.none() | specs)
def test_json_patch_round_trips(
    desired: dict[str, Any] | None, observed: dict[str, Any] | None
) -> None:
    desired_map = {} if desired is None else {("File", "f"): desired}
    observed_map = {} if observed is None else {("File", "f"): observed}
    plan = plan_of(desired_map, observed_map)
    doc = orjson.loads(orjson.dumps(plan_to_json(plan)))  # through the --json wire format
    if desired == observed or (desired is None and observed is None):
        assert doc["changes"] == []
        return
    (change,) = doc["changes"]
    result = jsonpatch.apply_patch(copy.deepcopy(change["observed"]), change["patch"])
    assert result == desired


def test_the_run_state_and_adoption_have_their_own_operations_symbols_and_colours() -> None:
    running = {"image": "local/busybox:1", "restartPolicy": "always", "state": "running"}
    desired = {
        ("Container", "up"): running,
        ("Container", "down"): {**running, "state": "stopped"},
        ("Container", "mine"): running,
        ("Container", "theirs"): running,
    }
    observed = {
        ("Container", "up"): {**running, "state": "paused"},
        ("Container", "down"): running,
        ("Container", "gone"): running,
    }
    unmanaged = {("Container", "mine"): running, ("Container", "stray"): running}
    plan = plan_of(desired, observed, unmanaged=unmanaged)
    ops = [(c.operation, c.name) for c in plan.changes]
    # An unmanaged resource nobody desires is not the plan's business: no delete.
    assert ops == [
        ("create", "theirs"),
        ("adopt", "mine"),
        ("start", "up"),
        ("stop", "down"),
        ("delete", "gone"),
    ]
    coloured = render_text(plan, colour=True)
    assert "\x1b[36m <= Container/mine\x1b[0m" in coloured
    assert "\x1b[32m  > Container/up\x1b[0m" in coloured
    assert "\x1b[33m [] Container/down\x1b[0m" in coloured
    doc = plan_to_json(plan)
    assert doc["summary"] == {
        "create": 1,
        "adopt": 1,
        "start": 1,
        "update": 0,
        "up": 0,
        "replace": 0,
        "stop": 1,
        "delete": 1,
    }
    assert render_text(plan).endswith(
        "Plan: 1 to create, 0 to update, 0 to replace, 1 to delete, 1 to adopt, 1 to start, "
        "1 to stop."
    )
