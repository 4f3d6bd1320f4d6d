"""Maintenance windows: may approved actions run now, and when next?

Windows come from `homelab.yaml` (`maintenanceWindows`, UTC, see
`reconciler.resources.repo.MaintenanceWindow`). No windows means always
open. A window whose end is before its start runs past midnight (the day
named is the day it starts); `end: "24:00"` means midnight. Pure; called by
the executor service, which leaves approved actions waiting, visibly, while
every window is closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from reconciler.resources.repo import WEEKDAYS, MaintenanceWindow


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _spans(window: MaintenanceWindow, day: datetime) -> list[tuple[datetime, datetime]]:
    """The window's opening on `day` (a UTC midnight), as [start, end) datetimes."""
    if WEEKDAYS[day.weekday()] not in window.days:
        return []
    start, end = _minutes(window.start), _minutes(window.end)
    if end <= start:
        end += 24 * 60  # runs past midnight
    return [(day + timedelta(minutes=start), day + timedelta(minutes=end))]


def _openings(
    windows: Sequence[MaintenanceWindow], now: datetime
) -> list[tuple[datetime, datetime]]:
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    days = [midnight + timedelta(days=d) for d in range(-1, 8)]
    return sorted(span for w in windows for day in days for span in _spans(w, day))


def window_open(windows: Sequence[MaintenanceWindow], now: datetime) -> bool:
    """True when there are no windows or `now` (UTC) is inside one."""
    if not windows:
        return True
    return any(start <= now < end for start, end in _openings(windows, now))


def next_opening(windows: Sequence[MaintenanceWindow], now: datetime) -> datetime | None:
    """When the next window opens (None: no windows, or open now)."""
    if window_open(windows, now):
        return None
    future = [start for start, _ in _openings(windows, now) if start > now]
    return min(future) if future else None
