"""Content lookups for the comparable spec: repository files and secrets.

`CommitResolver` answers the two questions `comparable_spec` asks: the
sha256 of a repository file at the desired commit, and the fingerprint of a
secret under `ROOT/secrets/` (read at plan time, never shown). Secret names
are DNS-1123 labels, so the path cannot leave the secrets folder. Used by
the planner and the executor.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.resources.normalize import fingerprint
from reconciler.sources.git import DesiredState, GitSource


class CommitResolver:
    def __init__(self, source: GitSource, state: DesiredState, secrets: Path | None) -> None:
        self.source = source
        self.state = state
        self.secrets = secrets

    def repo_file_sha256(self, path: str) -> str | None:
        return self.source.file_sha256(self.state, path)

    def secret_sha256(self, name: str) -> str | None:
        value = self.secret_bytes(name)
        return None if value is None else fingerprint(value)

    def secret_bytes(self, name: str) -> bytes | None:
        if self.secrets is None or "/" in name or name.startswith("."):
            return None
        try:
            return (self.secrets / name).read_bytes()
        except OSError:
            return None
