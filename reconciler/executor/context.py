"""What the executor knows about an action's world: desired tip, world basis, node.

`DesiredView` loads the desired state at the commit in force (the tip, or
the last verified commit while signed commits hold the tip back; through the git
source and the planner's `desired_specs`, so the executor compares exactly
what the supervisor planned with), reads the world document's basis, and
builds the `ApplyContext` a driver gets: the node (from the Node manifest at
the action's commit, or the implicit `local` node = $DOCKER_HOST or the
default socket), readers for repository files at the desired commit and for
secrets, and the guard-rail allowance. The stale-plan decision itself is
`reconciler.planning.stale_reason`. Called by `reconciler.executor.action_runner`.
"""

from __future__ import annotations

import os

from reconciler.drivers.base import (
    DEFAULT_ALLOWED_ROOTS,
    LOCAL_DOCKER_HOST,
    ApplyContext,
    DriverSettings,
    NodeInfo,
)
from reconciler.errors import GitError, PermanentError, TemporaryError
from reconciler.planning import Tip, desired_specs
from reconciler.queue.action import Action
from reconciler.resources.key import ResourceKey
from reconciler.runtime_root import RuntimeRoot
from reconciler.sources.follow import commit_in_force
from reconciler.sources.git import DesiredState, GitSource
from reconciler.sources.resolver import CommitResolver
from reconciler.sources.signatures import SignedCommitGate
from reconciler.world import read_world_doc, world_path


class DesiredView:
    """Desired and observed facts for the executor's checks, read fresh each time."""

    def __init__(
        self,
        source: GitSource,
        root: RuntimeRoot,
        ref: str | None = None,
        signatures: SignedCommitGate | None = None,
    ) -> None:
        self.source = source
        self.root = root
        self.ref = ref
        self.signatures = signatures or SignedCommitGate(root, source.repo.path)

    def desired_commit(self) -> str:
        """The commit in force: the tip, unless signed commits hold it back."""
        tip = commit_in_force(self.root, self.source.repo.path, self.ref)
        decision = self.signatures.decide(tip, record=False)
        if decision.commit is None:
            raise TemporaryError(f"signed commits: {decision.held}")
        return decision.commit

    def load_desired(self) -> DesiredState:
        return self.source.load(self.desired_commit())

    def tip(self) -> Tip:
        try:
            state = self.load_desired()
            desired, _errors, invalid = desired_specs(self.source, state, self.root)
        except GitError as exc:
            raise TemporaryError(f"cannot read the desired state: {exc}") from exc
        return Tip(state.commit, desired, invalid, state.config)

    def world_basis(self, kind: str, name: str) -> str | None:
        """The world's `status.basis`: "" when missing, None when unreadable."""
        try:
            doc = read_world_doc(world_path(self.root, kind, name))
        except FileNotFoundError:
            return ""
        except (OSError, ValueError):  # InvalidWorldDoc is a ValueError
            return None
        return doc.basis

    def _state_at(self, commit: str) -> DesiredState:
        try:
            return self.source.load(commit)
        except GitError as exc:
            raise PermanentError(f"commit {commit[:12]} cannot be read: {exc}") from exc

    def node(self, state: DesiredState, name: str) -> NodeInfo:
        manifest = state.manifests.get(ResourceKey("Node", name))
        if manifest is not None:
            spec = manifest.doc.get("spec") or {}
            return NodeInfo(
                name,
                str(spec.get("dockerHost") or LOCAL_DOCKER_HOST),
                tuple(spec.get("allowedRoots") or DEFAULT_ALLOWED_ROOTS),
            )
        if name == "local":
            host = os.environ.get("DOCKER_HOST") or LOCAL_DOCKER_HOST
            return NodeInfo("local", host, DEFAULT_ALLOWED_ROOTS)
        raise PermanentError(f"Node {name!r} is not defined at commit {state.commit[:12]}")

    def context(self, action: Action, tip: Tip, settings: DriverSettings) -> ApplyContext:
        state = self._state_at(str(action.commit or tip.commit))
        spec = action.desired or action.observed or {}
        node = self.node(state, str(spec.get("node") or "local"))
        resolver = CommitResolver(self.source, state, self.root.secrets)
        return ApplyContext(
            action=action,
            node=node,
            root=self.root,
            repo_file=lambda path: self.source.file_bytes(state, path),
            secret_file=resolver.secret_bytes,
            settings=settings,
            allow_dangerous=action.name in tip.config.allowDangerous,
        )
