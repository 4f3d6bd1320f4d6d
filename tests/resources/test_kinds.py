"""The models: Kubernetes-shaped validation and stable normalization."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from reconciler.resources.kinds import Container, File, Node
from reconciler.sources.manifests import parse_file


def container(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "homelab.reconciler/v1alpha1",
        "kind": "Container",
        "metadata": {"name": "web"},
        "spec": {"image": "local/busybox:1", **spec},
    }


def test_env_map_and_list_normalize_to_the_same_document() -> None:
    as_map = Container.model_validate(container(env={"B": "2", "A": 1, "C": True}))
    as_list = Container.model_validate(
        container(
            env=[
                {"name": "C", "value": "true"},
                {"name": "A", "value": "1"},
                {"name": "B", "value": "2"},
            ]
        )
    )
    assert as_map.model_dump(mode="json") == as_list.model_dump(mode="json")
    assert [e.name for e in as_map.spec.env] == ["A", "B", "C"]


def test_normalization_is_independent_of_order_and_stable() -> None:
    ports = [{"containerPort": 53, "protocol": "udp"}, {"containerPort": 80, "hostPort": 8080}]
    vols = [{"source": "/b", "target": "/y"}, {"source": "/a", "target": "/x", "readOnly": True}]
    one = Container.model_validate(container(ports=ports, volumes=vols, capAdd=["net_admin"]))
    two = Container.model_validate(
        container(ports=ports[::-1], volumes=vols[::-1], capAdd=["NET_ADMIN", "net_admin"])
    )
    assert one.model_dump(mode="json") == two.model_dump(mode="json")
    again = Container.model_validate(one.model_dump(mode="json"))
    assert again.model_dump(mode="json") == one.model_dump(mode="json")
    dumped = one.model_dump(mode="json")["spec"]
    assert dumped["restartPolicy"] == "unless-stopped"
    assert dumped["imagePullPolicy"] == "IfNotPresent"
    assert dumped["capAdd"] == ["NET_ADMIN"]


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Container.model_validate(container(imagee="x"))


@pytest.mark.parametrize(
    ("labels", "ok"),
    [
        ({"app": "web", "example.com/tier": "front-end"}, True),
        ({"app": ""}, True),
        ({"-bad": "x"}, False),
        ({"app": "has space"}, False),
        ({"UPPER.example.com/x": "y"}, False),
        ({"a" * 64: "y"}, False),
        ({"app": "v" * 64}, False),
    ],
)
def test_labels_are_validated_like_kubernetes(labels: dict[str, str], ok: bool) -> None:
    doc = container()
    doc["metadata"]["labels"] = labels
    if ok:
        Container.model_validate(doc)
    else:
        with pytest.raises(ValidationError):
            Container.model_validate(doc)


@pytest.mark.parametrize("name", ["Web", "web_1", "-web", "web-", "a" * 64, ""])
def test_names_must_be_dns_labels(name: str) -> None:
    doc = container()
    doc["metadata"]["name"] = name
    with pytest.raises(ValidationError, match="DNS-1123"):
        Container.model_validate(doc)


@pytest.mark.parametrize("image", ["local/busybox:1", "busybox", "ghcr.io:443/a/b:v1.2"])
def test_image_references(image: str) -> None:
    Container.model_validate(container(image=image))


@pytest.mark.parametrize("image", ["UPPER/case", "a b", "x:tag:tag", ""])
def test_bad_image_references_are_refused(image: str) -> None:
    with pytest.raises(ValidationError, match="not a valid image reference"):
        Container.model_validate(container(image=image))


def test_durations_normalize_to_seconds() -> None:
    hc = {"test": ["CMD", "true"], "interval": "1m30s", "timeout": 5, "startPeriod": "10s"}
    spec = Container.model_validate(container(healthcheck=hc)).spec
    assert spec.healthcheck is not None
    assert (spec.healthcheck.interval, spec.healthcheck.timeout) == (90, 5)
    assert spec.healthcheck.startPeriod == 10


@pytest.mark.parametrize("written", ["0644", "'0644'", "644", "'644'"])
def test_file_mode_survives_yaml_octal(written: str) -> None:
    text = f"""\
