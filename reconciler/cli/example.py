"""The example repository `homelab up` creates when no `--repo` is given.

The project's `manifests/` and `compose/` folders ship inside the wheel as
`reconciler/example/` (copied by setup.py at build time); in a source
checkout they are read from the repository top. `create_example_repo`
copies them under the runtime root, points the example Node at the Docker
engine this machine uses, and commits, so the services read a real commit.
An existing example repository is kept as is: it may hold the operator's
own commits. Called by reconciler/cli/up.py.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from reconciler.atomic_files import atomic_write_bytes
from reconciler.errors import ConfigError
from reconciler.runtime_root import RuntimeRoot
from reconciler.sources.git import GitRepo

EXAMPLE_FOLDERS = ("manifests", "compose")
EXAMPLE_DIR_NAME = "example-repo"
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"


def example_source() -> Path:
    """Where the bundled example lives: inside the package, else the source checkout."""
    packaged = Path(str(resources.files("reconciler") / "example"))
    if (packaged / "manifests").is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "manifests").is_dir():
        return checkout
    raise ConfigError(
        "the example manifests are missing from this installation "
        f"(looked in {packaged} and {checkout}); give --repo PATH instead"
    )


_IDENTITY = ("user.name=homelab up", "user.email=homelab@localhost", "commit.gpgsign=false")


def _git(repo: Path, *args: str) -> None:
    GitRepo(repo).run(*args, config=_IDENTITY)


def _copy_tree(source: Path, target: Path, docker_host: str) -> None:
    for path in sorted(source.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        data = path.read_bytes()
        if path.name == "nodes.yaml" and docker_host != DEFAULT_DOCKER_HOST:
            data = data.replace(DEFAULT_DOCKER_HOST.encode(), docker_host.encode())
        atomic_write_bytes(target / path.relative_to(source), data, durable=False)


def create_example_repo(root: RuntimeRoot, docker_host: str | None = None) -> tuple[Path, bool]:
    """The example repository under `root`, created and committed on first use.

    Returns its path and whether it was created now.
    """
    repo = root.path / EXAMPLE_DIR_NAME
    if (repo / ".git").exists():
        return repo, False
    host = docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
    source = example_source()
    repo.mkdir(parents=True, exist_ok=True)
    for folder in EXAMPLE_FOLDERS:
        if (source / folder).is_dir():
            _copy_tree(source / folder, repo / folder, host)
    atomic_write_bytes(repo / "README.md", _README.encode(), durable=False)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "Example homelab created by `homelab up`")
    return repo, True


_README = """\
# My homelab (example created by `homelab up`)

Desired state lives in `manifests/*.yaml`. Only committed changes count:

    $EDITOR manifests/apps/web.yaml
    git commit -am "web: change the greeting"

The supervisor proposes an action for every change; approve it in the UI.
"""
