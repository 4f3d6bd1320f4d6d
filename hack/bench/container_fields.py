"""Benchmark: what the compose-parity Container fields cost (prints figures only).

Per container, for a manifest that sets none of the new fields and for one
that sets forty of them (the field groups of tests/drivers/test_container_fields.py):
validating and reducing the manifest to its comparable spec (what the
planner does per changed manifest), and mapping a real `docker inspect` of
the container back to its observed spec (what the collector does per
container event). The containers are created once on the engine of
`HOMELAB_TEST_DOCKER_HOST` (or DOCKER_HOST); prints the median and range
of RUNS runs of COUNT calls each, in µs per call.

    HOMELAB_TEST_DOCKER_HOST=unix:///tmp/homelab-dev-x/docker.sock \
        .venv/bin/python hack/bench/container_fields.py
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import docker

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from reconciler.drivers.container_observe import label_spec, observed_container_spec
from reconciler.drivers.docker import DockerDriver
from reconciler.runtime_root import RuntimeRoot
from tests.drivers.observe_kit import apply_context, desired_spec

RUNS, COUNT = 7, 2000
BUSYBOX = "local/busybox:1"
PLAIN: dict[str, Any] = {
    "image": BUSYBOX,
    "imagePullPolicy": "Never",
    "command": ["sleep", "3600"],
    "networkMode": "none",
    "restartPolicy": "no",
    "env": {"TZ": "UTC", "PUID": "1000"},
    "labels": {"app": "bench"},
}
FULL: dict[str, Any] = {
    **PLAIN,
    "containerName": "bench-fields-full_1",
    "resources": {
        "memory": "256Mi",
        "memoryReservation": "128m",
        "memorySwap": "512Mi",
        "cpus": "1.5",
        "cpuShares": 512,
        "cpuset": "0",
        "pids": 200,
        "oomScoreAdj": 100,
    },
    "init": True,
    "tmpfs": ["/run:size=16m,mode=1777", {"target": "/tmp", "size": "8Mi"}],
    "shmSize": "32m",
    "stopSignal": "TERM",
    "stopGracePeriod": "30s",
    "ulimits": {"nofile": {"soft": 1024, "hard": 2048}, "nproc": 512},
    "sysctls": {"net.core.somaxconn": 512},
    "securityOpt": ["no-new-privileges"],
    "groupAdd": [44, "1000"],
    "devices": ["/dev/null:/dev/mynull:rw", {"hostPath": "/dev/zero"}],
    "deviceCgroupRules": ["c 1:3 mr"],
    "hostname": "media",
    "domainname": "home.arpa",
    "dns": ["192.0.2.53"],
    "dnsSearch": "home.arpa",
    "dnsOptions": ["ndots:2"],
    "extraHosts": {"nas": "192.0.2.10"},
    "logging": {"driver": "json-file", "options": {"max-size": "10m"}},
    "ipcMode": "shareable",
    "cgroupParent": "/homelab-bench",
    "tty": True,
    "stdinOpen": True,
    "healthcheck": {"disable": True},
}


def _median(fn: Any) -> tuple[float, float, float]:
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        for _ in range(COUNT):
            fn()
        times.append((time.perf_counter() - t0) / COUNT * 1e6)
    return statistics.median(times), min(times), max(times)


def main() -> None:
    host = os.environ.get("HOMELAB_TEST_DOCKER_HOST") or os.environ.get("DOCKER_HOST")
    if not host:
        sys.exit("set HOMELAB_TEST_DOCKER_HOST (a test engine with local/busybox:1)")
    client = docker.DockerClient(base_url=host)
    driver = DockerDriver()
    with tempfile.TemporaryDirectory() as tmp:
        root = RuntimeRoot(Path(tmp) / "root").ensure()
        for label, spec in (("no new fields", PLAIN), ("40 new fields", FULL)):
            name = f"bench-fields-{'full' if spec is FULL else 'plain'}"
            engine = spec.get("containerName") or f"homelab-{name}"
            with contextlib.suppress(docker.errors.NotFound):
                client.api.remove_container(engine, force=True)
            desired = desired_spec(root, name, spec)
            driver.apply(apply_context(root, host, name, desired))
            attrs = client.api.inspect_container(engine)
            image = client.api.inspect_image(attrs["Image"])
            last, _ = label_spec(attrs["Config"]["Labels"])
            observed = observed_container_spec(attrs, image, last, "local", name=name)
            assert observed == desired, "the benchmark's container does not observe as its spec"
            validate = _median(lambda s=spec, n=name: desired_spec(root, n, s))
            observe = _median(
                lambda a=attrs, i=image, la=last, n=name: observed_container_spec(
                    a, i, la, "local", name=n
                )
            )
            print(
                f"{label:14}  validate+comparable {validate[0]:7.1f} µs "
                f"({validate[1]:.1f}-{validate[2]:.1f})   observe {observe[0]:6.1f} µs "
                f"({observe[1]:.1f}-{observe[2]:.1f})   [{RUNS} runs x {COUNT}]"
            )
            client.api.remove_container(engine, force=True)
    driver.close()
    client.close()


if __name__ == "__main__":
    main()
