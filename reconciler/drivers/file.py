"""The file driver: `File` resources written atomically inside allowed roots.

Content comes from the manifest (`content`), from a repository file at the
desired commit (`source`) or from ROOT/secrets/NAME (`secret`); each is
checked against the plan's sha256 fingerprint before it is written, so a
file changed after planning is a stale plan, not a surprise. The write goes
through `reconciler.atomic_files.atomic_write_bytes` (temp file, fsync, rename,
fsync of the folder) with the spec's mode, then the spec's `owner`/`group`
(when set; names resolved through `reconciler.drivers.accounts`) are given
with `os.chown`. When the bytes already match, only what differs (mode,
ownership) is changed in place, without rewriting the file. The result
carries the file's runtime facts (`reconciler.resources.file_runtime`: size,
and the text unless it comes from a secret), the same the File collector
reports. The target must stay inside one of the node's `allowedRoots`:
paths with `..`, absolute paths elsewhere and symlinks (in the target or
any parent) that lead out of the root are refused with a clear
`PathOutsideRoot` error. Files are written on this machine, so
only nodes reached through a local `unix://` engine socket can hold them.
Called by the executor through the `Driver` interface.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from reconciler.atomic_files import atomic_write_bytes, fsync_dir
from reconciler.drivers.accounts import resolve
from reconciler.drivers.base import ApplyContext, ApplyResult
from reconciler.errors import PathOutsideRoot, PermanentError
from reconciler.resources.file_runtime import file_runtime
from reconciler.resources.normalize import fingerprint


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def safe_target(path: str, roots: tuple[str, ...], *, what: str) -> Path:
    """The target path, once it is certain to stay inside one of `roots`."""
    if not path.startswith("/"):
        raise PathOutsideRoot(f"{what}: path {path!r} must be absolute")
    if ".." in path.split("/") or "\x00" in path:
        raise PathOutsideRoot(f"{what}: path {path!r} must not contain '..'")
    lexical = os.path.normpath(path)
    allowed = [os.path.normpath(r) for r in roots]
    root = next((r for r in allowed if _inside(lexical, r) and lexical != r), None)
    if root is None:
        raise PathOutsideRoot(
            f"{what}: path {path!r} is outside the node's allowed roots {list(roots)} "
            "(add the folder to the Node's spec.allowedRoots)"
        )
    # Symlinks anywhere on the way may lead out: compare the real paths too.
    real_root = os.path.realpath(root)
    real_parent = os.path.realpath(os.path.dirname(lexical))
    if not _inside(real_parent, real_root):
        raise PathOutsideRoot(
            f"{what}: path {path!r} leads outside {root} through a symlink ({real_parent})"
        )
    target = Path(real_parent) / os.path.basename(lexical)
    if target.is_symlink():
        raise PathOutsideRoot(f"{what}: path {path!r} is a symlink; refusing to write through it")
    return target


class FileDriver:
    """Applies `File` actions on the local machine."""

    kind = "File"

    def _target(self, ctx: ApplyContext, path: str) -> Path:
        if not ctx.node.is_local:
            raise PermanentError(
                f"File/{ctx.name}: node {ctx.node.name} is remote ({ctx.node.docker_host}); "
                "files can only be written on nodes with a local unix:// engine"
            )
        return safe_target(path, ctx.node.allowed_roots, what=f"File/{ctx.name}")

    def _content(self, ctx: ApplyContext) -> bytes:
        manifest = (ctx.action.manifest or {}).get("spec") or {}
        expected = ctx.desired.get("sha256")
        if manifest.get("content") is not None:
            data = str(manifest["content"]).encode()
            if fingerprint(data) != expected:
                raise PermanentError(f"File/{ctx.name}: manifest content does not match the plan")
            return data
        if manifest.get("source") is not None:
            return ctx.repo_bytes(str(manifest["source"]), expected)
        if manifest.get("secret") is not None:
            return ctx.secret(str(manifest["secret"]), expected)
        raise PermanentError(f"File/{ctx.name}: the action's manifest gives no content source")

    def check(self, ctx: ApplyContext) -> str | None:
        if ctx.operation == "create":
            return None
        spec = ctx.desired if ctx.operation != "delete" else (ctx.action.observed or {})
        target = self._target(ctx, str(spec.get("path", "")))
        if not target.exists():
            return f"file {target} no longer exists"
        return None

    def apply(self, ctx: ApplyContext) -> ApplyResult:
        if ctx.operation == "delete":
            observed = ctx.action.observed or {}
            target = self._target(ctx, str(observed.get("path", "")))
            if not target.exists():
                return ApplyResult(False, f"{target} already absent", "Stopped")
            target.unlink()
            fsync_dir(target.parent)
            return ApplyResult(True, f"removed {target}", "Stopped")
        desired = ctx.desired
        target = self._target(ctx, str(desired["path"]))
        mode = int(str(desired["mode"]), 8)
        uid, gid = self._ownership(ctx)
        data = self._content(ctx)
        manifest = (ctx.action.manifest or {}).get("spec") or {}
        runtime = file_runtime(data, show_content=manifest.get("secret") is None)
        st = target.lstat() if target.is_file() and not target.is_symlink() else None
        same_bytes = st is not None and fingerprint(target.read_bytes()) == desired["sha256"]
        if not same_bytes:
            atomic_write_bytes(target, data, mode=mode)
            self._chown(target, uid, gid)
            owner = f", owner {_who(desired)}" if _who(desired) else ""
            done = f"wrote {target} ({len(data)} bytes, mode {desired['mode']}{owner})"
            return ApplyResult(True, done, "Healthy", runtime=runtime)
        assert st is not None
        fixed = []
        if (st.st_mode & 0o7777) != mode:
            self._on_file(target, lambda fd: os.fchmod(fd, mode))
            fixed.append(f"mode {desired['mode']}")
        if (uid != -1 and st.st_uid != uid) or (gid != -1 and st.st_gid != gid):
            self._chown(target, uid, gid)
            fixed.append(f"owner {_who(desired)}")
        if not fixed:
            return ApplyResult(False, f"{target} already up to date", "Healthy", runtime=runtime)
        return ApplyResult(True, f"set {', '.join(fixed)} on {target}", "Healthy", runtime=runtime)

    def _ownership(self, ctx: ApplyContext) -> tuple[int, int]:
        """The uid and gid the spec asks for (-1: not managed), resolved before any write."""
        desired, what = ctx.desired, f"File/{ctx.name}"
        owner, group = desired.get("owner"), desired.get("group")
        uid = -1 if owner is None else resolve("owner", str(owner), what=what)
        gid = -1 if group is None else resolve("group", str(group), what=what)
        return uid, gid

    def _chown(self, target: Path, uid: int, gid: int) -> None:
        if uid == -1 and gid == -1:
            return
        try:
            self._on_file(target, lambda fd: os.fchown(fd, uid, gid))
        except PermissionError as exc:
            raise PermanentError(
                f"cannot give {target} to {uid}:{gid}: {exc.strerror} "
                "(changing a file's owner needs root or CAP_CHOWN)"
            ) from None

    @staticmethod
    def _on_file(target: Path, change: Callable[[int], None]) -> None:
        """Run `change` on the file itself: opened without following a symlink put there."""
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            change(fd)
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        return None


def _who(desired: dict[str, object]) -> str:
    """`www-data:staff` (`-` for the one not managed) for output lines; "" when neither is."""
    owner, group = desired.get("owner"), desired.get("group")
    if owner is None and group is None:
        return ""
    return f"{owner or '-'}:{group or '-'}"
