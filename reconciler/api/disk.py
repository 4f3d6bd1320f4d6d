"""Disk pressure: free space of the runtime root's filesystem, event log and world sizes.

Measured cheaply so `/summary`, `/metrics` and every page can show them:
free and total space come from one `statvfs` call; the event log's size
(`ROOT/events`, compressed days included) from listing the day folders,
at most every `LOG_TTL_SECONDS`; the world's size is the running total
of the world documents the views already stat when the world changes
(`WorldReader.total_bytes`), never a walk per request. `DiskPressure` is
true when the free space falls below the threshold: the smaller of
`min_free_percent` of the filesystem and `min_free_bytes` (5 % and 1 GiB
by default; `homelab run ui --disk-warn-percent/--disk-warn-bytes`), so a
small disk warns at 5 % and a large one at 1 GiB. Called by
`reconciler.api.views.RuntimeViews`.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

from reconciler.runtime_root import RuntimeRoot

LOG_TTL_SECONDS = 5.0
GIB = 1 << 30


@dataclass(frozen=True)
class DiskThresholds:
    min_free_percent: float = 5.0
    min_free_bytes: int = GIB

    def limit(self, total: int) -> int:
        """The free bytes below which the disk is under pressure."""
        return int(min(self.min_free_bytes, total * self.min_free_percent / 100))


@dataclass(frozen=True)
class DiskState:
    free_bytes: int
    total_bytes: int
    log_bytes: int
    world_bytes: int
    limit_bytes: int
    error: str | None = None  # statvfs failed (the root is gone?)

    @property
    def pressure(self) -> bool:
        return self.error is not None or self.free_bytes < self.limit_bytes

    @property
    def free_percent(self) -> float:
        return round(100.0 * self.free_bytes / self.total_bytes, 2) if self.total_bytes else 0.0


def human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover - the loop always returns


def log_bytes(root: RuntimeRoot) -> int:
    """Bytes of every file under `ROOT/events/<day>/` (one listing per day folder)."""
    total = 0
    try:
        days = list(os.scandir(root.events))
    except FileNotFoundError:
        return 0
    for day in days:
        if not day.is_dir(follow_symlinks=False):
            continue
        try:
            entries = list(os.scandir(day.path))
        except FileNotFoundError:
            continue
        for entry in entries:
            try:
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except FileNotFoundError:
                continue
    return total


class DiskUsage:
    """The figures, the log's size cached for a few seconds; thread-safe."""

    def __init__(self, root: RuntimeRoot, thresholds: DiskThresholds | None = None) -> None:
        self.root = root
        self.thresholds = thresholds or DiskThresholds()
        self.world_bytes = 0  # set by the views whenever they re-read the world
        self._log: tuple[float, int] = (0.0, 0)
        self._lock = threading.Lock()

    def _log_bytes(self) -> int:
        now = time.monotonic()
        with self._lock:
            at, size = self._log
            if at and now - at < LOG_TTL_SECONDS:
                return size
        size = log_bytes(self.root)
        with self._lock:
            self._log = (now, size)
        return size

    def state(self) -> DiskState:
        try:
            st = os.statvfs(self.root.path)
        except OSError as exc:
            return DiskState(0, 0, 0, self.world_bytes, 0, f"statvfs {self.root.path}: {exc}")
        total = st.f_blocks * st.f_frsize
        free = st.f_bavail * st.f_frsize
        return DiskState(
            free_bytes=free,
            total_bytes=total,
            log_bytes=self._log_bytes(),
            world_bytes=self.world_bytes,
            limit_bytes=self.thresholds.limit(total),
        )
