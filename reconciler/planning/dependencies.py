"""`dependsOn` across resources: checked at load, plan order, what a delete waits for.

`dependency_problems` checks every manifest's `dependsOn` against the whole
commit: a target that is no resource of the commit, a `condition: healthy`
on a target that cannot report health (not a Container, or a Container
without a healthcheck), and cycles (each member of a cycle gets an error
naming the whole cycle, `Container/a -> Container/b -> Container/a`). Each
error is located at its `dependsOn` entry (file:line:column: the manifest's
file is parsed again for the position, only when there is an error).
`order_changes` sorts a plan's changes so that a resource comes after what
it depends on (its `dependsOn`, and implicitly the Networks and Volumes of
the commit that its spec attaches or mounts by engine name; topological,
ties keep the planner's order) and a delete
comes after the deletes and changes of the resources that use it (the
reverse: the container before the network it is attached to), and says on
each change what it comes after (`Change.after`). `uses` names what a spec
refers to by engine name (a Container's networks and named volumes), which
orders deletes whose manifests are gone. Pure but for reading the file of
an erroneous manifest; used by `reconciler.planning.desired`, `compute_plan`
and the executor's dependency gate.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Mapping
from typing import Any

from reconciler.diff import Change
from reconciler.errors import Location, ManifestError
from reconciler.resources.key import ResourceKey
from reconciler.resources.kinds import KINDS
from reconciler.sources.git import DesiredState, GitSource
from reconciler.sources.manifests import Manifest
from reconciler.sources.yamlload import YamlDoc, load_documents, locate

HEALTHY = "healthy"
APPLIED = "applied"


def parse_ref(text: str) -> ResourceKey:
    kind, _, name = text.partition("/")
    return ResourceKey(kind, name)


def declared(doc: Mapping[str, Any] | None) -> list[tuple[ResourceKey, str]]:
    """The `dependsOn` entries of a validated manifest document: (target, condition)."""
    spec = (doc or {}).get("spec") or {}
    out = []
    for entry in spec.get("dependsOn") or ():
        if isinstance(entry, str):
            out.append((parse_ref(entry), APPLIED))
        elif isinstance(entry, dict) and isinstance(entry.get("resource"), str):
            out.append((parse_ref(entry["resource"]), str(entry.get("condition") or APPLIED)))
    return out


def shown(target: ResourceKey, condition: str) -> str:
    """`Container/db` or `Container/db (healthy)`: how plans and waits name a dependency."""
    text = f"{target.kind}/{target.name}"
    return f"{text} (healthy)" if condition == HEALTHY else text


def _has_healthcheck(manifest: Manifest) -> bool:
    check = (manifest.doc.get("spec") or {}).get("healthcheck")
    return isinstance(check, dict) and not check.get("disable")


def _by_name_position(path: str, text: bytes) -> dict[Location, YamlDoc]:
    """A file's documents keyed by where their `metadata.name` is (`Manifest.location`)."""
    docs, _errors = load_documents(path, text)
    return {locate(path, doc.node, ("metadata", "name")): doc for doc in docs}


class _Errors:
    """Collects located errors per resource, locating entries lazily."""

    def __init__(self, source: GitSource, state: DesiredState) -> None:
        self.source, self.state = source, state
        self.found: dict[ResourceKey, list[ManifestError]] = {}
        self._where: dict[ResourceKey, list[Location]] = {}
        self._files: dict[str, dict[Location, YamlDoc]] = {}  # each erroneous file parsed once

    def _docs(self, path: str) -> dict[Location, YamlDoc]:
        docs = self._files.get(path)
        if docs is None:
            text = self.source.file_bytes(self.state, path)
            docs = self._files[path] = _by_name_position(path, text) if text is not None else {}
        return docs

    def add(self, ref: ResourceKey, index: int, message: str) -> None:
        manifest = self.state.manifests[ref]
        if ref not in self._where:
            doc = self._docs(manifest.location.path).get(manifest.location)
            count = len(declared(manifest.doc))
            path = manifest.location.path
            self._where[ref] = (
                [locate(path, doc.node, ("spec", "dependsOn", i)) for i in range(count)]
                if doc is not None
                else []
            )
        where = self._where[ref]
        location = where[index] if index < len(where) else manifest.location
        error = ManifestError(location, f"spec.dependsOn[{index}]", message)
        self.found.setdefault(ref, []).append(error)


