"""Scalars the YAML loader converts: each is a value or a located error, never a crash.

The adversarial run stopped all reconciling with `content: 0b_`: the YAML 1.1
int resolver matched it, the conversion raised ValueError, and nothing caught
it. Every case here is a File manifest whose `content` is the bad scalar, next
to a valid resource in the same file and in another file.
"""

from __future__ import annotations

import pytest

from reconciler.planning import compute_plan
from reconciler.sources.git import GitSource
from reconciler.sources.manifests import parse_file
from reconciler.sources.yamlload import load_documents
from tests.conftest import GitRepo

BAD = """\
apiVersion: homelab.reconciler/v1alpha1
kind: File
metadata:
  name: bad
spec:
  path: /srv/homelab/bad
  content: {value}
---
apiVersion: homelab.reconciler/v1alpha1
kind: File
metadata:
  name: neighbour
spec:
  path: /srv/homelab/neighbour
  content: fine
"""
GOOD = BAD.replace("bad", "good").replace("neighbour", "other").replace("{value}", "ok")

BAD_SCALARS = [
    "0b_",
    "0x_",
    "+0b_",
    "-0x__",
    "!!int 0b",
    "1" * 5000,
    "-" + "9" * 4301,
    "2" * 5000 + ":30",
    "!!int abc",
    "!!int ''",
    "!!int 0o_",
    "!!float abc",
    "!!float ''",
    "!!float 1e",
    "!!bool maybe",
    "!!bool ''",
]


@pytest.mark.parametrize("value", BAD_SCALARS, ids=lambda v: v[:12])
def test_a_bad_scalar_is_a_located_error_and_its_resource_is_invalid(value: str) -> None:
    result = parse_file("m.yaml", BAD.format(value=value).encode())
    [error] = [str(e) for e in result.errors]
    assert error.startswith("m.yaml:7:12: spec.content: "), error
    assert "quote it" in error
    assert ("File", "bad") in result.invalid
    assert [m.name for m in result.manifests] == ["neighbour"]


def test_numbers_that_convert_are_values() -> None:
    text = b"a: 0b101\nb: 0x1F\nc: 1_000\nd: !!float 1_5\ne: 1:30\nf: !!int '7'\ng: 0644\n"
    [doc], errors = load_documents("v.yaml", text)
    assert errors == [] and doc.errors == []
    assert doc.data == {"a": 5, "b": 31, "c": 1000, "d": 15.0, "e": 90, "f": 7, "g": "0644"}


def test_a_bad_scalar_in_one_file_leaves_the_other_files_planning(git_repo: GitRepo) -> None:
    git_repo.write("manifests/bad.yaml", BAD.format(value="0b_"))
    git_repo.write("manifests/good.yaml", GOOD)
    git_repo.commit()
    result = compute_plan(GitSource(git_repo.path), None)
    assert [str(e) for e in result.errors] == [
        "manifests/bad.yaml:7:12: spec.content: '0b_' is not a valid integer (YAML 1.1 reads "
        "a plain 0b…, 0x…, 0… or digits as a number); quote it to keep it as text"
    ]
    assert ("File", "bad") in result.invalid
    planned = {c.ref for c in result.plan.changes}
    assert planned == {("File", "neighbour"), ("File", "good"), ("File", "other")}


def test_a_bad_scalar_in_homelab_yaml_is_a_located_error(git_repo: GitRepo) -> None:
    git_repo.write("homelab.yaml", "autoApprovePrune: 0x_\n")
    git_repo.write("manifests/good.yaml", GOOD)
    git_repo.commit()
    state = GitSource(git_repo.path).load()
    [error] = [str(e) for e in state.errors]
    assert error.startswith("homelab.yaml:1:19: autoApprovePrune: '0x_' is not a valid integer")
    assert ("File", "good") in state.manifests
