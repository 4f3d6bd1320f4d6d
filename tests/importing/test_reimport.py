"""Re-running an import keeps what the operator wrote (ruamel.yaml round-trip mode)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import GitRepo
from tests.importing.kit import copy_samples, homelab

EDITED_TOP = "# Our database: backed up nightly by restic (operator's note)\n"


def _import(repo: GitRepo, compose_file: Path) -> str:
    result = homelab("import", "compose", str(compose_file), "--repo", str(repo.path))
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_reimport_keeps_comments_key_order_and_other_resources(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    samples = copy_samples(tmp_path / "samples")
    compose_file = samples / "postgres" / "compose.yaml"
    _import(git_repo, compose_file)
    path = git_repo.path / "manifests" / "postgres.yaml"
    text = path.read_text()
    # The operator edits the comment of the db document, adds one on a key, moves
    # `image` above `containerName`, adds a policy of their own and a resource.
    head = "# imported from compose.yaml service db\n"
    assert head in text
    text = text.replace(head, EDITED_TOP)
    db_block = text[text.index(EDITED_TOP) :]
    container_line = "  containerName: postgres_db_1\n"
    image_line = "  image: local/postgres:16\n"
    assert container_line in db_block and image_line in db_block
    moved = db_block.replace(image_line, "").replace(
        container_line, image_line.rstrip("\n") + "  # pinned by hand\n" + container_line
    )
    moved = moved.replace("  policy:\n", "  policy:\n    autoApprove: true\n", 1)
    moved = moved.replace("  annotations:\n", "  annotations:\n    owner.lan/team: media\n", 1)
    text = text[: text.index(EDITED_TOP)] + moved
    text += (
        "---\n# my own file for the db's backups\napiVersion: homelab.reconciler/v1alpha1\n"
        "kind: File\nmetadata:\n  name: backup-cron\nspec:\n  path: /srv/homelab/backup.cron\n"
        "  content: '0 3 * * * restic backup'\n"
    )
    path.write_text(text)
    # The compose side changes too: a new port for adminer.
    env_file = samples / "postgres" / ".env"
    env_file.write_text(env_file.read_text().replace("19483", "19486"))
    out = _import(git_repo, compose_file)
    assert "updated   Container/postgres-adminer" in out
    assert "unchanged Container/postgres-db" in out
    after = path.read_text()
    assert EDITED_TOP in after
    assert "  image: local/postgres:16  # pinned by hand\n  containerName: postgres_db_1\n" in after
    assert "    autoApprove: true\n" in after
    assert "    owner.lan/team: media\n" in after
    assert "# my own file for the db's backups\n" in after and "name: backup-cron" in after
    assert "hostPort: 19486" in after and "hostPort: 19483" not in after
    # A third run with nothing changed rewrites nothing.
    before = path.read_bytes()
    out = _import(git_repo, compose_file)
    assert "  updated " not in out and " 0 updated," in out
    assert path.read_bytes() == before


def test_an_operator_resource_of_the_same_name_is_never_overwritten(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    samples = copy_samples(tmp_path / "samples")
    mine = (
        "# written by hand\napiVersion: homelab.reconciler/v1alpha1\nkind: Container\n"
        "metadata:\n  name: postgres-db\nspec:\n  image: local/busybox:1\n"
    )
    git_repo.write("manifests/db.yaml", mine)
    git_repo.write("manifests/postgres.yaml", mine.replace("postgres-db", "postgres-adminer"))
    result = homelab(
        "import", "compose", str(samples / "postgres/compose.yaml"), "--repo", str(git_repo.path)
    )
    assert result.returncode == 0, result.stderr
    assert "skipped: Container/postgres-db: already defined in db.yaml" in result.stderr
    assert (
        "skipped: Container/postgres-adminer: postgres.yaml has it and it was not written by an "
        "import" in result.stderr
    )
    assert (git_repo.path / "manifests/db.yaml").read_text() == mine
    text = (git_repo.path / "manifests/postgres.yaml").read_text()
    assert text.startswith(mine.replace("postgres-db", "postgres-adminer"))
    assert "name: postgres-pgdata" in text  # the rest was imported beside it
