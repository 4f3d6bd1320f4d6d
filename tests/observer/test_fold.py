"""The fold: idempotent, order-safe, and incremental folding equals a full rebuild."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.events.reader import LogEvent, LogRef
from reconciler.observer.fold import WorldState
from reconciler.observer.world_builder import WorldBuilder
from reconciler.runtime_root import RuntimeRoot

NAMES = ["a", "b", "c"]
PRODUCERS = ["observer", "executor", "ingest-x"]


def _ev(
    n: int, etype: str, name: str | None, data: dict[str, Any], kind: str = "Container"
) -> LogEvent:
    ref = LogRef(kind, name) if name is not None else None
    return LogEvent(
        f"{n:019d}-p-{n:08d}", f"2024-05-01T00:00:{n % 60:02d}.000000Z", "p", etype, ref, data
    )


def _spec(image: str) -> dict[str, Any]:
    return {"node": "local", "image": image}


def test_conditions_that_are_not_a_list_are_ignored_not_fatal() -> None:
    state = WorldState()
    for n, conditions in enumerate([5, "True", {"type": "Ready"}, None, True], start=1):
        data = {"spec": _spec("x:1"), "health": "Healthy", "conditions": conditions}
        state.apply(_ev(n, "observed.resource", "a", data))
    doc = state.take_dirty()[("Container", "a")]
    assert doc["status"]["conditions"] == [] and doc["status"]["exists"] is True


def test_listing_with_names_that_are_not_strings_is_not_fatal() -> None:
    state = WorldState()
    state.apply(_ev(1, "observed.resource", "a", {"spec": _spec("x:1"), "health": "Healthy"}))
    listing = {"kind": "Container", "node": "local", "names": [{"a": 1}, ["b"], "c"]}
    state.apply(_ev(2, "observed.listing", None, listing))
    assert state.take_dirty()[("Container", "a")]["status"]["health"] == "Missing"


def test_replaying_events_changes_nothing() -> None:
    events = [
        _ev(1, "observed.resource", "a", {"spec": _spec("x:1"), "health": "Healthy"}),
        _ev(2, "action.succeeded", "a", {"action": "id1", "operation": "create", "actor": "op"}),
        _ev(3, "observed.missing", "a", {}),
    ]
    state = WorldState()
    for ev in events:
        state.apply(ev)
    once = orjson.dumps(list(state.take_dirty().values()))
    for ev in events:
        state.apply(ev)
    assert orjson.dumps(list(state.take_dirty().values())) == once


def test_an_older_event_arriving_late_does_not_undo_a_newer_one() -> None:
    state = WorldState()
    state.apply(_ev(5, "observed.missing", "a", {}))
    state.apply(_ev(4, "observed.resource", "a", {"spec": _spec("x:1"), "health": "Healthy"}))
    doc = state.docs[("Container", "a")]
    assert doc["status"]["exists"] is False
    assert doc["status"]["health"] == "Missing"


def test_listing_marks_absent_resources_of_that_node_missing() -> None:
    state = WorldState()
    state.apply(_ev(1, "observed.resource", "a", {"spec": _spec("x:1"), "health": "Healthy"}))
    state.apply(_ev(2, "observed.resource", "b", {"spec": _spec("x:1"), "health": "Healthy"}))
    other = {"spec": {"node": "far", "image": "x:1"}, "health": "Healthy"}
    state.apply(_ev(3, "observed.resource", "c", other))
    state.apply(
        _ev(4, "observed.listing", None, {"kind": "Container", "node": "local", "names": ["a"]})
    )
    docs = state.take_dirty()
    assert docs[("Container", "a")]["status"]["exists"] is True
    assert docs[("Container", "b")]["status"]["health"] == "Missing"
    assert docs[("Container", "c")]["status"]["exists"] is True


def test_observed_spec_sets_basis_and_conditions() -> None:
    state = WorldState()
    cond = {"type": "SpecReadable", "status": "False", "reason": "LabelMissing", "message": "m"}
    data = {"spec": _spec("x:1"), "health": "Stopped", "conditions": [cond]}
    state.apply(_ev(1, "observed.resource", "a", data))
    status = state.take_dirty()[("Container", "a")]["status"]
    assert status["observed"] == _spec("x:1")
    assert len(status["basis"]) == 16
    assert status["conditions"][0]["reason"] == "LabelMissing"
    assert status["health"] == "Stopped"


def test_unknown_kind_and_bad_names_become_diagnostics() -> None:
    state = WorldState()
    state.apply(_ev(1, "observed.missing", "a", {}, kind="Spaceship"))
    state.apply(_ev(2, "observed.missing", "../../etc", {}))
    state.apply(_ev(3, "observed.resource", "a", {"spec": "nope"}))
    assert state.docs == {}
    messages = [d.message for d in state.diagnostics]
    assert "unknown kind 'Spaceship'" in messages[0]
    assert "DNS-1123" in messages[1]
    assert "spec" in messages[2]


def test_node_status_sets_ready_condition_with_transition_time() -> None:
    state = WorldState()
    state.apply(_ev(1, "node.status", "n1", {"ready": True}, kind="Node"))
    state.apply(_ev(2, "node.status", "n1", {"ready": True}, kind="Node"))
    state.apply(_ev(3, "node.status", "n1", {"ready": False, "reason": "Down"}, kind="Node"))
    [cond] = state.docs[("Node", "n1")]["status"]["conditions"]
    assert (cond["status"], cond["reason"]) == ("False", "Down")
    assert cond["lastTransitionTime"] == "2024-05-01T00:00:03.000000Z"


# -- property: incremental folding in random chunks with restarts equals a rebuild --

_event = st.one_of(
    st.tuples(
        st.just("observed.resource"), st.sampled_from(NAMES), st.sampled_from(["x:1", "x:2"])
    ),
    st.tuples(st.just("observed.missing"), st.sampled_from(NAMES), st.just("")),
    st.tuples(st.just("action.succeeded"), st.sampled_from(NAMES), st.sampled_from(["a1", "a2"])),
    st.tuples(
        st.just("resource.condition"), st.sampled_from(NAMES), st.sampled_from(["True", "False"])
    ),
    st.tuples(st.just("observed.listing"), st.just(""), st.sampled_from(["", "a", "b"])),
    st.tuples(st.just("garbage"), st.just(""), st.just("")),
)


def _line(n: int, producer: str, item: tuple[str, str, str]) -> bytes:
    etype, name, arg = item
    if etype == "garbage":
        return b'{"id": torn garbage\n'
    ref: dict[str, str] | None = {"kind": "Container", "name": name}
    data: dict[str, Any]
    if etype == "observed.resource":
        data = {"spec": _spec(arg), "health": "Healthy"}
    elif etype == "action.succeeded":
        data = {"action": arg, "operation": "update", "actor": "op"}
    elif etype == "resource.condition":
        data = {"type": "Flapping", "status": arg, "reason": "R", "message": ""}
    elif etype == "observed.listing":
        ref, data = None, {"kind": "Container", "node": "local", "names": [arg] if arg else []}
    else:
        data = {}
    day = "2024-05-01" if n < 1000 else "2024-05-02"
    event = {
        "id": f"{n:019d}-{producer}-{n:08d}",
        "ts": f"{day}T00:00:{n % 60:02d}.000000Z",
        "source": producer,
        "type": etype,
        "ref": ref,
        "data": data,
    }
    return orjson.dumps(event) + b"\n"


def _append(root: Path, n: int, producer: str, line: bytes) -> None:
    day = "2024-05-01" if n < 1000 else "2024-05-02"
    folder = root / "events" / day
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{producer}.jsonl", "ab") as fh:
        fh.write(line)


def _world(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "world").rglob("*.json"))
    }


@settings(max_examples=40, deadline=None)
@given(
    items=st.lists(st.tuples(_event, st.sampled_from(PRODUCERS), st.booleans()), max_size=40),
    chunks=st.lists(st.integers(1, 12), min_size=1, max_size=10),
    restarts=st.lists(st.booleans(), min_size=1, max_size=10),
    switch=st.integers(0, 40),
)
def test_incremental_folding_with_restarts_equals_a_full_rebuild(
    items: list[tuple[tuple[str, str, str], str, bool]],
    chunks: list[int],
    restarts: list[bool],
    switch: int,
) -> None:
    base = Path(tempfile.mkdtemp(prefix="fold-prop-"))
    try:
        inc, full = RuntimeRoot(base / "inc"), RuntimeRoot(base / "full")
        folder = WorldBuilder(inc, durable=False)
        folder.open()
        pos, step = 0, 0
        while pos < len(items):
            size = chunks[step % len(chunks)]
            for n in range(pos, min(pos + size, len(items))):
                item, producer, _ = items[n]
                number = n + (1000 if n >= switch else 0)  # a new day folder appears
                _append(inc.path, number, producer, _line(number, producer, item))
            pos += size
            folder.tick()
            if restarts[step % len(restarts)]:
                folder = WorldBuilder(inc, durable=False)
                folder.open()
            step += 1
        folder.tick()
        shutil.copytree(inc.events, full.events)
        rebuilt = WorldBuilder(full, durable=False)
        rebuilt.rebuild()
        assert _world(inc.path) == _world(full.path)
    finally:
        shutil.rmtree(base)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_field = st.sampled_from(
    [
        "spec",
        "health",
        "conditions",
        "labels",
        "node",
        "managed",
        "kind",
        "names",
        "type",
        "status",
        "ready",
        "info",
        "reason",
        "action",
        "state",
        "startedAt",
    ]
)


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "observed.resource",
                    "observed.missing",
                    "observed.listing",
                    "node.status",
                    "resource.condition",
                    "action.succeeded",
                    "other",
                ]
            ),
            st.sampled_from([None, "a", "b", "Bad_Name"]),
            st.sampled_from(["Container", "Node", "File", "Nope"]),
            st.dictionaries(_field, _json | st.sampled_from(["Healthy", "Container", "local"])),
        ),
        max_size=12,
    )
)
def test_no_event_payload_can_crash_the_fold(
    events: list[tuple[str, str | None, str, dict[str, Any]]],
) -> None:
    """Any JSON the log can hold folds or becomes a diagnostic; the world stays writable."""
    state = WorldState()
    for n, (etype, name, kind, data) in enumerate(events, start=1):
        state.apply(_ev(n, etype, name, data, kind))
    for doc in state.take_dirty().values():
        orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


def test_runtime_facts_are_kept_beside_the_spec_and_dropped_when_missing() -> None:
    w = WorldState()
    spec = {"image": "x:1"}
    w.apply(_ev(1, "observed.resource", "a", {"spec": spec, "runtime": {"imageId": "sha256:ab"}}))
    status = w.docs[("Container", "a")]["status"]
    assert status["runtime"] == {"imageId": "sha256:ab"}
    w.apply(_ev(2, "observed.resource", "a", {"spec": spec, "runtime": "not an object"}))
    assert "runtime" not in status
    w.apply(_ev(3, "observed.resource", "a", {"spec": spec, "runtime": {"imageId": "sha256:cd"}}))
    w.apply(_ev(4, "observed.missing", "a", {"reason": "gone"}))
    assert "runtime" not in status and status["exists"] is False
