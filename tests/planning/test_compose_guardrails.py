"""Guard rails for compose stacks: a compose file cannot ask for what a Container may not.

Each case commits a ComposeStack and its compose file to a real git
repository and plans it with the real planner: the refusal is a located error
in the compose file naming the rule and the service, `allowDangerous` lets the
same stack through, and ordinary services (named volumes, relative binds in
the stack's folder, character devices) pass. The driver's own check, on the
real engine, is in tests/drivers/test_compose.py.
"""

from __future__ import annotations

import orjson
import pytest

from reconciler.planning import compute_plan
from reconciler.sources.git import GitSource
from tests.conftest import GitRepo
from tests.planning.test_guardrails import plan_errors


def stack(name: str, files: list[str]) -> str:
    doc = {
        "apiVersion": "homelab.reconciler/v1alpha1",
        "kind": "ComposeStack",
        "metadata": {"name": name},
        "spec": {"files": files},
    }
    return orjson.dumps(doc).decode() + "\n"


def compose(service_lines: str) -> str:
    return (
        'version: "2.4"\nservices:\n  ok:\n    image: busybox\n  app:\n    image: busybox\n'
        + "".join(f"    {line}\n" for line in service_lines.splitlines())
    )


CASES = [
    ("privileged", "privileged: true", "privileged", "services.app.privileged"),
    ("pid", "pid: host", "host-namespace", "services.app.pid"),
    ("cap", "cap_add: [NET_ADMIN]", "dangerous-capability", "services.app.cap_add[0]"),
    (
        "socket-short",
        "volumes: ['/var/run/docker.sock:/var/run/docker.sock']",
        "docker-socket",
        "services.app.volumes[0]",
    ),
    (
        "root-long",
        "volumes:\n  - {type: volume, source: data, target: /data}\n"
        "  - {type: bind, source: /, target: /host}",
        "host-root",
        "services.app.volumes[1]",
    ),
    (
        "relative-climb",
        "volumes: ['../../../../../../../etc:/etc-host:ro']",
        "host-root",
        "services.app.volumes[0]",
    ),
    ("disk", "devices: ['/dev/sda:/dev/sda']", "block-device", "services.app.devices[0]"),
]


@pytest.mark.parametrize(("case", "lines", "rule", "field"), CASES, ids=[c[0] for c in CASES])
def test_a_refused_compose_option_is_a_located_error_in_the_compose_file(
    git_repo: GitRepo, case: str, lines: str, rule: str, field: str
) -> None:
    git_repo.write("manifests/stack.yaml", stack("web", ["compose/web.yaml"]))
    git_repo.write("compose/web.yaml", compose(lines))
    git_repo.write("manifests/other.yaml", stack("other", ["compose/other.yaml"]))
    git_repo.write("compose/other.yaml", compose("volumes: ['data:/data', './conf:/conf:ro']"))
    errors, changes = plan_errors(git_repo)
    [error] = [e for e in errors if f"[{rule}]" in e]
    assert all("compose/web.yaml" in e for e in errors), errors
    where, _, message = error.partition(f": {field}: ")
    path, line, _column = where.rsplit(":", 2)
    assert path == "compose/web.yaml" and message, error
    row = (git_repo.path / "compose/web.yaml").read_text().splitlines()[int(line) - 1]
    assert field.split(".")[-1].split("[")[0] in row or "source: /" in row, (row, error)
    assert f"[{rule}]" in message and "allowDangerous: [web]" in message, error
    assert ("ComposeStack", "web") not in changes and ("ComposeStack", "other") in changes

    errors, changes = plan_errors(git_repo, allow=["web"])
    assert errors == [] and ("ComposeStack", "web") in changes


def test_ordinary_services_pass(git_repo: GitRepo) -> None:
    lines = (
        "volumes: ['data:/data', './conf:/conf:ro', '/srv/media:/media', "
        "{type: tmpfs, target: /tmp}]\n"
        "devices: ['/dev/dri:/dev/dri', '/dev/ttyUSB0:/dev/ttyUSB0']\n"
        "cap_add: [NET_BIND_SERVICE]\nnetwork_mode: host"
    )
    git_repo.write("manifests/stack.yaml", stack("web", ["compose/web.yaml"]))
    git_repo.write("compose/web.yaml", compose(lines))
    errors, changes = plan_errors(git_repo)
    assert errors == [] and ("ComposeStack", "web") in changes


def test_a_compose_change_is_judged_again_without_a_manifest_change(git_repo: GitRepo) -> None:
    git_repo.write("manifests/stack.yaml", stack("web", ["compose/web.yaml"]))
    git_repo.write("compose/web.yaml", compose("image: busybox"))
    source = GitSource(git_repo.path)
    git_repo.commit()
    assert compute_plan(source, None).errors == []
    git_repo.write("compose/web.yaml", compose("privileged: true"))
    git_repo.commit("only the compose file changes")
    assert [e.field for e in compute_plan(source, None).errors] == ["services.app.privileged"]
