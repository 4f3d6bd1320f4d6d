"""A small, realistic homelab for the page-wide browser tests (accessibility, polish).

Real git repository, real runtime root, the real supervisor and the real UI on
uvicorn; the world documents are the ones the observer writes (as in
tests/browser/test_errors_story.py), so no Docker engine is needed. `build_demo`
commits Containers web, db, old-worker and File motd, observes web on an older
image (a replace), db as desired (in sync), motd with other text (a File line
diff) and old-worker as committed; the next commit retires old-worker (a delete)
and adds a cache (a create), the last one a `proxy` with a typo in a field (a
manifest error, file:line, and an Invalid resource; a YAML syntax error would
withhold every delete, as the desired state is then incomplete). The real
supervisor proposes after each commit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from reconciler.atomic_files import atomic_write_json
from reconciler.planning import desired_specs
from reconciler.queue import Action, ActionQueue
from reconciler.queue.action import now_iso
from reconciler.resources.normalize import spec_hash
from reconciler.runtime_root import RuntimeRoot
from reconciler.sources.git import GitSource
from reconciler.supervisor.service import Supervisor
from reconciler.world import new_world_doc, world_path
from tests.api.conftest import UILab
from tests.conftest import GitRepo

CONTAINER = """\
apiVersion: homelab.reconciler/v1alpha1
kind: Container
metadata:
  name: {name}
  labels:
    app: {name}
spec:
  image: {image}
  imagePullPolicy: Never
  command: ["sleep", "3600"]
  env:
    - name: GREETING
      value: hello
  networkMode: host
"""
MOTD_OLD = "Welcome to the lab.\nMaintenance: Sunday 02:00.\n"
MOTD_NEW = "Welcome to the lab.\nMaintenance: Saturday 03:00 UTC.\nAsk #ops for access.\n"
MOTD = """\
apiVersion: homelab.reconciler/v1alpha1
kind: File
metadata:
  name: motd
spec:
  path: /srv/homelab/motd
  content: |
    Welcome to the lab.
    Maintenance: Saturday 03:00 UTC.
    Ask #ops for access.
"""
BROKEN = """\
apiVersion: homelab.reconciler/v1alpha1
kind: Container
metadata:
  name: proxy
spec:
  image: local/busybox:1
  restartPolicy: sometimes
  command: ["sleep", "3600"]
"""


@dataclass
class Demo:
    repo: GitRepo
    root: RuntimeRoot
    queue: ActionQueue

    def pending(self) -> list[Action]:
        return self.queue.actions("pending")

    def one(self, operation: str, name: str | None = None) -> Action:
        return next(
            a
            for a in self.pending()
            if a.operation == operation and (name is None or a.name == name)
        )


def observe(root: RuntimeRoot, kind: str, name: str, spec: dict[str, Any], **extra: Any) -> None:
    """The world document the observer writes for a managed resource seen as `spec`."""
    doc = new_world_doc(kind, name)
    doc["status"].update(
        exists=True,
        managed=True,
        observed=spec,
        observedAt=now_iso(),
        basis=spec_hash(spec),
        health="Healthy",
        **extra,
    )
    atomic_write_json(world_path(root, kind, name), doc)


def observer_listed(root: RuntimeRoot) -> None:
    """The observer's status once it has caught up and listed node `local` fully."""
    atomic_write_json(
        root.state / "observer_status.json",
        {
            "caughtUp": True,
            "updatedAt": now_iso(),
            "lagBytes": 0,
            "eventsFolded": 12,
            "nodes": {
                "local": {
                    "collectorStartedAt": "2024-01-01T00:00:00.000000Z",
                    "lastFullListingAt": now_iso(),
                    "ready": True,
                }
            },
        },
    )


def _desired(repo: GitRepo, root: RuntimeRoot) -> dict[tuple[str, str], dict[str, Any]]:
    source = GitSource(repo.path)
    specs, _errors, _invalid = desired_specs(source, source.load(None), root)
    return specs


def build_demo(repo: GitRepo, root: RuntimeRoot, *, broken: bool = True) -> Demo:
    lab = UILab(repo, root)
    images = {"web": "local/busybox:2", "db": "local/busybox:1", "old-worker": "local/busybox:1"}
    for name, image in images.items():
        repo.write(f"manifests/{name}.yaml", CONTAINER.format(name=name, image=image))
    repo.write("manifests/motd.yaml", MOTD)
    repo.commit("demo: containers and the motd")
    lab.status_files()
    observer_listed(root)
    specs = _desired(repo, root)
    db = specs[("Container", "db")]
    observed = {
        "web": {**specs[("Container", "web")], "image": "local/busybox:1"},  # a replace
        "db": db,  # in sync
        "old-worker": specs[("Container", "old-worker")],  # removed from git below: a delete
    }
    for name, spec in observed.items():
        observe(root, "Container", name, spec)
    motd = {
        "node": "local",
        "path": "/srv/homelab/motd",
        "mode": "0644",
        "sha256": "sha256:" + hashlib.sha256(MOTD_OLD.encode()).hexdigest(),
    }
    observe(root, "File", "motd", motd, runtime={"size": len(MOTD_OLD), "content": MOTD_OLD})
    supervisor = Supervisor(repo.path, root)
    try:
        supervisor.reconcile(force=True)
        repo.remove("manifests/old-worker.yaml")
        repo.write("manifests/cache.yaml", CONTAINER.format(name="cache", image="local/busybox:1"))
        repo.commit("demo: a cache; old-worker retired")
        supervisor.reconcile(force=True)
        if broken:
            repo.write("manifests/proxy.yaml", BROKEN)
            repo.commit("demo: a proxy, with a typo")
            supervisor.reconcile(force=True)
    finally:
        supervisor.events.close()
    return Demo(repo, root, lab.queue)
