"""Network and Volume manifests and a Container's networks/named volumes: validation and shape.

Real git, the real loader (`GitSource.load`): bad input is a located error
(file:line:column, field, what is expected); good input normalizes to the
comparable specs the planner and the drivers share.
"""

from __future__ import annotations

from reconciler.drivers.netvol_observe import key_name
from reconciler.resources.kinds import Container, Network, Volume
from reconciler.resources.normalize import comparable_spec, spec_hash
from reconciler.sources.git import GitSource
from tests.conftest import GitRepo

NETWORK = """\
apiVersion: homelab.reconciler/v1alpha1
kind: Network
metadata:
  name: proxy
spec:
  name: proxy_default
  ipam:
    subnets:
      - subnet: 10.5.0.0/24
        gateway: 10.6.0.1
"""

VOLUME = """\
apiVersion: homelab.reconciler/v1alpha1
kind: Volume
metadata:
  name: media
spec:
  deletionPolicy: Sometimes
"""

CONTAINER = """\
apiVersion: homelab.reconciler/v1alpha1
kind: Container
metadata:
  name: web
spec:
  image: local/busybox:1
  networkMode: host
  networks:
    - network: proxy_default
      ipv4Address: 10.5.0.300
  volumes:
    - volume: media
      source: /srv/media
      target: /data
"""


def _errors(git_repo: GitRepo, rel: str, text: str) -> list[str]:
    git_repo.write(rel, text)
    git_repo.commit()
    state = GitSource(git_repo.path).load(None)
    return [str(e) for e in state.errors if rel in str(e)]


def test_bad_networks_and_volumes_are_located_errors(git_repo: GitRepo) -> None:
    network = _errors(git_repo, "manifests/net.yaml", NETWORK)
    assert any(
        e.startswith("manifests/net.yaml:9:")
        and "gateway 10.6.0.1 is not in subnet 10.5.0.0/24" in e
        for e in network
    ), network
    volume = _errors(git_repo, "manifests/vol.yaml", VOLUME)
    assert any(
        e.startswith("manifests/vol.yaml:6:") and "spec.deletionPolicy" in e and "'Retain'" in e
        for e in volume
    ), volume
    container = _errors(git_repo, "manifests/web.yaml", CONTAINER)
    joined = "\n".join(container)
    assert "manifests/web.yaml:" in joined
    assert "give exactly one of source (a host path) or volume (a volume name)" in joined
    fixed = CONTAINER.replace("      source: /srv/media\n", "")
    again = _errors(git_repo, "manifests/web.yaml", fixed)
    assert any("cannot join networks" in e and "networkMode 'host'" in e for e in again), again
    fixed = fixed.replace("  networkMode: host\n", "")
    last = _errors(git_repo, "manifests/web.yaml", fixed)
    assert any("ipv4Address '10.5.0.300' is not an IPv4 address" in e for e in last), last


def _spec(model: type, kind: str, name: str, spec: dict[str, object]) -> dict[str, object]:
    doc = model.model_validate({"metadata": {"name": name}, "spec": spec})  # type: ignore[attr-defined]
    return comparable_spec(kind, doc.model_dump(mode="json"), None)  # type: ignore[arg-type]


def test_comparable_specs_of_the_new_kinds() -> None:
    assert _spec(Volume, "Volume", "media", {}) == {
        "node": "local",
        "name": "media",
        "driver": "local",
        "driverOpts": {},
        "labels": {},
        "deletionPolicy": "Retain",
    }
    net = _spec(
        Network,
        "Network",
        "proxy",
        {"name": "p_default", "ipam": {"subnets": [{"subnet": "10.5.0.7/24"}]}},
    )
    assert net["name"] == "p_default"
    assert net["ipam"] == {"subnets": [{"subnet": "10.5.0.0/24"}]}  # normalized, unset keys out


def test_a_container_without_networks_or_named_volumes_keeps_its_hash() -> None:
    plain = {"image": "local/busybox:1", "volumes": [{"source": "/srv/a", "target": "/a"}]}
    spec = _spec(Container, "Container", "web", plain)
    assert spec["volumes"] == [{"source": "/srv/a", "target": "/a", "readOnly": False}]
    assert "networks" not in spec
    named = _spec(
        Container,
        "Container",
        "web",
        {
            **plain,
            "volumes": [{"volume": "media", "target": "/data"}],
            "networks": ["z_net", {"network": "b_net", "aliases": ["y", "x"]}, "a_net"],
        },
    )
    assert named["volumes"] == [{"volume": "media", "target": "/data", "readOnly": False}]
    # The first network (the one given at create) stays first; the others by name.
    assert [a["network"] for a in named["networks"]] == ["z_net", "a_net", "b_net"]  # type: ignore[index]
    assert named["networks"][2]["aliases"] == ["x", "y"]  # type: ignore[index]
    assert spec_hash(spec) != spec_hash(named)


def test_unmanaged_keys_are_dns_labels_and_never_collide() -> None:
    assert key_name("media") == "media"
    assert key_name("media", {"media"}) != "media"
    underscored = key_name("proj_data")
    dotted = key_name("proj.data")
    assert underscored != dotted
    assert underscored.startswith("proj-data-") and len(underscored) <= 63
    assert len(key_name("x" * 200)) <= 63
