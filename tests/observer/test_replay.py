"""The from-scratch replay (`Replay`) builds exactly the world `WorldState.apply` builds.

Two property tests: a pure one over generated event sequences in any order
(equal and decreasing ids, every event type, malformed payloads, listings
that follow nodes), and one on real log files with corrupt lines and day
switches, where the world rebuilt from scratch must be byte-identical to
the one folded tick by tick with restarts, and must keep folding the same
afterwards.
"""

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
from reconciler.observer.replay import LaterReplay, Replay
from reconciler.observer.world_builder import WorldBuilder
from reconciler.runtime_root import RuntimeRoot
from reconciler.world.writer import encode_doc

_scalar = st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from(["", "x", "local"])
_json = st.recursive(
    _scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=5,
)
_status = st.sampled_from(["True", "False", "Unknown", True, False, "maybe", None])
_cond = st.fixed_dictionaries(
    {"type": st.sampled_from(["Ready", "Flapping", "", 7]), "status": _status},
    optional={"reason": _scalar, "message": _scalar},
)
_spec = st.fixed_dictionaries(
    {"image": st.sampled_from(["x:1", "x:2"])},
    optional={"node": st.sampled_from(["local", "other", None, 3])},
)


def _opt(**fields: Any) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


_DATA: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "observed.resource": st.fixed_dictionaries(
        {"spec": _spec | _scalar},
        optional={
            "health": st.sampled_from(["Healthy", "Unhealthy", "Stopped", "Bogus", 1]),
            "node": st.sampled_from(["local", "other", None, 3]),
            "managed": _scalar,
            "labels": st.dictionaries(st.sampled_from(["a", "b"]), _scalar) | _scalar,
            "runtime": st.dictionaries(st.sampled_from(["imageId"]), _scalar) | _scalar,
            "conditions": st.lists(_cond | _scalar, max_size=3) | _scalar,
        },
    ),
    "observed.missing": _opt(reason=_scalar),
    "observed.listing": _opt(
        kind=st.sampled_from(["Container", "Node", "Nope"]),
        node=st.sampled_from(["local", "other", 3]),
        names=st.lists(st.sampled_from(["a", "b", "c", 1]), max_size=3) | _scalar,
        startedAt=_scalar,
    ),
    "node.status": _opt(
        ready=_scalar,
        info=st.dictionaries(st.sampled_from(["os"]), _scalar) | _scalar,
        reason=_scalar,
        message=_scalar,
    ),
    "resource.condition": _cond | _opt(type=_scalar, status=_status),
    "action.succeeded": _opt(
        action=_scalar, state=_scalar, operation=_scalar, actor=_scalar, reason=_json
    ),
    "action.failed": _opt(action=_scalar, outcome=_json),
    "queue.added": _opt(action=_scalar),
}
_ref = st.sampled_from(
    [
        None,
        ("Container", "a"),
        ("Container", "b"),
        ("Container", "c"),
        ("Node", "local"),
        ("Node", "other"),
        ("Nope", "a"),
        ("Container", "Bad_Name"),
    ]
)
_event = st.sampled_from(sorted(_DATA)).flatmap(
    lambda etype: st.tuples(
        st.just(etype), _ref, _DATA[etype] | st.dictionaries(st.sampled_from(["spec"]), _json)
    )
)


# Mostly valid events over few resources, for the merge of a split log: the fields whose
# winners the merge compares, and listings that do mark what they do not list.
_few_refs = st.sampled_from([("Container", "a"), ("Container", "b"), ("Node", "local")])
_valid_data: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "observed.resource": st.fixed_dictionaries(
        {
            "spec": st.fixed_dictionaries(
                {"image": st.sampled_from(["x:1", "x:2"])},
                optional={"node": st.sampled_from(["local", "other"])},
            ),
            "health": st.sampled_from(["Healthy", "Stopped"]),
        },
        optional={
            "node": st.sampled_from(["local", "other"]),
            "managed": st.booleans(),
            "labels": st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 2)),
            "conditions": st.lists(_cond, max_size=2),
        },
    ),
    "observed.missing": st.just({}),
    "observed.listing": st.fixed_dictionaries(
        {
            "kind": st.sampled_from(["Container", "Node"]),
            "node": st.sampled_from(["local", "other"]),
            "names": st.lists(st.sampled_from(["a", "b", "local"]), max_size=2),
        }
    ),
    "node.status": st.fixed_dictionaries(
        {"ready": st.booleans()}, optional={"info": st.just({"os": "linux"})}
    ),
    "resource.condition": st.fixed_dictionaries(
        {
            "type": st.sampled_from(["Ready", "Flapping"]),
            "status": st.sampled_from(["True", "False"]),
        }
    ),
    "action.succeeded": st.fixed_dictionaries({"action": st.sampled_from(["a1", "a2"])}),
}
_valid_event = st.sampled_from(sorted(_valid_data)).flatmap(
    lambda etype: st.tuples(st.just(etype), _few_refs, _valid_data[etype])
)