def dependency_problems(
    source: GitSource, state: DesiredState
) -> dict[ResourceKey, list[ManifestError]]:
    """Located `dependsOn` errors of every manifest of `state` (memoized per state)."""
    memo = source.derived.get("dependencies")
    if memo is not None and memo[0] is state:
        return memo[1]  # type: ignore[no-any-return]
    errors = _Errors(source, state)
    graph: dict[ResourceKey, list[tuple[ResourceKey, int]]] = {}
    for ref, manifest in state.manifests.items():
        for index, (target, condition) in enumerate(declared(manifest.doc)):
            problem = _entry_problem(state, ref, target, condition)
            if problem:
                errors.add(ref, index, problem)
            elif target in state.manifests:
                graph.setdefault(ref, []).append((target, index))
    for cycle in _cycles(graph):
        for i, member in enumerate(cycle[:-1]):
            rotated = [*cycle[i:-1], *cycle[:i], member]
            text = _cycle_text(rotated)
            index = next(ix for t, ix in graph[member] if t == cycle[i + 1])
            errors.add(member, index, f"dependency cycle: {text}")
    for found in errors.found.values():
        found.sort(key=lambda e: (e.location.line, e.location.column))
    source.derived["dependencies"] = (state, errors.found)
    return errors.found


CYCLE_SHOWN = 12  # a longer cycle is named by its first and last members


def _cycle_text(cycle: list[ResourceKey]) -> str:
    names = [f"{r.kind}/{r.name}" for r in cycle]
    if len(names) > CYCLE_SHOWN:
        names = [*names[:10], f"... ({len(names) - 12} more)", *names[-2:]]
    return " -> ".join(names)


def _entry_problem(
    state: DesiredState, ref: ResourceKey, target: ResourceKey, condition: str
) -> str | None:
    label = f"{target.kind}/{target.name}"
    if target.kind not in KINDS or not KINDS[target.kind].APPLIED:
        applied = ", ".join(k for k, m in KINDS.items() if m.APPLIED)
        return f"{label}: {target.kind!r} is not a kind that can be depended on ({applied})"
    if target == ref:
        return f"dependency cycle: {label} -> {label}"
    if target not in state.manifests and target not in state.invalid:
        return f"{label} is not defined in this commit"
    if condition == HEALTHY:
        if target.kind != "Container":
            return f"{label}: condition healthy needs a Container (a {target.kind} has no health)"
        manifest = state.manifests.get(target)
        if manifest is not None and not _has_healthcheck(manifest):
            return f"{label}: condition healthy needs a healthcheck on {label}"
    return None


def _cycles(graph: Mapping[ResourceKey, list[tuple[ResourceKey, int]]]) -> list[list[ResourceKey]]:
    """One cycle per strongly connected component of more than one resource.

    Each cycle is a list of its members that ends with its first again.
    Tarjan's algorithm, iterative (a long chain must not hit the recursion limit).
    """
    index: dict[ResourceKey, int] = {}
    low: dict[ResourceKey, int] = {}
    on_stack: set[ResourceKey] = set()
    stack: list[ResourceKey] = []
    components: list[list[ResourceKey]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, 0)]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, i = work[-1]
            edges = graph.get(node, [])
            if i < len(edges):
                work[-1] = (node, i + 1)
                nxt = edges[i][0]
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                members = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    members.append(top)
                    if top == node:
                        break
                if len(members) > 1:
                    components.append(members)
    return [_cycle_in(graph, set(members)) for members in components]


def _cycle_in(
    graph: Mapping[ResourceKey, list[tuple[ResourceKey, int]]], members: set[ResourceKey]
) -> list[ResourceKey]:
    """A simple cycle through the smallest member, inside one component."""
    first = min(members)
    parent: dict[ResourceKey, ResourceKey] = {}
    queue = [first]
    while queue:  # breadth first: the shortest way back to `first`
        node = queue.pop(0)
        for nxt, _ in graph.get(node, []):
            if nxt not in members:
                continue
            if nxt == first:
                path = [node]
                while path[-1] != first:
                    path.append(parent[path[-1]])
                return [*reversed(path), first]
            if nxt not in parent:
                parent[nxt] = node
                queue.append(nxt)
    return [first, first]  # unreachable: a component of two or more has a cycle


