"""`homelab validate`: check every manifest at a commit, list every error.

Besides the manifests and homelab.yaml's own fields, it asks Apprise about
each notification URL and checks that each named secret exists under the
runtime root (reconciler/notifier/targets.py), all as located errors.
"""

from __future__ import annotations

import click

from reconciler.cli.common import cache_dir, get_repo, get_root, repo_option, root_option
from reconciler.errors import ManifestError
from reconciler.planning import desired_specs
from reconciler.resources.repo import REPO_CONFIG_FILE
from reconciler.runtime_root import RuntimeRoot
from reconciler.sources.blobcache import BlobCache
from reconciler.sources.git import DesiredState, GitSource


def _notification_errors(
    source: GitSource, state: DesiredState, runtime: RuntimeRoot
) -> list[ManifestError]:
    text = source.file_bytes(state, REPO_CONFIG_FILE)
    if text is None or b"notifications" not in text:
        return []
    from reconciler.notifier.targets import config_problems

    return config_problems(text, runtime.secrets, state.errors)


@click.command()
@repo_option
@root_option
@click.option(
    "--ref", default=None, help="Commit, branch or tag (default: the current branch tip)."
)
@click.option("--path", "path", default=None, help="Manifests folder in the repository.")
def validate(repo: str | None, root: str | None, ref: str | None, path: str | None) -> None:
    """Validate the manifests of a commit: exit 0 when all are valid, 1 otherwise.

    Manifests are read from the commit, never from the work tree.

    \b
    Example:
      homelab validate --repo ~/homelab --ref main
    """
    runtime = get_root(root)
    repo_path = get_repo(repo, fetch="always", root=runtime)
    source = GitSource(repo_path, path, BlobCache(cache_dir(runtime)))
    state = source.load(ref)
    _desired, errors, invalid = desired_specs(source, state, runtime)
    all_errors = [*state.errors, *errors, *_notification_errors(source, state, runtime)]
    for error in all_errors:
        click.echo(str(error), err=True)
    dirty = source.repo.dirty_paths(source.path) if ref is None else []
    if dirty:
        click.echo(
            f"note: {len(dirty)} uncommitted change(s) under {source.path}/ are ignored "
            f"(commit them to validate them): {', '.join(dirty[:5])}",
            err=True,
        )
    count = len(state.manifests)
    if all_errors:
        valid = len(state.manifests.keys() - invalid)  # a resource may have several errors
        click.echo(
            f"{len(all_errors)} error(s); {valid} valid resource(s) at commit {state.commit[:12]}",
            err=True,
        )
        raise SystemExit(1)
    click.echo(f"OK: {count} resource(s) valid at commit {state.commit[:12]}")
