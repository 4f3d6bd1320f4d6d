"""The pure planner and its terraform-style rendering."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.diff import diff_resource, make_plan, plan_to_json, render_text

IN_PLACE = {"Container": frozenset({"restartPolicy"}), "File": frozenset({"mode", "sha256"})}
WEB = {"image": "local/busybox:1", "restartPolicy": "always", "env": [{"name": "A", "value": "1"}]}
FILE = {"node": "local", "path": "/srv/homelab/f", "mode": "0644", "sha256": "sha256:aa"}


def plan_of(desired: dict[Any, Any], observed: dict[Any, Any], **kw: Any) -> Any:
    return make_plan("0123456789abcdef", desired, observed, in_place=IN_PLACE, **kw)


def test_one_change_of_each_kind_and_the_summary() -> None:
    desired = {
        ("Container", "new"): WEB,
        ("Container", "moved"): {**WEB, "image": "local/busybox:2"},
        ("File", "f"): {**FILE, "mode": "0600"},
        ("Container", "same"): WEB,
    }
    observed = {
        ("Container", "moved"): WEB,
        ("File", "f"): FILE,
        ("Container", "same"): copy.deepcopy(WEB),
        ("Container", "gone"): WEB,
    }
    plan = plan_of(desired, observed)
    assert [(c.operation, c.name) for c in plan.changes] == [
        ("create", "new"),
        ("update", "f"),
        ("replace", "moved"),
        ("delete", "gone"),
    ]
    text = render_text(plan)
    assert "  + Container/new" in text
    assert '      ~ mode: "0644" -> "0600"' in text
    assert "-/+ Container/moved" in text
    assert '      ~ image: "local/busybox:1" -> "local/busybox:2"  # forces replacement' in text
    assert "  - Container/gone" in text
    assert text.endswith("Plan: 1 to create, 1 to update, 1 to replace, 1 to delete.")
    assert "\x1b[" not in text
    assert "\x1b[32m" in render_text(plan, colour=True)


def test_in_sync_world_gives_an_empty_plan() -> None:
    plan = plan_of({("File", "f"): FILE}, {("File", "f"): dict(FILE)})
    assert plan.empty
    assert "No changes." in render_text(plan)
    assert render_text(plan).endswith("Plan: 0 to create, 0 to update, 0 to replace, 0 to delete.")


def test_ignore_differences_hides_drift_of_those_fields_only() -> None:
    drifted = {**WEB, "restartPolicy": "no", "image": "local/busybox:2"}
    change = diff_resource(
        "Container", "w", WEB, drifted, in_place=IN_PLACE["Container"], ignore=["/restartPolicy"]
    )
    assert change is not None
    assert change.patch == [{"op": "replace", "path": "/image", "value": "local/busybox:1"}]
    assert (
        diff_resource(
            "Container", "w", WEB, {**WEB, "restartPolicy": "no"}, ignore=["/restartPolicy"]
        )
        is None
    )


def test_invalid_resources_are_never_deleted_and_incomplete_state_withholds_deletes() -> None:
    observed = {("File", "broken"): FILE, ("File", "gone"): FILE}
    plan = plan_of({}, observed, protected={("File", "broken")})
    assert [(c.operation, c.name) for c in plan.changes] == [("delete", "gone")]
    withheld = plan_of({}, observed, allow_deletes=False)
    assert withheld.changes == []
    assert len(withheld.notes) == 2


def test_nodes_are_observed_only() -> None:
    plan = plan_of({("Node", "n"): {"dockerHost": "unix:///x"}}, {})
    assert plan.empty


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
