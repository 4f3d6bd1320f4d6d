"""Ingest: external events are validated, then appended under their own producer."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.events.ingest import ForbiddenEvent, InvalidEvent, ingest
from reconciler.events.reader import LogReader
from reconciler.runtime_root import RuntimeRoot


def test_valid_events_are_appended_under_the_agent_producer(runtime_root: RuntimeRoot) -> None:
    written = ingest(
        runtime_root,
        "backup-bot",
        [
            {
                "type": "backup.finished",
                "ref": {"kind": "File", "name": "db-dump"},
                "data": {"ok": 1},
            }
        ],
    )
    assert written[0]["source"] == "ingest-backup-bot"
    [batch] = list(LogReader(runtime_root).batches())
    assert batch.events[0].type == "backup.finished"
    assert next(runtime_root.events.rglob("*.jsonl")).name == "ingest-backup-bot.jsonl"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"type": "Bad Type"}, "must look like"),
        ({"type": "action.succeeded"}, "reserved"),
        ({"type": "x.y", "ref": {"kind": "Spaceship", "name": "a"}}, "is not one of"),
        ({"type": "x.y", "ref": {"kind": "File", "name": "../etc"}}, "DNS-1123"),
        ({"type": "x.y", "data": [1, 2]}, "data must be an object"),
        ({"type": "x.y", "data": {"blob": "x" * 70_000}}, "at most"),
        ({"type": "x.y", "extra": 1}, "unknown fields"),
    ],
)
def test_invalid_events_are_refused_and_nothing_is_written(
    runtime_root: RuntimeRoot, event: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidEvent, match=message):
        ingest(runtime_root, "bot", [{"type": "ok.first"}, event])
    assert list(runtime_root.events.rglob("*.jsonl")) == []


@pytest.mark.parametrize(
    "etype",
    ["observed.resource", "observed.missing", "node.status", "resource.condition", "auth.refused"],
)
def test_the_projects_own_types_are_forbidden_to_agents(
    runtime_root: RuntimeRoot, etype: str
) -> None:
    with pytest.raises(ForbiddenEvent, match="reserved"):
        ingest(runtime_root, "bot", [{"type": "ok.first"}, {"type": etype}])
    assert list(runtime_root.events.rglob("*.jsonl")) == []


def test_bad_agent_name_is_refused(runtime_root: RuntimeRoot) -> None:
    with pytest.raises(InvalidEvent, match="producer name"):
        ingest(runtime_root, "../../x", [{"type": "a.b"}])
