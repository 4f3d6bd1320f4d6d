"""`homelab plan` shows a changed variable by name: real git repository, real process.

A Container is committed, the world is written as the observer would report the
first commit (its comparable spec from `homelab plan --json`), then a second
commit changes one variable, adds one and removes one. The text plan names them
(`env.GREETING`, `+ env.NEW`, `- env.OLD`), shows no default nulls and no list
index, and the JSON plan gives the same readable paths beside its JSON Patch.
"""

from __future__ import annotations

import orjson

from reconciler.runtime_root import RuntimeRoot
from tests.cli.test_validate_plan import homelab, write_world
from tests.conftest import GitRepo

WEB = """\
apiVersion: homelab.reconciler/v1alpha1
kind: Container
metadata:
  name: web
spec:
  image: local/busybox:1
  command: [httpd, -f, -p, "18080"]
  env:
{env}
  ports:
    - {{containerPort: 18080, hostPort: {port}}}
"""


def commit_web(repo: GitRepo, env: dict[str, str], port: int) -> None:
    lines = "\n".join(f"    {k}: {v}" for k, v in env.items())
    repo.write("manifests/web.yaml", WEB.format(env=lines, port=port))
    repo.commit()


def test_plan_shows_an_env_change_by_name(git_repo: GitRepo, runtime_root: RuntimeRoot) -> None:
    args = ("--repo", str(git_repo.path), "--root", str(runtime_root.path))
    commit_web(git_repo, {"GREETING": "hello", "OLD": "gone", "KEEP": "same"}, 8080)
    first = orjson.loads(homelab("plan", "--json", *args).stdout)
    write_world(runtime_root, "Container", "web", first["changes"][0]["desired"])
    commit_web(git_repo, {"GREETING": "bye", "NEW": "added", "KEEP": "same"}, 8081)

    plan = homelab("plan", *args)
    assert plan.returncode == 0, plan.stderr
    body = plan.stdout.splitlines()
    fields = [line.strip() for line in body if line.startswith("      ")]
    assert fields == [
        '~ env.GREETING: "hello" -> "bye"  # forces replacement',
        '+ env.NEW: "added"  # forces replacement',
        '- env.OLD: "gone"  # forces replacement',
        "~ ports[18080/tcp].hostPort: 8080 -> 8081  # forces replacement",
    ]
    assert "env[" not in plan.stdout and "null" not in plan.stdout
    assert plan.stdout.strip().endswith("0 to create, 0 to update, 1 to replace, 0 to delete.")

    doc = orjson.loads(homelab("plan", "--json", *args).stdout)
    [change] = doc["changes"]
    assert [(f["field"], f["op"]) for f in change["fields"]] == [
        ("env.GREETING", "change"),
        ("env.NEW", "add"),
        ("env.OLD", "remove"),
        ("ports[18080/tcp].hostPort", "change"),
    ]
    assert change["fields"][0]["old"] == "hello" and change["fields"][0]["new"] == "bye"
    assert {op["path"] for op in change["patch"]} >= {"/env/0/value"}  # the patch is unchanged