apiVersion: homelab.reconciler/v1alpha1
kind: File
metadata: {{name: f}}
spec: {{path: /srv/homelab/f, content: x, mode: {written}}}
"""
    result = parse_file("f.yaml", text.encode())
    assert result.errors == []
    assert result.manifests[0].doc["spec"]["mode"] == "0644"


def test_file_needs_exactly_one_content_source() -> None:
    base = {"apiVersion": "homelab.reconciler/v1alpha1", "kind": "File", "metadata": {"name": "f"}}
    with pytest.raises(ValidationError, match="exactly one of content, source or secret"):
        File.model_validate({**base, "spec": {"path": "/srv/f", "content": "a", "secret": "s"}})
    with pytest.raises(ValidationError, match="relative path inside the repository"):
        File.model_validate({**base, "spec": {"path": "/srv/f", "source": "../etc/passwd"}})
    with pytest.raises(ValidationError, match="must be an absolute path"):
        File.model_validate({**base, "spec": {"path": "srv/f", "content": "a"}})


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        ("1000", "1000"),
        ("'01000'", "1000"),
        ("0", "0"),
        ("www-data", "www-data"),
        ("_svc$", "_svc$"),
    ],
)
def test_file_owner_and_group_are_a_name_or_an_id_kept_as_text(written: str, kept: str) -> None:
    text = f"""\
apiVersion: homelab.reconciler/v1alpha1
kind: File
metadata: {{name: f}}
spec: {{path: /srv/homelab/f, content: x, owner: {written}, group: {written}}}
"""
    result = parse_file("f.yaml", text.encode())
    assert result.errors == []
    spec = result.manifests[0].doc["spec"]
    assert (spec["owner"], spec["group"]) == (kept, kept)


def test_bad_file_owner_and_group_are_located_errors() -> None:
    text = b"""\
apiVersion: homelab.reconciler/v1alpha1
kind: File
metadata: {name: f}
spec:
  path: /srv/homelab/f
  content: x
  owner: -1
  group: "two words"
"""
    errors = [str(e) for e in parse_file("f.yaml", text).errors]
    assert errors == [
        "f.yaml:7:10: spec.owner: expected a user or group name (like www-data) "
        "or a numeric id (like 1000), got -1",
        "f.yaml:8:10: spec.group: expected a user or group name (like www-data) "
        "or a numeric id (like 1000), got 'two words'",
    ]
    big = text.replace(b"owner: -1", b"owner: 4294967295")
    assert "id 4294967295 is out of range" in str(parse_file("f.yaml", big).errors[0])


def test_node_docker_host_schemes() -> None:
    base = {"apiVersion": "homelab.reconciler/v1alpha1", "kind": "Node", "metadata": {"name": "n"}}
    for host in ("unix:///var/run/docker.sock", "ssh://root@nas:22", "tcp://10.0.0.2:2376"):
        Node.model_validate({**base, "spec": {"dockerHost": host}})
    with pytest.raises(ValidationError, match="must start with unix://, ssh:// or tcp://"):
        Node.model_validate({**base, "spec": {"dockerHost": "http://x"}})


def test_dangerous_options_are_found() -> None:
    spec = Container.model_validate(
        container(
            privileged=True,
            pidMode="host",
            capAdd=["SYS_ADMIN"],
            volumes=[{"source": "/var/run/docker.sock", "target": "/var/run/docker.sock"}],
        )
    ).spec
    assert spec.dangerous() == [
        "spec.privileged: [privileged] privileged mode",
        "spec.pidMode: [host-namespace] the host's PID namespace",
        "spec.capAdd[0]: [dangerous-capability] capability SYS_ADMIN",
        "spec.volumes[0].source: [docker-socket] bind of /var/run/docker.sock "
        "(that is /run/docker.sock): an engine socket",
    ]
