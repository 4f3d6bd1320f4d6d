"""Maintenance windows and the stale-plan decision: the executor's pure parts."""

from __future__ import annotations

from datetime import UTC, datetime

from reconciler.executor import next_opening, stale_reason, window_open
from reconciler.executor.context import Tip
from reconciler.resources.repo import MaintenanceWindow, RepoConfig

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


def tip(desired: dict[tuple[str, str], dict[str, object]], invalid: set[tuple[str, str]]) -> Tip:
    return Tip("c" * 40, desired, invalid, RepoConfig())


def test_stale_reason_compares_desired_and_basis() -> None:
    ref = ("Container", "web")
    action = {"kind": "Container", "name": "web", "operation": "replace"}
    action |= {"desired": {"image": "a"}, "basis": "b1"}
    assert stale_reason(action, tip({ref: {"image": "a"}}, set()), "b1") is None
    assert "desired spec" in str(stale_reason(action, tip({ref: {"image": "b"}}, set()), "b1"))
    assert "no longer desired" in str(stale_reason(action, tip({}, set()), "b1"))
    assert "invalid" in str(stale_reason(action, tip({}, {ref}), "b1"))
    assert "observed state" in str(stale_reason(action, tip({ref: {"image": "a"}}, set()), ""))
    assert stale_reason(action, tip({ref: {"image": "a"}}, set()), "", check_world=False) is None


def test_a_delete_is_stale_once_the_resource_is_desired_again() -> None:
    action = {"kind": "File", "name": "f", "operation": "delete", "desired": None, "basis": "b"}
    assert stale_reason(action, tip({}, set()), "b") is None
    again = tip({("File", "f"): {"path": "/x"}}, set())
    assert "desired again" in str(stale_reason(action, again, "b"))
