"""dependsOn at load and in the plan: `homelab validate` and `homelab plan` as users run them.

Real processes on a real git repository: unknown targets, impossible
`condition: healthy` and cycles are errors located at their `dependsOn`
entry, the resource is left out of the plan like any invalid one, and the
plan lists changes in dependency order, each saying what it comes after.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from reconciler.diff import Change
from reconciler.planning.dependencies import order_changes
from tests.conftest import GitRepo

TOP = Path(__file__).resolve().parents[2]


def homelab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args], capture_output=True, text=True, timeout=60
    )


def container(name: str, deps: str = "", check: bool = False) -> str:
    text = f"""\
---
apiVersion: homelab.reconciler/v1alpha1
kind: Container
metadata:
  name: {name}
spec:
  image: local/busybox:1
"""
    if check:
        text += "  healthcheck:\n    test: [CMD, 'true']\n"
    return text + deps


def file(name: str, deps: str = "") -> str:
    return f"""\
---
apiVersion: homelab.reconciler/v1alpha1
kind: File
metadata:
  name: {name}
spec:
  path: /srv/homelab/{name}
  content: "{name}"
{deps}"""


def run(repo: GitRepo, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return homelab(*args, "--repo", str(repo.path), "--root", str(tmp_path / "root"))


def test_a_cycle_is_an_error_at_each_entry_naming_the_whole_cycle(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    git_repo.write(
        "manifests/cycle.yaml",
        container("a", "  dependsOn: [Container/b]\n")
        + container("b", "  dependsOn:\n    - resource: File/c\n")
        + file("c", "  dependsOn:\n  - Container/a\n")
        + container("d", "  dependsOn: [Container/a]\n"),
    )
    git_repo.commit()
    result = run(git_repo, tmp_path, "validate")
    assert result.returncode == 1
    assert result.stderr.splitlines()[:3] == [
        "manifests/cycle.yaml:8:15: spec.dependsOn[0]: dependency cycle: "
        "Container/a -> Container/b -> File/c -> Container/a",
        "manifests/cycle.yaml:17:7: spec.dependsOn[0]: dependency cycle: "
        "Container/b -> File/c -> Container/a -> Container/b",
        "manifests/cycle.yaml:27:5: spec.dependsOn[0]: dependency cycle: "
        "File/c -> Container/a -> Container/b -> File/c",
    ]
    assert "3 error(s); 1 valid resource(s)" in result.stderr
    plan = run(git_repo, tmp_path, "plan", "--json")
    doc = orjson.loads(plan.stdout)
    assert [(c["kind"], c["name"]) for c in doc["changes"]] == [("Container", "d")]
    assert doc["changes"][0]["after"] == ["Container/a"]  # a is invalid, d still names it
    notes = doc["notes"]
    assert "Container/a: manifest invalid at manifests/cycle.yaml:8; not planned" in notes


def test_a_resource_depending_on_itself_is_a_cycle(git_repo: GitRepo, tmp_path: Path) -> None:
    git_repo.write("manifests/self.yaml", container("a", "  dependsOn: [Container/a]\n"))
    git_repo.commit()
    result = run(git_repo, tmp_path, "validate")
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        "manifests/self.yaml:8:15: spec.dependsOn[0]: dependency cycle: Container/a -> Container/a"
    )


def test_unknown_targets_and_impossible_health_are_located_errors(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    deps = """\
  dependsOn:
    - Container/ghost
    - resource: File/conf
      condition: healthy
    - {resource: Container/plain, condition: healthy}
    - Node/local
    - Volume/data
    - {resource: Container/checked, condition: healthy}
"""
    git_repo.write(
        "manifests/web.yaml",
        container("web", deps) + file("conf") + container("plain") + container("checked", "", True),
    )
    git_repo.commit()
    result = run(git_repo, tmp_path, "validate")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[:4] == [
        "manifests/web.yaml:9:7: spec.dependsOn[0]: Container/ghost is not defined in this commit",
        "manifests/web.yaml:10:7: spec.dependsOn[1]: File/conf: condition healthy needs a "
        "Container (a File has no health)",
        "manifests/web.yaml:12:7: spec.dependsOn[2]: Container/plain: condition healthy needs "
        "a healthcheck on Container/plain",
        "manifests/web.yaml:13:7: spec.dependsOn[3]: Node/local: 'Node' is not a kind that can "
        "be depended on (" + lines[3].split("(", 1)[1],
    ]
    # Volume/data: no such resource (or, before the Volume kind, no such kind)
    assert lines[4].startswith("manifests/web.yaml:14:7: spec.dependsOn[4]: Volume/data")
    assert lines[4].endswith(("is not defined in this commit", "ComposeStack)"))
    assert len([line for line in lines if "spec.dependsOn" in line]) == 5
    plan = orjson.loads(run(git_repo, tmp_path, "plan", "--json").stdout)
    assert ("Container", "web") not in [(c["kind"], c["name"]) for c in plan["changes"]]


def test_an_invalid_target_is_no_unknown_target(git_repo: GitRepo, tmp_path: Path) -> None:
    broken = container("db").replace("image: local/busybox:1", "image: 'no spaces allowed'")
    git_repo.write("manifests/app.yaml", container("web", "  dependsOn: [Container/db]\n") + broken)
    git_repo.commit()
    result = run(git_repo, tmp_path, "validate")
    assert result.returncode == 1
    assert "dependsOn" not in result.stderr  # only db's own error
    assert "manifests/app.yaml:15:" in result.stderr


def test_the_plan_lists_changes_in_dependency_order_saying_after_what(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    web_deps = """\
  dependsOn:
    - File/zz-conf
    - {resource: Container/zz-db, condition: healthy}
