"""Benchmark: what one look at a node's networks and volumes costs the collector.

The collector lists all of a node's networks (or volumes) again on every
network (volume) event instead of tracking ids (observer/collectors/netvol.py),
and reads the engine's disk-usage report for volumes at most every five
minutes. This measures both on the engine in $DOCKER_HOST: it creates
`--networks` networks and `--volumes` volumes (each volume holding a 1 MB
file, written by one busybox container), then times `--runs` rounds of
`NetVolObserver.check` for each kind (the usage report cached), of one
network event (`network_event`: that network alone), and of the usage
report alone (`measure_usage`: `docker system df`). Prints median and
range per figure; asserts nothing; removes what it made. Run:
DOCKER_HOST=unix:///tmp/homelab-dev/docker.sock .venv/bin/python hack/bench/netvol_listing.py
[--networks 30] [--volumes 60] [--runs 9]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import docker

from reconciler.drivers.volume import measure_usage
from reconciler.observer.collectors.ledger import ObservationLedger
from reconciler.observer.collectors.netvol import NetVolObserver
from reconciler.runtime_root import RuntimeRoot

BUSYBOX = "local/busybox:1"


def _figure(name: str, seconds: list[float]) -> None:
    ms = sorted(s * 1000 for s in seconds)
    print(
        f"{name:<40} median {statistics.median(ms):8.1f} ms  "
        f"range {ms[0]:.1f}-{ms[-1]:.1f} ms  ({len(ms)} runs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--networks", type=int, default=30)
    parser.add_argument("--volumes", type=int, default=60)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    client = docker.DockerClient(
        base_url=os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    )
    mark = "bench" + uuid.uuid4().hex[:6]
    made_nets: list[Any] = []
    made_vols: list[Any] = []
    try:
        for i in range(args.networks):
            pool = docker.types.IPAMPool(subnet=f"10.201.{i}.0/24")  # the defaults run out at ~30
            ipam = docker.types.IPAMConfig(pool_configs=[pool])
            made_nets.append(client.networks.create(f"{mark}_net{i}", ipam=ipam))
        for i in range(args.volumes):
            made_vols.append(client.volumes.create(f"{mark}_vol{i}"))
        binds = {v.name: {"bind": f"/v/{i}", "mode": "rw"} for i, v in enumerate(made_vols)}
        script = " && ".join(f"head -c 1000000 /dev/zero > /v/{i}/f" for i in range(len(made_vols)))
        client.containers.run(BUSYBOX, ["sh", "-c", script], volumes=binds, remove=True)
        with tempfile.TemporaryDirectory() as tmp:
            root = RuntimeRoot(Path(tmp)).ensure()
            events: list[Any] = []
            ledger = ObservationLedger(root, lambda *e: events.append(e))
            observer = NetVolObserver("local", root, ledger)
            observer.usage(client, fresh=True)
            timings: dict[str, list[float]] = {
                "Network": [],
                "Volume": [],
                "usage": [],
                "event": [],
            }
            event = {"Type": "network", "Action": "connect", "Actor": {"ID": made_nets[0].id}}
            for _ in range(args.runs):
                for kind in ("Network", "Volume"):
                    began = time.perf_counter()
                    observer.check(client, kind)
                    timings[kind].append(time.perf_counter() - began)
                began = time.perf_counter()
                observer.network_event(client, event)
                timings["event"].append(time.perf_counter() - began)
                began = time.perf_counter()
                measure_usage(client)
                timings["usage"].append(time.perf_counter() - began)
        print(
            f"{args.networks} networks, {args.volumes} volumes of 1 MB; "
            f"engine {client.version()['Version']}"
        )
        _figure(f"list+inspect {args.networks} networks", timings["Network"])
        _figure("one network event (inspect that one)", timings["event"])
        _figure(f"list {args.volumes} volumes", timings["Volume"])
        _figure("disk-usage report (docker system df)", timings["usage"])
    finally:
        for net in made_nets:
            net.remove()
        for vol in made_vols:
            vol.remove(force=True)
        client.close()


if __name__ == "__main__":
    main()
