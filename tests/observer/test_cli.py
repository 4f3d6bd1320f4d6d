"""The observer's CLI: events tail, get, world rebuild (through the real `homelab` entry)."""

from __future__ import annotations

import orjson
from click.testing import CliRunner

from reconciler.cli.main import cli
from reconciler.events import EventLog
from reconciler.runtime_root import RuntimeRoot


def _fill(root: RuntimeRoot) -> None:
    log = EventLog(root, "observer")
    spec = {"node": "local", "image": "local/busybox:1"}
    log.append("observed.resource", ("Container", "web"), {"spec": spec, "health": "Healthy"})
    log.append("action.succeeded", ("Container", "web"), {"action": "a1", "operation": "create"})
    log.append("observed.missing", ("Container", "db"))
    log.close()


def test_world_rebuild_then_get_shows_the_world(runtime_root: RuntimeRoot) -> None:
    _fill(runtime_root)
    runner = CliRunner()
    root = ["--root", str(runtime_root.path)]
    out = runner.invoke(cli, ["world", "rebuild", *root])
    assert out.exit_code == 0, out.output
    assert "rebuilt 2 world documents from 3 events" in out.output
    table = runner.invoke(cli, ["get", "containers", *root])
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split()[:4] == ["NAME", "NODE", "EXISTS", "HEALTH"]
    assert lines[1].split()[:4] == ["db", "-", "no", "Missing"]
    assert "create succeeded" in lines[2]
    doc = orjson.loads(runner.invoke(cli, ["get", "Container", "web", "-o", "json", *root]).output)
    assert doc["status"]["observed"]["image"] == "local/busybox:1"
    missing = runner.invoke(cli, ["get", "Container", "nope", *root])
    assert missing.exit_code == 1 and "not in the world" in missing.output


def test_events_tail_filters_by_type_and_ref(runtime_root: RuntimeRoot) -> None:
    _fill(runtime_root)
    runner = CliRunner()
    root = ["--root", str(runtime_root.path)]
    out = runner.invoke(cli, ["events", "tail", "--type", "observed.*", *root])
    assert out.exit_code == 0, out.output
    assert len(out.output.splitlines()) == 2
    out = runner.invoke(cli, ["events", "tail", "--ref", "Container/web", "-o", "json", *root])
    types = [orjson.loads(line)["type"] for line in out.output.splitlines()]
    assert types == ["observed.resource", "action.succeeded"]
    bad = runner.invoke(cli, ["events", "tail", "--ref", "web", *root])
    assert bad.exit_code == 1 and "KIND/NAME" in bad.output
