"""The config-hash runner of the compose stack observation: failures are results, cached.

No engine is needed: the commands here fail before they would reach one.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.observer.collectors.compose_stack import ConfigHashes, HashResult

HOST = "unix:///nonexistent/docker.sock"


def test_a_missing_command_is_an_error_result(tmp_path: Path) -> None:
    hashes = ConfigHashes(("no-such-compose-cli",), HOST)
    result = hashes.get("s", tmp_path, "s", ["compose.yaml"], key=1)
    assert result.hashes is None
    assert (
        result.error == "no-such-compose-cli config --hash: command not found (no-such-compose-cli)"
    )


def test_a_hanging_command_times_out(tmp_path: Path) -> None:
    hashes = ConfigHashes(("sh", "-c", "sleep 5"), HOST, timeout=0.3)
    result = hashes.get("s", tmp_path, "s", ["compose.yaml"], key=1)
    assert result == HashResult(None, "sh -c sleep 5 config --hash: timed out after 0.3 s")


def test_the_output_is_parsed_and_cached_by_key(tmp_path: Path) -> None:
    script = 'echo "$@" >> runs; printf "app 1f2e\\nweb 9a8b\\n"'
    hashes = ConfigHashes(("sh", "-c", script, "compose"), HOST)
    first = hashes.get("s", tmp_path, "proj", ["a.yaml", "b.yaml"], key=("proj", "sha1"))
    assert first == HashResult({"app": "1f2e", "web": "9a8b"})
    assert hashes.get("s", tmp_path, "proj", ["a.yaml", "b.yaml"], key=("proj", "sha1")) == first
    assert (tmp_path / "runs").read_text() == "-p proj -f a.yaml -f b.yaml config --hash=*\n"
    hashes.get("s", tmp_path, "proj", ["a.yaml", "b.yaml"], key=("proj", "sha2"))
    assert hashes.runs == 2
    hashes.forget(set())
    hashes.get("s", tmp_path, "proj", ["a.yaml", "b.yaml"], key=("proj", "sha2"))
    assert hashes.runs == 3
