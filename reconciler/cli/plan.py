"""`homelab plan`: the terraform-style diff of git against the world."""

from __future__ import annotations

import click
import orjson

from reconciler.cli.common import (
    cache_dir,
    get_repo,
    get_root,
    repo_option,
    root_option,
    use_colour,
)
from reconciler.diff import plan_to_json, render_text
from reconciler.planning import compute_plan
from reconciler.sources.blobcache import BlobCache
from reconciler.sources.git import GitSource


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
def plan(
    repo: str | None,
    root: str | None,
    ref: str | None,
    path: str | None,
    as_json: bool,
    detailed_exitcode: bool,
) -> None:
    """Show what would change: + create, ~ update, -/+ replace, - delete.

    Desired state comes from a commit; observed state from DIR/world/. An
    empty or missing world means everything is to be created.

    \b
    Example:
      homelab plan --repo ~/homelab --root /opt/homelab --detailed-exitcode
    """
    repo_path = get_repo(repo)
    runtime = get_root(root)
    source = GitSource(repo_path, path, BlobCache(cache_dir(runtime)))
    result = compute_plan(source, runtime, ref)
    for error in result.errors:
        click.echo(str(error), err=True)
    if as_json:
        doc = plan_to_json(result.plan)
        doc["errors"] = [e.to_json() for e in result.errors]
        click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(render_text(result.plan, colour=use_colour()))
        if result.errors:
            click.echo(
                f"{len(result.errors)} manifest error(s): "
                "those resources are left out of the plan.",
                err=True,
            )
    if result.errors:
        raise SystemExit(1)
    if detailed_exitcode and not result.plan.empty:
        raise SystemExit(2)
