"""Desired state from real git repositories: commits, not the work tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.errors import GitError
from reconciler.sources import parallel as parallel_module
from reconciler.sources.blobcache import BlobCache
from reconciler.sources.git import GitSource
from reconciler.sources.manifests import FileResult
from tests.conftest import GitRepo


def file_manifest(name: str, content: str = "hello") -> str:
    return f"""\
apiVersion: homelab.reconciler/v1alpha1
kind: File
metadata:
  name: {name}
spec:
  path: /srv/homelab/{name}
  content: {content}
"""


def test_reads_the_commit_not_the_work_tree(git_repo: GitRepo) -> None:
    git_repo.write("manifests/a.yaml", file_manifest("a"))
    git_repo.commit()
    git_repo.write("manifests/a.yaml", file_manifest("a", "edited"))
    git_repo.write("manifests/b.yaml", file_manifest("b"))
    source = GitSource(git_repo.path)
    state = source.load()
    assert sorted(state.manifests) == [("File", "a")]
    assert state.manifests[("File", "a")].doc["spec"]["content"] == "hello"
    assert sorted(source.repo.dirty_paths("manifests")) == ["manifests/a.yaml", "manifests/b.yaml"]


def test_any_ref_and_recursive_yaml_and_yml(git_repo: GitRepo) -> None:
    git_repo.write("manifests/a.yaml", file_manifest("a"))
    first = git_repo.commit()
    git_repo.write("manifests/deep/er/b.yml", file_manifest("b"))
    git_repo.write("manifests/notes.txt", "not a manifest")
    git_repo.write("elsewhere/c.yaml", file_manifest("c"))
    git_repo.commit()
    source = GitSource(git_repo.path)
    assert sorted(n for _, n in source.load().manifests) == ["a", "b"]
    assert sorted(n for _, n in source.load(first).manifests) == ["a"]
    assert sorted(n for _, n in GitSource(git_repo.path, "elsewhere").load().manifests) == ["c"]


def test_duplicate_name_across_files_is_an_error_and_others_load(git_repo: GitRepo) -> None:
    git_repo.write("manifests/a.yaml", file_manifest("same"))
    git_repo.write("manifests/b.yaml", file_manifest("same", "other"))
    git_repo.write("manifests/c.yaml", file_manifest("fine"))
    git_repo.commit()
    state = GitSource(git_repo.path).load()
    assert [str(e) for e in state.errors] == [
        "manifests/b.yaml:4:9: metadata.name: duplicate File name 'same' "
        "(first defined at manifests/a.yaml:4:9)"
    ]
    assert sorted(state.manifests) == [("File", "fine")]
    assert ("File", "same") in state.invalid


def test_new_commit_reparses_only_changed_files(
    git_repo: GitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(5):
        git_repo.write(f"manifests/f{i}.yaml", file_manifest(f"f{i}"))
    git_repo.commit()
    parsed: list[str] = []
    real = parallel_module.parse_file

    def counting(path: str, text: bytes) -> FileResult:
        parsed.append(path)
        return real(path, text)

    monkeypatch.setattr(parallel_module, "parse_file", counting)
    source = GitSource(git_repo.path, cache=BlobCache(tmp_path / "cache"))
    source.load()
    assert len(parsed) == 5
    git_repo.write("manifests/f3.yaml", file_manifest("f3", "changed"))
    git_repo.commit()
    parsed.clear()
    state = source.load()
    assert parsed == ["manifests/f3.yaml"]
    assert state.manifests[("File", "f3")].doc["spec"]["content"] == "changed"
    # a fresh process with the persisted cache parses only what was not persisted
    # yet: one new entry waits for a batch instead of rewriting the whole cache
    parsed.clear()
    again = GitSource(git_repo.path, cache=BlobCache(tmp_path / "cache")).load()
    assert parsed == ["manifests/f3.yaml"]
    assert again.manifests == state.manifests


def test_damaged_cache_file_only_costs_a_reparse(git_repo: GitRepo, tmp_path: Path) -> None:
    git_repo.write("manifests/a.yaml", file_manifest("a"))
    git_repo.commit()
    folder = tmp_path / "cache"
    GitSource(git_repo.path, cache=BlobCache(folder)).load()
    (folder / "manifests-v1.msgpack").write_bytes(b"\x00garbage")
    state = GitSource(git_repo.path, cache=BlobCache(folder)).load()
    assert sorted(state.manifests) == [("File", "a")]


def test_missing_manifests_folder_is_reported(git_repo: GitRepo) -> None:
    git_repo.write("README", "nothing here")
    git_repo.commit()
    state = GitSource(git_repo.path).load()
    assert [e.message for e in state.errors] == [
        f"no manifests folder 'manifests' at commit {git_repo.head[:12]}"
    ]
    assert state.complete is False


def test_not_a_repository_and_bad_ref_are_clear_errors(tmp_path: Path, git_repo: GitRepo) -> None:
    with pytest.raises(GitError, match="is not a git repository with a commit yet"):
        GitSource(tmp_path).load()
    git_repo.write("manifests/a.yaml", file_manifest("a"))
    git_repo.commit()
    with pytest.raises(GitError, match="'nope' is not a commit"):
        GitSource(git_repo.path).load("nope")


def test_manifests_path_from_homelab_yaml_is_followed_without_a_flag(git_repo: GitRepo) -> None:
    git_repo.write("infra/a.yaml", file_manifest("a"))
    git_repo.write("manifests/b.yaml", file_manifest("b"))
    git_repo.write(
        "homelab.yaml",
        "apiVersion: homelab.reconciler/v1alpha1\nkind: RepositoryConfig\nmanifestsPath: infra\n",
    )
    git_repo.commit()
    source = GitSource(git_repo.path)
    assert sorted(n for _, n in source.load().manifests) == ["a"]
    assert source.path == "infra"
    # an explicit path (--path) wins over the repository's setting
    assert sorted(n for _, n in GitSource(git_repo.path, "manifests").load().manifests) == ["b"]