def _log_event(n: int, second: int, item: tuple[str, Any, dict[str, Any]]) -> LogEvent:
    etype, ref, data = item
    return LogEvent(
        f"{n:019d}-p-{n:04d}",
        f"2024-05-01T00:00:{second:02d}.000000Z",
        "p",
        etype,
        None if ref is None else LogRef(*ref),
        data,
    )


def _encoded(state: WorldState) -> dict[Any, bytes]:
    return {key: encode_doc(doc) for key, doc in state.take_dirty().items()}


@settings(max_examples=300, deadline=None)
@given(
    days=st.lists(
        st.lists(st.tuples(st.integers(0, 30), st.integers(0, 5), _event), min_size=0, max_size=12),
        min_size=1,
        max_size=4,
    )
)
def test_replay_builds_the_world_apply_builds(
    days: list[list[tuple[int, int, tuple[str, Any, dict[str, Any]]]]],
) -> None:
    """Any events, ids repeated or going back across days: same documents, same diagnostics."""
    slow, fast = WorldState(), Replay()
    fast_diags = []
    for day in days:
        events = sorted((_log_event(n, s, item) for n, s, item in day), key=lambda e: e.id)
        for ev in events:
            slow.apply(ev)
        fast.fold(events)
        fast_diags.extend(fast.diagnostics)
        fast.diagnostics.clear()
    built = fast.world_state()
    assert _encoded(built) == _encoded(slow)
    assert fast_diags == slow.diagnostics
    assert (built.listings, built.folded) == (slow.listings, slow.folded)
    assert set(built.docs) == set(slow.docs)


@settings(max_examples=1000, deadline=None)
@given(
    days=st.lists(
        st.lists(
            st.tuples(st.integers(0, 30), st.integers(0, 5), _valid_event | _valid_event | _event),
            min_size=0,
            max_size=12,
        ),
        min_size=1,
        max_size=5,
    ),
    cut=st.integers(0, 5),
)
def test_earlier_and_later_days_merge_to_the_world_one_replay_builds(
    days: list[list[tuple[int, int, tuple[str, Any, dict[str, Any]]]]], cut: int
) -> None:
    """The rebuild's split over two processes (the earlier days folded apart, the later ones
    by `LaterReplay`, then merged): the same documents in the same order, the same
    diagnostics in the same order, the same listings, count and names, ids repeated or
    going back across the cut, listings on either side of it included."""
    cut = min(cut, len(days))
    alone, earlier, later = Replay(), Replay(), LaterReplay()
    alone_diags, split_diags = [], []
    for index, day in enumerate(days):
        events = sorted((_log_event(n, s, item) for n, s, item in day), key=lambda e: e.id)
        alone.fold(events)
        alone_diags.extend(alone.diagnostics)
        alone.diagnostics.clear()
        part = earlier if index < cut else later
        part.fold(events)
    split_diags = earlier.diagnostics + later.diagnostics
    want = alone.world_state()
    got = later.merged_state(earlier.part())
    assert list(got.docs) == list(want.docs)
    assert _encoded(got) == _encoded(want)
    assert split_diags == alone_diags
    assert (got.listings, got.folded) == (want.listings, want.folded)
    assert got._names == want._names


def _split_equals_alone(earlier: list[LogEvent], later: list[LogEvent]) -> dict[Any, bytes]:
    alone, first, second = Replay(), Replay(), LaterReplay()
    alone.fold(earlier)
    alone.fold(later)
    first.fold(earlier)
    second.fold(later)
    want = _encoded(alone.world_state())
    assert _encoded(second.merged_state(first.part())) == want
    return want


def _ev(n: int, etype: str, data: dict[str, Any], name: str | None = "a") -> LogEvent:
    ref = None if name is None else LogRef("Container", name)
    return LogEvent(
        f"{n:019d}-p-{n:04d}", f"2024-05-01T00:00:{n:02d}.000000Z", "p", etype, ref, data
    )


_ON_LOCAL = {"spec": {"image": "x:1", "node": "local"}, "health": "Healthy"}
_EMPTY_LISTING = {"kind": "Container", "node": "local", "names": []}


def test_a_later_listing_marks_what_only_the_earlier_days_saw() -> None:
    world = _split_equals_alone(
        [_ev(5, "observed.resource", _ON_LOCAL), _ev(6, "observed.resource", _ON_LOCAL, "b")],
        [
            _ev(10, "observed.listing", _EMPTY_LISTING, None),
            _ev(12, "observed.resource", _ON_LOCAL, "b"),
        ],
    )
    health = {key[1]: orjson.loads(doc)["status"]["health"] for key, doc in world.items()}
    assert health == {"a": "Missing", "b": "Healthy"}


def test_a_later_listing_does_not_see_what_is_created_after_it() -> None:
    world = _split_equals_alone(
        [_ev(3, "observed.resource", _ON_LOCAL)],
        [
            _ev(10, "observed.listing", _EMPTY_LISTING, None),
            _ev(4, "observed.resource", _ON_LOCAL, "b"),
        ],
    )
    health = {key[1]: orjson.loads(doc)["status"]["health"] for key, doc in world.items()}
    assert health == {"a": "Missing", "b": "Healthy"}  # b's id is older, yet it came after


