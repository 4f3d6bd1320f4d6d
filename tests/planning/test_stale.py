"""The stale-plan decision: an approved action against the desired tip and the world (pure)."""

from __future__ import annotations

from reconciler.planning import Tip, stale_reason
from reconciler.queue.action import Action
from reconciler.resources.key import ResourceKey
from reconciler.resources.repo import RepoConfig


def tip(desired: dict[ResourceKey, dict[str, object]], invalid: set[ResourceKey]) -> Tip:
    return Tip("c" * 40, desired, invalid, RepoConfig())


def test_stale_reason_compares_desired_and_basis() -> None:
    ref = ResourceKey("Container", "web")
    action = Action(
        id="a1",
        kind="Container",
        name="web",
        operation="replace",
        desired={"image": "a"},
        basis="b1",
    )
    assert stale_reason(action, tip({ref: {"image": "a"}}, set()), "b1") is None
    assert "desired spec" in str(stale_reason(action, tip({ref: {"image": "b"}}, set()), "b1"))
    assert "no longer desired" in str(stale_reason(action, tip({}, set()), "b1"))
    assert "invalid" in str(stale_reason(action, tip({}, {ref}), "b1"))
    assert "observed state" in str(stale_reason(action, tip({ref: {"image": "a"}}, set()), ""))
    assert stale_reason(action, tip({ref: {"image": "a"}}, set()), "", check_world=False) is None


def test_a_delete_is_stale_once_the_resource_is_desired_again() -> None:
    action = Action(id="a2", kind="File", name="f", operation="delete", desired=None, basis="b")
    assert stale_reason(action, tip({}, set()), "b") is None
    again = tip({ResourceKey("File", "f"): {"path": "/x"}}, set())
    assert "desired again" in str(stale_reason(action, again, "b"))
