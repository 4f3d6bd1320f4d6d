"""`homelab import compose|docker`: manifests for what a homelab already runs.

Writes into the repository's work tree (never commits): review the files,
commit them, and `homelab plan` shows the imported containers as `adopt`.
The work is done by `reconciler.importing.run`; this module prints what was
written and every warning (a compose property homelab does not run, a value
that looks like a secret, a resource left alone because someone else's
manifest defines it).
"""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.common import HomelabGroup
from reconciler.importing.run import ImportOutcome, import_compose, import_docker
from reconciler.runtime_root import resolve_repo


def _report(outcome: ImportOutcome) -> None:
    for warning in outcome.warnings:
        click.echo(f"warning: {warning}", err=True)
    report = outcome.report
    for ref in report.skipped:
        click.echo(f"skipped: {ref}", err=True)
    for label, refs in (
        ("created", report.created),
        ("updated", report.updated),
        ("unchanged", report.unchanged),
    ):
        for ref in refs:
            click.echo(f"  {label:9} {ref}")
    for rel in report.files:
        click.echo(f"wrote {outcome.folder / rel}")
    click.echo(
        f"Import: {len(report.created)} created, {len(report.updated)} updated, "
        f"{len(report.unchanged)} unchanged, {len(report.skipped)} skipped, "
        f"{len(outcome.warnings)} warning(s). Commit the files, then `homelab plan`."
    )


def _repo(flag: str | None) -> Path:
    return resolve_repo(flag)


@click.group("import", cls=HomelabGroup)
def import_() -> None:
    """Write manifests for what already runs: a compose project or an engine's containers.

    \b
    Examples:
      homelab import compose ~/stacks/jellyfin/compose.yaml --repo ~/homelab
      homelab import docker --node local --repo ~/homelab
    """


@import_.command("compose")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--project", default=None, help="Compose project name (default: the folder's).")
@click.option("--node", default="local", show_default=True, help="Node the containers run on.")
@click.option("--profile", "profiles", multiple=True, help="Compose profile to enable.")
@click.option("--repo", default=None, help="The repository (default $HOMELAB_REPO, else .).")
def compose(
    files: tuple[Path, ...],
    project: str | None,
    node: str,
    profiles: tuple[str, ...],
    repo: str | None,
) -> None:
    """Import a compose project (FILE, then -f overrides in order) as manifests.

    The file is normalised by `docker-compose config` (interpolation with
    .env, extends, profiles, every short syntax); each service becomes a
    Container (containerName = compose's container name, so it plans as
    adopt), each network and named volume a Network or Volume, all in
    <manifests>/<project>.yaml. Re-running updates what the import wrote and
    keeps your comments, key order and other resources.

    \b
    Example:
      homelab import compose compose.yaml --project media --repo ~/homelab
    """
    outcome = import_compose(
        _repo(repo), list(files), project=project, node=node, profiles=list(profiles)
    )
    _report(outcome)


@import_.command("docker")
@click.option("--node", required=True, help="The Node whose engine is read.")
@click.option("--docker-host", default=None, help="Engine URL (default: the Node's dockerHost).")
@click.option("--all", "include_stopped", is_flag=True, help="Stopped containers too.")
@click.option("--repo", default=None, help="The repository (default $HOMELAB_REPO, else .).")
def docker(node: str, docker_host: str | None, include_stopped: bool, repo: str | None) -> None:
    """Import the running containers of a node's engine as manifests.

    One file per container, <manifests>/<node>/<name>.yaml, with the networks
    and volumes they use beside them; containers homelab already manages are
    left out.

    \b
    Example:
      homelab import docker --node local --repo ~/homelab
    """
    outcome = import_docker(
        _repo(repo), node, docker_host=docker_host, include_stopped=include_stopped
    )
    _report(outcome)