def test_equal_ids_across_the_cut_keep_the_earlier_event() -> None:
    world = _split_equals_alone(
        [_ev(7, "action.succeeded", {"action": "first"})],
        [_ev(7, "action.succeeded", {"action": "second"})],
    )
    assert [orjson.loads(d)["status"]["lastAction"]["id"] for d in world.values()] == ["first"]


def test_a_condition_keeps_its_transition_time_across_the_cut() -> None:
    cond = {"type": "Flapping", "status": "True"}
    world = _split_equals_alone(
        [_ev(2, "resource.condition", cond)],
        [_ev(9, "resource.condition", {**cond, "reason": "again"})],
    )
    (doc,) = [orjson.loads(d) for d in world.values()]
    assert doc["status"]["conditions"][0]["lastTransitionTime"] == "2024-05-01T00:00:02.000000Z"


PRODUCERS = ["observer", "executor", "ingest-x"]
CORRUPT = [
    b'{"id": torn garbage\n',
    b"\xff\xfe not even text\n",
    b'{"id":"1","ts":"t","source":"s","type":"observed.missing","data":{"r":"\xff"}}\n',
    b'{"id":"2","ts":"t","source":"s","type":"observed.missing","data":{"n":1e999}}\n',
    b'{"id":"3","ts":"t","source":"s","type":"observed.missing","data":[]}\n',
    b'{"ts":"t","source":"s","type":"observed.missing"}\n',
]


def _line(n: int, producer: str, item: tuple[str, Any, dict[str, Any]] | int) -> bytes:
    if isinstance(item, int):
        return CORRUPT[item % len(CORRUPT)]
    ev = _log_event(n, n % 60, item)
    doc = {**ev.to_dict(), "id": f"{n:019d}-{producer}-{n:08d}", "source": producer}
    doc["ts"] = f"{_day(n)}T00:00:{n % 60:02d}.000000Z"
    return orjson.dumps(doc) + b"\n"


def _day(n: int) -> str:
    return "2024-05-01" if n < 1000 else "2024-05-02"


def _append(root: Path, n: int, producer: str, line: bytes) -> None:
    folder = root / "events" / _day(n)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{producer}.jsonl", "ab") as fh:
        fh.write(line)


def _world(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "world").rglob("*.json"))
    }


def _quarantined(root: Path) -> dict[str, Any]:
    path = root / "logs" / "event-quarantine.json"
    if not path.exists():
        return {}
    entries = orjson.loads(path.read_bytes())["entries"]
    return {key: {k: v for k, v in e.items() if k != "seenAt"} for key, e in entries.items()}


_item = _event | st.integers(0, len(CORRUPT) - 1)


@settings(max_examples=40, deadline=None)
@given(
    items=st.lists(st.tuples(_item, st.sampled_from(PRODUCERS)), max_size=40),
    more=st.lists(st.tuples(_item, st.sampled_from(PRODUCERS)), max_size=10),
    chunks=st.lists(st.integers(1, 12), min_size=1, max_size=10),
    restarts=st.lists(st.booleans(), min_size=1, max_size=10),
    switch=st.integers(0, 40),
    two_cores=st.booleans(),
)
def test_rebuild_from_scratch_equals_the_incremental_fold(
    items: list[tuple[Any, str]],
    more: list[tuple[Any, str]],
    chunks: list[int],
    restarts: list[bool],
    switch: int,
    two_cores: bool,
) -> None:
    base = Path(tempfile.mkdtemp(prefix="replay-prop-"))
    try:
        inc, full = RuntimeRoot(base / "inc"), RuntimeRoot(base / "full")
        folder = WorldBuilder(inc, durable=False)
        folder.open()
        pos, step = 0, 0
        while pos < len(items):
            size = chunks[step % len(chunks)]
            for n in range(pos, min(pos + size, len(items))):
                item, producer = items[n]
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
        rebuilt.helpers = two_cores  # whatever the load
        if two_cores:  # however small the log: the earlier day folded by the helper process
            rebuilt.split_fold, rebuilt.split_bytes = True, 0
        result = rebuilt.rebuild()
        days = len(list(full.events.iterdir()))
        assert rebuilt.rebuild_processes == (2 if two_cores and days >= 2 else 1)
        assert _world(inc.path) == _world(full.path)
        assert _quarantined(inc.path) == _quarantined(full.path)
        assert result.events == sum(1 for item, _ in items if not isinstance(item, int))
        # The replayed state folds later events like the incremental one.
        for k, (item, producer) in enumerate(more):
            n = 1100 + k if k % 2 else 900 + k  # the earlier day's files grow too
            for root in (inc, full):
                _append(root.path, n, producer, _line(n, producer, item))
        folder.tick()
        rebuilt.tick()
        assert _world(inc.path) == _world(full.path)
        # What the helper read is fingerprinted like the rest: a restart resumes quietly.
        again = WorldBuilder(full, durable=False)
        again.open()
        again.tick()
        assert _world(inc.path) == _world(full.path)
        assert _quarantined(inc.path) == _quarantined(full.path)
    finally:
        shutil.rmtree(base)
