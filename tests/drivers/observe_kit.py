"""Helpers of the observation tests: desired comparable specs, driver applies, observation.

`desired_spec` validates a Container spec as the manifest loader does and
reduces it to the comparable spec with the real resolver rules (secrets as
fingerprints of ROOT/secrets files); `apply_spec` creates the container the
way the executor does, through `DockerDriver`; `observe` maps the live
container back with `observed_container_spec`, last-applied taken from the
spec label the driver wrote. The image with every default set
(`build_defaults_image`) is built FROM local/busybox:1 on the test engine.
"""

from __future__ import annotations

import io
from typing import Any

from reconciler.drivers.base import ApplyContext, DriverSettings, NodeInfo
from reconciler.drivers.container_fields import create_container
from reconciler.drivers.container_observe import label_spec, observed_container_spec
from reconciler.drivers.docker import DockerDriver, container_name, create_kwargs
from reconciler.queue import Action
from reconciler.resources.kinds import Container
from reconciler.resources.normalize import comparable_spec, fingerprint
from reconciler.runtime_root import RuntimeRoot
from tests.conftest import BUSYBOX

DEFAULTS_IMAGE = "local/obs-defaults:1"
DEFAULTS_DOCKERFILE = f"""\
FROM {BUSYBOX}
ENV GREETING=hello PATH=/bin:/usr/bin
LABEL org.example.team=lab org.example.tier=base
WORKDIR /work
USER 1000:1000
ENTRYPOINT ["/bin/sleep"]
CMD ["3600"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=2s --retries=2 CMD ["true"]
"""


class SecretsResolver:
    """The resolver of the planner, on a runtime root's secrets (no repository files)."""

    def __init__(self, root: RuntimeRoot) -> None:
        self.root = root

    def repo_file_sha256(self, path: str) -> str | None:
        return None

    def secret_sha256(self, name: str) -> str | None:
        path = self.root.secrets / name
        return fingerprint(path.read_bytes()) if path.is_file() else None


def desired_spec(root: RuntimeRoot, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    doc = Container.model_validate({"metadata": {"name": name}, "spec": spec})
    return comparable_spec("Container", doc.model_dump(mode="json"), SecretsResolver(root))


def apply_context(root: RuntimeRoot, host: str, name: str, desired: dict[str, Any]) -> ApplyContext:
    action = Action(
        id="a" * 20,
        kind="Container",
        name=name,
        operation="create",
        desired=desired,
        commit="0" * 40,
    )

    def secret(secret_name: str) -> bytes | None:
        path = root.secrets / secret_name
        return path.read_bytes() if path.is_file() else None

    return ApplyContext(
        action=action,
        node=NodeInfo("local", host),
        root=root,
        repo_file=lambda path: None,
        secret_file=secret,
        settings=DriverSettings(stop_grace=0, health_timeout=20),
        allow_dangerous=True,
    )


def apply_spec(
    driver: DockerDriver, root: RuntimeRoot, host: str, name: str, desired: dict[str, Any]
) -> None:
    """Create the container as the executor would; `state: stopped` is created, not started."""
    ctx = apply_context(root, host, name, desired)
    if desired.get("state") == "stopped":
        create_container(driver.client(ctx), **create_kwargs(ctx, desired))
    else:
        driver.apply(ctx)


def inspect(client: Any, name: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    import docker.errors

    attrs: dict[str, Any] = client.api.inspect_container(container_name(name))
    try:
        image: dict[str, Any] | None = client.api.inspect_image(attrs["Image"])
    except docker.errors.NotFound:
        image = None
    return attrs, image


def observe(client: Any, name: str, node: str = "local") -> dict[str, Any]:
    attrs, image = inspect(client, name)
    last, _ = label_spec(attrs["Config"]["Labels"])
    return observed_container_spec(attrs, image, last, node)


def build_defaults_image(client: Any) -> str:
    data = io.BytesIO(DEFAULTS_DOCKERFILE.encode())
    client.images.build(fileobj=data, tag=DEFAULTS_IMAGE, rm=True, pull=False)
    return DEFAULTS_IMAGE
