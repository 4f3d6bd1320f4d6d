"""Pure planning: desired vs observed specs -> changes (JSON Patch), and their rendering.

`make_plan` is the one diff the CLI's `plan` and the supervisor both use;
`render_text` / `plan_to_json` print it. No I/O here.
"""

from reconciler.diff.plan import Change, Plan, diff_resource, make_plan
from reconciler.diff.render import change_to_json, plan_to_json, render_change, render_text

__all__ = [
    "Change",
    "Plan",
    "change_to_json",
    "diff_resource",
    "make_plan",
    "plan_to_json",
    "render_change",
    "render_text",
]
