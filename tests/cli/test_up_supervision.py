"""`homelab up` supervises each service alone: a failing observer does not stop the others.

The real `homelab up` runs as a subprocess on a tmp runtime root whose
`world/File` is a plain file, so the real observer raises on every start.
The UI, supervisor and executor keep running, `/readyz` and `/summary` name
the failure, `state/services/observer.json` and a `service.failed` event
record it, and the process never exits 0 because of it; past the failure
bound it exits non-zero by itself, naming the service.
"""

from __future__ import annotations

import json
import socket
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.cli.test_up import DIRECT, Up, eventually, get_json, start_up

__all__ = ["start_up"]  # the fixture, shared with test_up.py

NO_ENGINE = "unix:///nonexistent/homelab-test-no-engine.sock"


def lab_port() -> int:
    """A free port in the range this project's tests may bind (18700-18799)."""
    for port in range(18700, 18800):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 18700-18799")


def broken_world(root: Path) -> None:
    """A plain file where the observer needs the folder world/File."""
    (root / "world").mkdir(parents=True)
    (root / "world" / "File").write_text("not a folder\n")


def readyz(base: str) -> tuple[int, Any]:
    try:
        with DIRECT.open(f"{base}/readyz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def service_events(root: Path, etype: str) -> list[dict[str, Any]]:
    found = []
    for path in sorted((root / "events").glob("*/*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                event = json.loads(line)
                if event["type"] == etype:
                    found.append(event)
    return found


def test_a_failing_observer_leaves_the_others_running_and_is_reported(
    tmp_path: Path, start_up: Callable[[list[str], dict[str, str]], Up]
) -> None:
    root = tmp_path / "root"
    broken_world(root)
    port = lab_port()
    args = ["--root", str(root), "--port", str(port), "--max-failures", "1000"]
    up = start_up(args, {"DOCKER_HOST": NO_ENGINE})
    up.wait_line("Login token: ")
    base = f"http://127.0.0.1:{port}"

    def observer_failing() -> bool:
        status, body = readyz(base)
        return status == 503 and "failing" in body["checks"].get("service:observer", "")

    eventually(observer_failing, "/readyz to report the observer failing", timeout=30)
    eventually(lambda: len(service_events(root, "service.failed")) >= 2, "two failures logged")
    assert up.proc.poll() is None, "\n".join(up.lines)

    seen: dict[str, Any] = {}

    def summary_failing() -> bool:
        seen.update(get_json(f"{base}/summary"))
        observer = seen["services"]["observer"]
        return bool(observer["state"] == "backoff" and observer["failures"] >= 2)

    # Between two attempts the observer is briefly "running": wait for a backoff.
    eventually(summary_failing, "/summary to show the observer in backoff", timeout=30)
    summary, observer = seen, seen["services"]["observer"]
    assert observer["reason"] in {"NotADirectoryError", "FileExistsError"}
    for other in ("supervisor", "executor", "ui"):
        assert summary["services"][other]["state"] == "running", summary["services"]
    # The supervisor keeps planning: the example's actions are proposed.
    eventually(lambda: get_json(f"{base}/summary")["actions"]["pending"] >= 1, "a proposal")

    def condition_failed() -> bool:
        doc = json.loads((root / "state" / "services" / "observer.json").read_text())
        failed = [c for c in doc["conditions"] if c["type"] == "ServiceFailed"]
        seen["condition"] = failed[0]
        return bool(doc["state"] == "backoff" and failed[0]["status"] == "True")

    # The condition says what is true now: False for the instant of each restart.
    eventually(condition_failed, "ServiceFailed=True in state/services/observer.json", 30)
    assert seen["condition"]["reason"] in {"NotADirectoryError", "FileExistsError"}
    event = service_events(root, "service.failed")[0]
    assert event["data"]["service"] == "observer"
    assert f"{root}/world/File" in event["data"]["error"], event

    # Repaired by hand: the observer starts again and the failure clears.
    (root / "world" / "File").unlink()
    eventually(lambda: readyz(base)[1]["checks"].get("service:observer") == "running", "recovery")
    assert get_json(f"{base}/summary")["services"]["observer"]["state"] == "running"
    assert up.interrupt() == 0
    assert up.lines[-1] == "Stopped."


def test_stopping_while_a_service_fails_exits_non_zero(
    tmp_path: Path, start_up: Callable[[list[str], dict[str, str]], Up]
) -> None:
    root = tmp_path / "root"
    broken_world(root)
    args = ["--root", str(root), "--port", str(lab_port()), "--max-failures", "1000"]
    up = start_up(args, {"DOCKER_HOST": NO_ENGINE})
    up.wait_line("Login token: ")
    eventually(lambda: len(service_events(root, "service.failed")) >= 1, "a failure logged")
    assert up.interrupt() == 1
    assert any("observer" in line and "failing" in line for line in up.lines[-3:]), up.lines


def test_a_service_failing_past_the_bound_makes_up_exit_non_zero(
    tmp_path: Path, start_up: Callable[[list[str], dict[str, str]], Up]
) -> None:
    root = tmp_path / "root"
    broken_world(root)
    args = ["--root", str(root), "--port", str(lab_port())]
    up = start_up(
        [*args, "--max-failures", "3", "--failure-window", "120"], {"DOCKER_HOST": NO_ENGINE}
    )
    code = up.proc.wait(timeout=90)
    assert code == 3, "\n".join(up.lines)
    last = "\n".join(up.lines[-4:])
    assert "observer failed 3 times in 120s" in last, last
    assert "NotADirectoryError" in last or "FileExistsError" in last, last
    doc = json.loads((root / "state" / "services" / "observer.json").read_text())
    assert doc["state"] == "failed"
    assert service_events(root, "service.exhausted")[0]["data"]["service"] == "observer"
