"""Maintenance windows: when the executor may run approved actions (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from reconciler.executor import next_opening, window_open
from reconciler.resources.repo import MaintenanceWindow

MON_0930 = datetime(2024, 6, 3, 9, 30, tzinfo=UTC)  # a Monday


def test_no_windows_means_always_open() -> None:
    assert window_open([], MON_0930)
    assert next_opening([], MON_0930) is None


def test_a_window_is_open_inside_and_closed_outside() -> None:
    w = [MaintenanceWindow(days=["mon"], start="09:00", end="10:00")]
    assert window_open(w, MON_0930)
    assert not window_open(w, MON_0930.replace(hour=10))
    assert next_opening(w, MON_0930.replace(hour=10)) == datetime(2024, 6, 10, 9, 0, tzinfo=UTC)


def test_a_window_past_midnight_belongs_to_the_day_it_starts() -> None:
    w = [MaintenanceWindow(days=["sun"], start="23:00", end="02:00")]
    assert window_open(w, MON_0930.replace(hour=1))  # Sunday 23:00 -> Monday 02:00
    assert not window_open(w, MON_0930.replace(hour=23))
    all_day = [MaintenanceWindow(days=["mon"], start="00:00", end="24:00")]
    assert window_open(all_day, MON_0930.replace(hour=23, minute=59))
