"""Desired state from a git commit, never from the work tree.

`GitRepo` wraps the few git plumbing commands we need (rev-parse, ls-tree,
cat-file --batch, status). `GitSource.load(ref)` reads every `*.yaml`/`*.yml`
under the manifests path at a commit and returns a `DesiredState`. Parsed
files are cached by blob id, in memory and optionally on disk under the
runtime root, so a new commit re-parses only the files it changed.
Called by the CLI (`validate`, `plan`), the supervisor and the executor.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.errors import GitError, Location, ManifestError
from reconciler.resources.key import ResourceKey
from reconciler.resources.repo import REPO_CONFIG_FILE, RepoConfig
from reconciler.sources.blobcache import BlobCache
from reconciler.sources.env_files import expand_env_files
from reconciler.sources.manifests import (
    FileResult,
    Manifest,
    gc_paused,
    parse_repo_config,
)
from reconciler.sources.parallel import parse_many

MANIFEST_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class TreeEntry:
    path: str
    blob: str


class GitRepo:
    """Read-only access to one repository through git plumbing."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def run(self, *args: str, input: bytes | None = None, config: tuple[str, ...] = ()) -> bytes:
        """Run one git command in the repository; GitError (with git's message) on failure.

        `config` adds `-c key=value` settings (e.g. a committer identity).
        """
        settings = [arg for item in config for arg in ("-c", item)]
        try:
            proc = subprocess.run(
                ["git", *settings, "-C", str(self.path), *args],
                input=input,
                capture_output=True,
                check=False,
            )
        except FileNotFoundError as exc:
            raise GitError("git is not installed (apt-get install git)") from exc
        if proc.returncode != 0:
            msg = proc.stderr.decode(errors="replace").strip()
            raise GitError(f"git {' '.join(args)} failed in {self.path}: {msg}")
        return proc.stdout

    def resolve(self, ref: str | None) -> str:
        """The commit id of `ref` (default HEAD, the tip of the current branch)."""
        target = (ref or "HEAD") + "^{commit}"
        try:
            return self.run("rev-parse", "--verify", "--quiet", target).decode().strip()
        except GitError as exc:
            if ref is None:
                raise GitError(
                    f"{self.path} is not a git repository with a commit yet "
                    "(git init && git add manifests && git commit -m init)"
                ) from exc
            raise GitError(f"{ref!r} is not a commit in {self.path}") from exc

    def tree(self, commit: str, path: str) -> list[TreeEntry]:
        """Files under `path` at `commit` (recursively), with their blob ids."""
        out = self.run("ls-tree", "-r", "-z", "--full-tree", commit, "--", path)
        entries = []
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, name = record.partition(b"\t")
            _mode, kind, blob = meta.decode().split()
            if kind == "blob":
                entries.append(TreeEntry(name.decode(errors="surrogateescape"), blob))
        return entries

    def blobs(self, ids: Iterable[str]) -> dict[str, bytes]:
        """Contents of many blobs through one `git cat-file --batch`."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        out = self.run("cat-file", "--batch", input=("\n".join(wanted) + "\n").encode())
        result: dict[str, bytes] = {}
        pos = 0
        for blob in wanted:
            header_end = out.index(b"\n", pos)
            header = out[pos:header_end].split()
            if len(header) < 3:
                raise GitError(f"blob {blob} is missing from the repository")
            size = int(header[2])
            start = header_end + 1
            result[blob] = out[start : start + size]
            pos = start + size + 1
        return result

    def dirty_paths(self, path: str) -> list[str]:
        """Uncommitted changes under `path` in the work tree (ignored by plans)."""
        try:
            out = self.run("status", "--porcelain", "-z", "--", path)
        except GitError:
            return []
        return [rec[3:].decode(errors="replace") for rec in out.split(b"\0") if len(rec) > 3]

    def head_branch(self) -> str | None:
        try:
            return self.run("symbolic-ref", "--quiet", "--short", "HEAD").decode().strip()
        except GitError:
            return None


@dataclass
class DesiredState:
    """All manifests at one commit: valid resources, errors, and what is unsure."""

    commit: str
    path: str
    manifests: dict[ResourceKey, Manifest] = field(default_factory=dict)
    errors: list[ManifestError] = field(default_factory=list)
    invalid: set[ResourceKey] = field(default_factory=set)
    # Why each invalid resource is invalid: its own errors, located.
    invalid_errors: dict[ResourceKey, list[ManifestError]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # repo path -> blob id (whole tree)
    complete: bool = True  # False when a file could not be parsed at all
    config: RepoConfig = field(default_factory=RepoConfig)

    @property
    def valid(self) -> bool:
        return not self.errors


class GitSource:
    """Loads `DesiredState` from commits of one repository, caching by blob id."""

    def __init__(self, repo: Path, path: str | None = None, cache: BlobCache | None = None) -> None:
        """`path` is the manifests folder; None follows `manifestsPath` of homelab.yaml
        at each commit (default `manifests`)."""
        self.repo = GitRepo(repo)
        self.explicit_path = path.strip("/") or "." if path is not None else None
        self.path = self.explicit_path or "manifests"  # the folder of the last load
        self.cache = cache if cache is not None else BlobCache(None)
        self._sha_cache: dict[str, str] = {}
        self._placed: dict[tuple[str, str], FileResult] = {}  # (blob, path) -> result
        # Values callers derive from manifests, kept while the manifest object is
        # unchanged (manifest objects are reused while their blob and path are).
        self.derived: dict[str, Any] = {}

    def load(self, ref: str | None = None) -> DesiredState:
        with gc_paused():
            return self._load(ref)

    def _placed_result(self, blob: str, path: str, result: FileResult) -> FileResult:
        """`result` with locations at `path`, memoized so a re-plan reuses it."""
        key = (blob, path)
        placed = self._placed.get(key)
        if placed is None:
            placed = self._placed[key] = result.at_path(path)
        return placed

    def _load(self, ref: str | None) -> DesiredState:
        commit = self.repo.resolve(ref)
        state = DesiredState(commit=commit, path=self.path)
        all_files = self.repo.tree(commit, ".")
        state.files = {e.path: e.blob for e in all_files}
        self._read_config(state)
        self.path = state.path = self.explicit_path or (
            state.config.manifestsPath.strip("/") or "."
        )
        prefix = "" if self.path == "." else self.path + "/"
        entries = [
            e for e in all_files if e.path.startswith(prefix) and e.path.endswith(MANIFEST_SUFFIXES)
        ]
        if not entries and not any(p.startswith(prefix) for p in state.files):
            state.errors.append(
                ManifestError(
                    Location(self.path),
                    "",
                    f"no manifests folder {self.path!r} at commit {commit[:12]}",
                )
            )
            state.complete = False
        self._parse_missing(entries)
        for entry in sorted(entries, key=lambda e: e.path):
            result = self.cache.get(entry.blob)
            assert result is not None  # _parse_missing filled every gap
            self._merge(state, self._placed_result(entry.blob, entry.path, result))
        live = {(e.blob, e.path) for e in entries}
        self._placed = {k: v for k, v in self._placed.items() if k in live}
        for dup_ref in sorted(state.invalid & state.manifests.keys()):
            dup = state.manifests.pop(dup_ref)
            error = ManifestError(
                dup.location,
                "metadata.name",
                f"duplicate {dup_ref[0]} name {dup_ref[1]!r}: another definition is invalid",
            )
            state.errors.append(error)
            state.invalid_errors.setdefault(dup_ref, []).append(error)
        state.manifests, failed = expand_env_files(
            state.manifests, lambda path: self.file_bytes(state, path)
        )
        for bad, error in failed:  # a Container's envFile is missing or unreadable
            state.errors.append(error)
            state.invalid.add(bad)
            state.invalid_errors.setdefault(bad, []).append(error)
        self.cache.flush(keep=[e.blob for e in entries])
        return state

    def _parse_missing(self, entries: list[TreeEntry]) -> None:
        """Parse every file whose blob is not cached yet (on all cores when many)."""
        todo = {e.blob: e.path for e in entries if self.cache.get(e.blob) is None}
        if not todo:
            return
        texts = self.repo.blobs(todo)
        items = [(path, texts[blob]) for blob, path in todo.items()]
        for blob, result in zip(todo, parse_many(items), strict=True):
            self.cache.put(blob, result)

    def _read_config(self, state: DesiredState) -> None:
        blob = state.files.get(REPO_CONFIG_FILE)
        if blob is None:
            return
        text = self.repo.blobs([blob])[blob]
        config, errors = parse_repo_config(REPO_CONFIG_FILE, text)
        state.errors.extend(errors)
        if config is not None:
            state.config = config

    @staticmethod
    def _merge(state: DesiredState, result: FileResult) -> None:
        state.errors.extend(result.errors)
        state.invalid.update(result.invalid)
        for i, ref in enumerate(result.invalid):
            state.invalid_errors.setdefault(ref, []).extend(result.errors_of(i))
        state.complete = state.complete and result.parsed_whole
        for manifest in result.manifests:
            first = state.manifests.get(manifest.ref)
            if first is not None or manifest.ref in state.invalid:
                where = f" (first defined at {first.location})" if first else ""
                error = ManifestError(
                    manifest.location,
                    "metadata.name",
                    f"duplicate {manifest.kind} name {manifest.name!r}{where}",
                )
                state.errors.append(error)
                state.invalid_errors.setdefault(manifest.ref, []).append(error)
                state.manifests.pop(manifest.ref, None)
                state.invalid.add(manifest.ref)
                continue
            state.manifests[manifest.ref] = manifest

    def file_sha256(self, state: DesiredState, path: str) -> str | None:
        """sha256 of a repository file at the state's commit (cached by blob id)."""
        blob = state.files.get(path)
        if blob is None:
            return None
        digest = self._sha_cache.get(blob)
        if digest is None:
            digest = "sha256:" + hashlib.sha256(self.repo.blobs([blob])[blob]).hexdigest()
            self._sha_cache[blob] = digest
        return digest

    def file_bytes(self, state: DesiredState, path: str) -> bytes | None:
        blob = state.files.get(path)
        return None if blob is None else self.repo.blobs([blob])[blob]
