"""The page's plan colouring: every operation's title line gets its own class."""

from __future__ import annotations

from reconciler.api.rendering import diff_lines
from reconciler.diff import diff_resource, render_change

RUNNING = {"image": "local/busybox:1", "restartPolicy": "always", "state": "running"}
STOPPED = {**RUNNING, "state": "stopped"}


def classes(text: str) -> list[str]:
    return [cls for cls, _line in diff_lines(text)]


def test_each_operation_title_and_field_line_is_classified_by_its_sign() -> None:
    start = diff_resource("Container", "web", RUNNING, STOPPED)
    stop = diff_resource("Container", "web", STOPPED, RUNNING)
    adopt = diff_resource("Container", "web", RUNNING, STOPPED, adopt=True)
    replace = diff_resource("Container", "web", {**RUNNING, "image": "local/busybox:2"}, RUNNING)
    assert start is not None and stop is not None and adopt is not None and replace is not None
    assert classes(render_change(start)) == ["note", "start", "change"]
    assert classes(render_change(stop)) == ["note", "stop", "change"]
    assert classes(render_change(adopt)) == ["note", "adopt", "change"]
    assert classes(render_change(replace)) == ["note", "replace", "change"]