def engine_name(kind: str, name: str, spec: Mapping[str, Any] | None) -> str:
    """The name the engine knows a Network or Volume by (`spec.name`, default metadata.name)."""
    value = (spec or {}).get("name")
    return value if isinstance(value, str) and value else name


def uses(kind: str, spec: Mapping[str, Any] | None) -> set[tuple[str, str]]:
    """(kind, engine name) of the Networks and Volumes a Container's spec refers to."""
    if kind != "Container" or not spec:
        return set()
    out: set[tuple[str, str]] = set()
    for attachment in spec.get("networks") or ():
        net = attachment.get("network") if isinstance(attachment, dict) else attachment
        if isinstance(net, str):
            out.add(("Network", net))
    for volume in spec.get("volumes") or ():
        if not isinstance(volume, dict):
            continue
        named = volume.get("volume") or volume.get("source")  # a source not a path: a volume
        if isinstance(named, str) and named and not named.startswith("/"):
            out.add(("Volume", named))
    return out


class _Index:
    """What the changes of one plan refer to, for ordering them."""

    def __init__(self, changes: list[Change], manifests: Mapping[ResourceKey, Manifest]) -> None:
        self.manifests = manifests
        # (kind, engine name) -> the desired Network/Volume of that name
        self.named: dict[tuple[str, str], ResourceKey] = {}
        for ref, manifest in manifests.items():
            if ref.kind in ("Network", "Volume"):
                spec = manifest.doc.get("spec") or {}
                self.named[(ref.kind, engine_name(ref.kind, ref.name, spec))] = ref
        # (kind, engine name) or a ref -> the changes whose resource uses or names it
        self.users: dict[object, list[ResourceKey]] = {}
        for change in changes:
            for used in uses(change.kind, change.observed):
                self.users.setdefault(used, []).append(change.ref)
            for target, _ in self.declared(change.ref):
                self.users.setdefault(target, []).append(change.ref)

    def declared(self, ref: ResourceKey) -> list[tuple[ResourceKey, str]]:
        manifest = self.manifests.get(ref)
        return declared(manifest.doc) if manifest is not None else []

    def after(self, change: Change) -> list[tuple[ResourceKey, str]]:
        """What `change` comes after: its dependsOn and the Networks/Volumes its spec
        uses (implicit); for a delete, the resources that use or name what it deletes."""
        if change.operation == "delete":
            mine = (change.kind, engine_name(change.kind, change.name, change.observed))
            users = {*self.users.get(mine, ()), *self.users.get(change.ref, ())} - {change.ref}
            return [(u, APPLIED) for u in sorted(users)]
        deps = self.declared(change.ref)
        named = {t for t, _ in deps}
        for used in sorted(uses(change.kind, change.desired)):
            ref = self.named.get(used)
            if ref is not None and ref not in named and ref != change.ref:
                deps.append((ref, APPLIED))
                named.add(ref)
        return deps


def parse_after(text: str) -> tuple[ResourceKey, str]:
    """The inverse of `shown`: "Container/db (healthy)" -> (Container/db, healthy)."""
    if text.endswith(" (healthy)"):
        return parse_ref(text.removesuffix(" (healthy)")), HEALTHY
    return parse_ref(text), APPLIED


def order_changes(changes: list[Change], manifests: Mapping[ResourceKey, Manifest]) -> list[Change]:
    """`changes` in dependency order (ties keep their order), each with its `after`."""
    position = {c.ref: i for i, c in enumerate(changes)}
    follows: dict[int, set[int]] = {i: set() for i in range(len(changes))}
    out_changes = list(changes)
    index = _Index(changes, manifests)
    for i, change in enumerate(changes):
        names = index.after(change)
        follows[i] = {position[r] for r, _ in names if r in position and position[r] != i}
        if names:
            after = tuple(shown(t, cond) for t, cond in names)
            out_changes[i] = dataclasses.replace(change, after=after)
    waiting = {i: len(f) for i, f in follows.items()}
    released: dict[int, list[int]] = {}
    for i, before in follows.items():
        for j in before:
            released.setdefault(j, []).append(i)
    ready = [i for i, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for k in released.get(i, ()):
            waiting[k] -= 1
            if waiting[k] == 0:
                heapq.heappush(ready, k)
    if len(order) < len(changes):  # a cycle the checks let through: keep the rest as it was
        order += [i for i in range(len(changes)) if i not in set(order)]
    return [out_changes[i] for i in order]
