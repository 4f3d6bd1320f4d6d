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
from reconciler.observer.replay import Replay
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


@settings(max_examples=300, deadline=None)
@given(
    days=st.lists(
        st.lists(st.tuples(st.integers(0, 30), st.integers(0, 5), _event), min_size=0, max_size=12),
        min_size=1,
        max_size=4,
    )
)
def test_two_shards_merge_to_the_world_one_replay_builds(
    days: list[list[tuple[int, int, tuple[str, Any, dict[str, Any]]]]],
) -> None:
    """The rebuild's split over two processes: the same documents in the same order, the
    same diagnostics in the same order (day by day), the same listings and count."""
    alone, zero, one = Replay(), Replay(shard=0), Replay(shard=1)
    alone_diags = []
    for index, day in enumerate(days):
        events = sorted((_log_event(n, s, item) for n, s, item in day), key=lambda e: e.id)
        alone.fold(events)
        alone_diags.extend((index, d) for d in alone.diagnostics)
        alone.diagnostics.clear()
        zero.fold_shard(events, index)
        one.fold_shard(events, index)
    want = alone.world_state()
    got, diags = zero.merged_state(one.part())
    assert list(got.docs) == list(want.docs)
    assert _encoded(got) == _encoded(want)
    assert [(at[0], d) for at, d in diags] == alone_diags
    assert (got.listings, got.folded) == (want.listings, want.folded)
    assert got._names == want._names


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
        if two_cores:  # however small the log: shard 1 folded by the helper process
            rebuilt.shard_fold, rebuilt.shard_bytes = True, 0
        result = rebuilt.rebuild()
        assert rebuilt.rebuild_processes == (2 if two_cores else 1)
        assert _world(inc.path) == _world(full.path)
        assert _quarantined(inc.path) == _quarantined(full.path)
        assert result.events == sum(1 for item, _ in items if not isinstance(item, int))
        # The replayed state folds later events like the incremental one.
        for k, (item, producer) in enumerate(more):
            n = 1100 + k
            for root in (inc, full):
                _append(root.path, n, producer, _line(n, producer, item))
        folder.tick()
        rebuilt.tick()
        assert _world(inc.path) == _world(full.path)
    finally:
        shutil.rmtree(base)
