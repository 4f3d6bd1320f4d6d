"""The compose driver: `ComposeStack` resources through the compose CLI.

Writes the stack's compose files, as they are at the desired commit (checked
against the plan's fingerprints), to `ROOT/stacks/<name>/<repo path>`, then
runs `<compose> -p PROJECT -f FILE… up -d --remove-orphans --timeout GRACE` with
`DOCKER_HOST` set to the node's engine; on delete, `down --remove-orphans`.
`create`, `update` (new files), `up` (services stopped, removed or outdated:
compose starts, creates or recreates just those) and `adopt` (a project of
the stack's name that was started by hand: compose recreates only what
differs, and the stack is managed from then on) all run that same `up -d`,
which is idempotent, then unpause the project's paused containers (which
`up -d` leaves paused). The compose command is configurable (`docker compose`
for v2 or Debian's `docker-compose` v1). After a successful `up` it records
`stacks/<name>/applied.json` `{"spec", "action"}`, which makes the stack
managed, is what the collector compares the project's containers with
(reconciler/observer/collectors/compose_stack.py) and tells a restarted
executor the action was done. Called by the executor through the `Driver`
interface.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import docker

from reconciler.atomic_files import atomic_write_bytes, atomic_write_json, read_json
from reconciler.drivers.base import ApplyContext, ApplyResult
from reconciler.drivers.hostpaths import compose_findings_on
from reconciler.errors import PermanentError, TemporaryError
from reconciler.sources.yamlload import load_documents

APPLIED = "applied.json"
COMPOSE_PROJECT = "com.docker.compose.project"
_TRANSIENT_MARKERS = (
    "cannot connect to the docker daemon",
    "error while fetching server api version",
    "connection refused",
    "connection aborted",
    "timed out",
)


def default_compose_command() -> tuple[str, ...]:
    """`docker-compose` when installed, else the `docker compose` plugin."""
    return ("docker-compose",) if shutil.which("docker-compose") else ("docker", "compose")


class ComposeDriver:
    """Applies `ComposeStack` actions with the compose CLI."""

    kind = "ComposeStack"

    def _folder(self, ctx: ApplyContext) -> Path:
        return ctx.root.stacks / ctx.name  # name is a DNS-1123 label: stays in stacks/

    def _applied(self, ctx: ApplyContext) -> dict[str, Any] | None:
        try:
            doc = read_json(self._folder(ctx) / APPLIED)
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def _run(self, ctx: ApplyContext, project: str, files: list[str], *args: str) -> str:
        command = [*ctx.settings.compose_command, "-p", project]
        for path in files:
            command += ["-f", path]
        command += list(args)
        env = {**os.environ, "DOCKER_HOST": ctx.node.docker_host}
        what = f"ComposeStack/{ctx.name}: {' '.join(ctx.settings.compose_command)} {args[0]}"
        try:
            proc = subprocess.run(
                command,
                cwd=self._folder(ctx),
                env=env,
                capture_output=True,
                text=True,
                timeout=ctx.settings.command_timeout,
                check=False,
            )
        except FileNotFoundError as exc:
            raise PermanentError(f"{what}: command not found ({exc.filename})") from exc
        except subprocess.TimeoutExpired as exc:
            raise TemporaryError(f"{what}: timed out after {exc.timeout:.0f}s") from exc
        output = (proc.stdout + proc.stderr).strip()
        if proc.returncode != 0:
            tail = output[-800:]
            if any(marker in output.lower() for marker in _TRANSIENT_MARKERS):
                raise TemporaryError(f"{what} failed (exit {proc.returncode}): {tail}")
            raise PermanentError(f"{what} failed (exit {proc.returncode}): {tail}")
        return output[-2000:]

    def _write_files(self, ctx: ApplyContext, files: list[dict[str, Any]]) -> list[str]:
        folder = self._folder(ctx)
        contents = {}
        for entry in files:
            rel = str(entry["path"])
            if rel.startswith("/") or ".." in rel.split("/"):
                raise PermanentError(f"ComposeStack/{ctx.name}: bad compose file path {rel!r}")
            contents[rel] = ctx.repo_bytes(rel, entry.get("sha256"))
        if not ctx.allow_dangerous:
            self._guard(ctx, contents)
        for rel, data in contents.items():
            atomic_write_bytes(folder / rel, data)
        return list(contents)

    def _guard(self, ctx: ApplyContext, contents: dict[str, bytes]) -> None:
        """Refuse, before anything is written or run, what the guard rails refuse."""
        found = []
        for rel, data in contents.items():
            docs, _errors = load_documents(rel, data)
            base = str((self._folder(ctx) / rel).parent)
            found += [
                f"{rel}: {f}"
                for d in docs[:1]
                for f in compose_findings_on(ctx.node.docker_host, d.data, base)
            ]
        if found:
            raise PermanentError(
                f"ComposeStack/{ctx.name} refused by the guard rails: {'; '.join(found)}. If this "
                f"stack really needs it, allow it with allowDangerous: [{ctx.name}] in "
                "homelab.yaml (see docs/guardrails.md)"
            )

    def check(self, ctx: ApplyContext) -> str | None:
        applied = self._applied(ctx)
        if ctx.operation == "adopt":
            if applied is not None:
                return f"stack {ctx.name} is already applied here (nothing to adopt)"
            return None
        if ctx.operation != "create" and applied is None:
            return f"stack {ctx.name} has no applied.json (it was never applied here)"
        return None

    def apply(self, ctx: ApplyContext) -> ApplyResult:
        """create, update, up and adopt all write the files and run `up -d`."""
        if ctx.operation == "delete":
            return self._down(ctx)
        if ctx.operation not in ("create", "update", "up", "adopt"):
            raise PermanentError(f"ComposeStack/{ctx.name}: no operation {ctx.operation!r}")
        desired = ctx.desired
        applied = self._applied(ctx)
        if applied and applied.get("action") == ctx.action.id and applied.get("spec") == desired:
            return ApplyResult(False, f"stack {desired['project']} already up", "Healthy")
        files = self._write_files(ctx, list(desired["files"]))
        grace = str(ctx.settings.stop_grace)
        output = self._run(
            ctx, str(desired["project"]), files, "up", "-d", "--remove-orphans", "--timeout", grace
        )
        unpaused = self._unpause(ctx, str(desired["project"]))
        if unpaused:
            output = f"{output}\nunpaused: {', '.join(unpaused)}".strip()
        atomic_write_json(self._folder(ctx) / APPLIED, {"spec": desired, "action": ctx.action.id})
        return ApplyResult(True, output or f"stack {desired['project']} up", "Healthy")

    def _unpause(self, ctx: ApplyContext, project: str) -> list[str]:
        """Unpause the project's paused containers, which `up -d` leaves paused."""
        what = f"ComposeStack/{ctx.name}: unpause"
        try:
            client = docker.DockerClient(
                base_url=ctx.node.docker_host,
                timeout=int(ctx.settings.docker_timeout),
                use_ssh_client=False,
            )
        except Exception as exc:
            raise TemporaryError(f"{what}: {exc}") from exc
        try:
            filters = {"label": f"{COMPOSE_PROJECT}={project}", "status": "paused"}
            paused = client.containers.list(all=True, filters=filters)
            for container in paused:
                container.unpause()
            return [str(c.name) for c in paused]
        except docker.errors.APIError as exc:
            error = TemporaryError if exc.is_server_error() else PermanentError
            raise error(f"{what}: {exc}") from exc
        except Exception as exc:  # connection trouble: may pass
            raise TemporaryError(f"{what}: {exc}") from exc
        finally:
            client.close()

    def _down(self, ctx: ApplyContext) -> ApplyResult:
        folder = self._folder(ctx)
        applied = self._applied(ctx) or {}
        observed = ctx.action.observed or applied.get("spec") or {}
        project = str(observed.get("project") or ctx.name)
        files = [str(f["path"]) for f in observed.get("files") or []]
        present = [f for f in files if (folder / f).is_file()]
        if not folder.is_dir() or not present:
            # Without the files, compose v1 cannot run; the project label is enough for down.
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(folder / "down.yaml", b"version: '2.4'\nservices: {}\n")
            present = ["down.yaml"]
        grace = str(ctx.settings.stop_grace)
        output = self._run(ctx, project, present, "down", "--remove-orphans", "--timeout", grace)
        (folder / APPLIED).unlink(missing_ok=True)
        return ApplyResult(True, output or f"stack {project} down", "Stopped")

    def close(self) -> None:
        return None
