"""`homelab plan`: the terraform-style diff of git against the world.

With `--refresh` every node is read once first (`reconciler.observer.refresh`)
and the plan is made against that fresh, in-memory world; the event log and
the world documents are left untouched.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Any

import click
import orjson

from reconciler.cli.common import (
    cache_dir,
    get_remote,
    get_repo,
    get_root,
    repo_option,
    root_option,
    use_colour,
)
from reconciler.diff import plan_to_json, render_text
from reconciler.planning import PlanResult, compute_plan
from reconciler.runtime_root import RuntimeRoot
from reconciler.sources.blobcache import BlobCache
from reconciler.sources.follow import commit_in_force, read_status
from reconciler.sources.git import DesiredState, GitSource
from reconciler.sources.signatures import GateDecision, SignedCommitGate

if TYPE_CHECKING:
    from reconciler.observer.refresh import RefreshResult


def _progress(step: str) -> None:
    click.echo(f"\r\033[KRefreshing {step}...", err=True, nl=False)


def _refresh(
    runtime: RuntimeRoot, state: DesiredState, *, show_progress: bool
) -> tuple[RefreshResult, float]:
    """The refreshed world, and how long reading it took."""
    from reconciler.observer.refresh import refresh_world  # imports the Docker SDK

    t0 = time.perf_counter()
    try:
        refreshed = refresh_world(runtime, state, progress=_progress if show_progress else None)
    finally:
        if show_progress:
            click.echo("\r\033[K", err=True, nl=False)
    return refreshed, time.perf_counter() - t0


def _refresh_report(refreshed: RefreshResult, seconds: float) -> list[str]:
    """What the refresh saw, printed above the plan."""
    ready = sum(1 for n in refreshed.nodes if n.ready)
    lines = [
        f"Refreshed {ready} of {len(refreshed.nodes)} node(s) in {seconds:.2f} s: "
        f"{len(refreshed.drift)} observation(s) changed since the world was last written."
    ]
    if refreshed.drift:
        lines.append("Changed outside of homelab (or not yet observed):")
        lines.extend(f"  {d.ref.kind}/{d.ref.name}: {d.what}" for d in refreshed.drift)
    lines.append("")
    return lines


def _refresh_json(refreshed: RefreshResult, seconds: float) -> dict[str, Any]:
    return {
        "seconds": round(seconds, 3),
        "nodes": [
            {"name": n.name, "ready": n.ready, "message": n.message, "seconds": round(n.seconds, 3)}
            for n in refreshed.nodes
        ],
        "drift": [
            {"kind": d.ref.kind, "name": d.ref.name, "what": d.what} for d in refreshed.drift
        ],
        "notRefreshed": [
            {"kind": ref.kind, "name": ref.name, "reason": why}
            for ref, why in refreshed.not_refreshed.items()
        ],
    }


def _note_invalid(result: PlanResult) -> None:
    """Invalid resources get no change: say so, with where, as the supervisor does."""
    for ref in sorted(result.invalid):
        result.plan.notes.append(f"{ref.kind}/{ref.name}: {result.invalid_at(ref)}; not planned")


def _which_repo(flag: str | None) -> str:
    """How the repository was chosen, for the line that names it."""
    if flag:
        return "--repo"
    return "$HOMELAB_REPO" if os.environ.get("HOMELAB_REPO") else "the current folder"


def _note_not_refreshed(result: PlanResult, refreshed: RefreshResult) -> None:
    for ref, why in refreshed.not_refreshed.items():
        result.plan.notes.append(f"{ref.kind}/{ref.name}: not refreshed ({why})")


def _signed_commit(
    runtime: RuntimeRoot, source: GitSource, ref: str | None, require: bool, as_json: bool
) -> GateDecision:
    """The commit signed commits keep in force for `ref`; exits 1 when there is none."""
    gate = SignedCommitGate(runtime, source.repo.path, require=True if require else None)
    decision = gate.decide(source.repo.resolve(ref), record=False)
    if decision.held:
        click.echo(f"signed commits: {decision.held}", err=True)
    if decision.commit is None:
        if as_json:
            doc = {"changes": [], "errors": [], "signedCommits": decision.to_json()}
            click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        raise SystemExit(1)
    if decision.required and not as_json:
        signer = f", signed by {decision.signer}" if decision.signer else ""
        click.echo(f"Signed commits required: planning commit {decision.commit[:12]}{signer}.")
        if decision.held:
            click.echo(f"Held back: {decision.held}")
        click.echo("")
    return decision


SOURCE_KEYS = (
    "url",
    "branch",
    "ready",
    "error",
    "commit",
    "lastFetchAt",
    "lastSuccessAt",
    "lastForcePush",
)


def source_json(doc: dict[str, Any]) -> dict[str, Any]:
    """The followed remote as `homelab plan --json` shows it (the status file's public part)."""
    return {k: doc.get(k) for k in SOURCE_KEYS}


def source_line(doc: dict[str, Any]) -> str:
    """One or two lines above the plan: the remote, its commit and SourceReady."""
    commit = str(doc.get("commit") or "none")[:12]
    head = f"Source {doc.get('url')} ({doc.get('branch') or 'HEAD'}) at {commit}, "
    head += f"fetched {doc.get('lastSuccessAt') or 'never'}: "
    if doc.get("ready") is False:
        head += f"SourceReady=False: {doc.get('error')} (deletes are withheld)"
    else:
        head += "SourceReady=True"
    forced = doc.get("lastForcePush")
    if isinstance(forced, dict):
        head += (
            f"\nHistory rewritten (force push): {str(forced.get('from'))[:12]} -> "
            f"{str(forced.get('to'))[:12]}"
        )
    return head + "\n"


def _show(
    result: PlanResult,
    as_json: bool,
    refreshed: RefreshResult | None,
    seconds: float,
    source_doc: dict[str, Any] | None,
    signed: GateDecision,
) -> None:
    if as_json:
        doc = plan_to_json(result.plan)
        doc["errors"] = [e.to_json() for e in result.errors]
        if signed.required:
            doc["signedCommits"] = signed.to_json()
        if source_doc is not None:
            doc["source"] = source_json(source_doc)
        if refreshed is not None:
            doc["refresh"] = _refresh_json(refreshed, seconds)
        click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
    else:
        if source_doc is not None:
            click.echo(source_line(source_doc))
        if refreshed is not None:
            click.echo("\n".join(_refresh_report(refreshed, seconds)))
        click.echo(render_text(result.plan, colour=use_colour()))
        if result.errors:
            click.echo(
                f"{len(result.errors)} manifest error(s): "
                "those resources are left out of the plan.",
                err=True,
            )


@click.command()
@repo_option
@root_option
@click.option(
    "--ref", default=None, help="Commit, branch or tag (default: the current branch tip)."
)
@click.option("--path", "path", default=None, help="Manifests folder in the repository.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON (with patches).")
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there are no changes, 2 when there are, 1 on error.",
)
@click.option(
    "--refresh",
    is_flag=True,
    help="Read every node (engines, files) once before planning; writes nothing.",
)
@click.option(
    "--require-signed-commits",
    "require_signed",
    is_flag=True,
    help="Plan only a commit signed by a key under ROOT/signing/ (also: "
    "$HOMELAB_REQUIRE_SIGNED_COMMITS, requireSignedCommits in homelab.yaml).",
)
def plan(
    repo: str | None,
    root: str | None,
    ref: str | None,
    path: str | None,
    as_json: bool,
    detailed_exitcode: bool,
    refresh: bool,
    require_signed: bool,
) -> None:
    """Show what would change: + create, ~ update, -/+ replace, - delete.

    Desired state comes from a commit; observed state from DIR/world/. An
    empty or missing world means everything is to be created. With
    --refresh the nodes of the commit are read first (no service needs to
    run) and the plan is made against what they hold now; a node that
    cannot be reached is reported, its resources are marked "not
    refreshed" (planned from their last observation) and the exit status
    is 1, as for manifest errors. When signed commits are required, a tip
    not signed by an allowed key is held back: the last verified commit is
    planned instead and the reason printed (exit 1 when none was verified).

    \b
    Example:
      homelab plan --repo ~/homelab --root /opt/homelab --detailed-exitcode
      homelab plan --refresh
    """
    runtime = get_root(root)
    repo_path = get_repo(repo, fetch="always", root=runtime)
    remote = get_remote()
    if repo is None and not as_json:  # chosen implicitly: say which one is planned
        click.echo(f"Planning repository {repo_path} (from {_which_repo(repo)})", err=True)
    source = GitSource(repo_path, path, BlobCache(cache_dir(runtime)))
    if ref is None:
        ref = commit_in_force(runtime, repo_path, None)
    source_doc = read_status(runtime) if remote is not None else None
    signed = _signed_commit(runtime, source, ref, require_signed, as_json)
    ref = signed.commit
    refreshed: RefreshResult | None = None
    seconds = 0.0
    if refresh:
        state = source.load(ref)
        tty = sys.stderr.isatty() and not as_json
        refreshed, seconds = _refresh(runtime, state, show_progress=tty)
        result = compute_plan(source, runtime, state=state, world=refreshed.world)
        _note_not_refreshed(result, refreshed)
        for node in refreshed.unreachable:
            click.echo(
                f"error: node {node.name} could not be read ({node.message}); "
                "its resources are not refreshed",
                err=True,
            )
    else:
        result = compute_plan(source, runtime, ref)
    _note_invalid(result)
    for error in result.errors:
        click.echo(str(error), err=True)
    _show(result, as_json, refreshed, seconds, source_doc, signed)
    if result.errors or (refreshed is not None and refreshed.unreachable):
        raise SystemExit(1)
    if detailed_exitcode and not result.plan.empty:
        raise SystemExit(2)