"""
    git_repo.write(
        "manifests/app.yaml",
        container("aa-web", web_deps)
        + container("zz-db", "  dependsOn: [File/zz-conf]\n", check=True)
        + file("zz-conf")
        + file("mm-other"),
    )
    git_repo.commit()
    assert run(git_repo, tmp_path, "validate").returncode == 0
    result = run(git_repo, tmp_path, "plan")
    assert result.returncode == 0, result.stderr
    heads = [line for line in result.stdout.splitlines() if line.startswith("  + ")]
    # create before create, then by kind and name, except where dependsOn says otherwise
    assert heads == [
        "  + File/mm-other",
        "  + File/zz-conf",
        "  + Container/zz-db",
        "  + Container/aa-web",
    ]
    text = result.stdout
    web = text[text.index("  + Container/aa-web") :]
    assert web.splitlines()[1] == "      after File/zz-conf, Container/zz-db (healthy)"
    db = text[text.index("  + Container/zz-db") :]
    assert db.splitlines()[1] == "      after File/zz-conf"
    doc = orjson.loads(run(git_repo, tmp_path, "plan", "--json").stdout)
    afters = {c["name"]: c.get("after") for c in doc["changes"]}
    assert afters == {
        "mm-other": None,
        "zz-conf": None,
        "zz-db": ["File/zz-conf"],
        "aa-web": ["File/zz-conf", "Container/zz-db (healthy)"],
    }


def _change(kind: str, name: str, operation: Any, observed: Any = None) -> Change:
    desired = None if operation == "delete" else {"image": "x"}
    return Change(kind, name, operation, [], desired, observed)


def test_ties_keep_the_planners_order_and_deletes_go_users_first() -> None:
    """Pure order: a delete of what a deleted container used comes after that container."""
    web_seen = {
        "networks": [{"network": "proxy_net"}],
        "volumes": [{"volume": "data", "target": "/d"}],
    }
    changes = [
        _change("File", "a", "create"),
        _change("File", "b", "create"),
        _change("Network", "proxy", "delete", {"name": "proxy_net"}),
        _change("Volume", "data", "delete", {"driver": "local"}),
        _change("Container", "web", "delete", web_seen),
        _change("Container", "zz", "delete", {"networks": ["other"]}),
    ]
    ordered = order_changes(changes, {})
    assert [c.name for c in ordered] == ["a", "b", "web", "proxy", "data", "zz"]
    after = {c.name: c.after for c in ordered}
    assert after["proxy"] == ("Container/web",) and after["data"] == ("Container/web",)
    assert after["zz"] == () and after["a"] == ()


def test_a_long_chain_orders_without_recursion(git_repo: GitRepo, tmp_path: Path) -> None:
    count = 1500  # deeper than Python's recursion limit
    docs = [file(f"f{i:04d}", f"  dependsOn: [File/f{i + 1:04d}]\n") for i in range(count - 1)]
    docs.append(file(f"f{count - 1:04d}", "  dependsOn: [File/f0000]\n"))
    git_repo.write("manifests/chain.yaml", "".join(docs))
    git_repo.commit("a ring")
    result = run(git_repo, tmp_path, "validate")
    assert result.returncode == 1
    first = result.stderr.splitlines()[0]
    assert first.startswith(
        "manifests/chain.yaml:9:15: spec.dependsOn[0]: dependency cycle: File/f0000 -> File/f0001"
    )
    assert first.endswith("File/f0009 -> ... (1489 more) -> File/f1499 -> File/f0000")
    git_repo.write("manifests/chain.yaml", "".join(docs[:-1]) + file(f"f{count - 1:04d}"))
    git_repo.commit("a chain")
    plan = orjson.loads(run(git_repo, tmp_path, "plan", "--json").stdout)
    names = [c["name"] for c in plan["changes"]]
    assert names == [f"f{i:04d}" for i in reversed(range(count))]
