"""Jinja filters of the pages: coloured plan diffs, YAML and JSON views.

`diff_lines` classifies each line of a `homelab plan` block (the output of
`reconciler.diff.render_change`) by its sign (the operation symbols of the
titles, `+`/`-`/`~` of the field lines, `#` of the headings; a changed file's
line diff included: `+`/`-` lines as `text add`/`text remove`, `@@` hunk
headers and the `---`/`+++` lines as `hunk`) so the page colours it like the
terminal does; text stays text and Jinja escapes it. `change_text` renders an
action's change now (`reconciler.api.diff_text`). Installed by
`reconciler.api.app` on the template environment.
"""

from __future__ import annotations

from typing import Any

import jinja2
import orjson
import yaml

from reconciler.api import event_format
from reconciler.api.diff_text import change_text
from reconciler.api.disk import human
from reconciler.diff.fields import tidy_spec

_SIGNS = (
    ("-/+", "replace"),
    ("<=", "adopt"),
    ("[]", "stop"),
    (">", "start"),
    ("+", "add"),
    ("-", "remove"),
    ("~", "change"),
    ("#", "note"),
)
# A line diff sits 8 spaces deep, under its fingerprint; its first column is the sign.
_TEXT_DIFF = "        "
_TEXT_SIGNS = {"+": "text add", "-": "text remove", "@": "hunk"}
_TEXT_HEADERS = ("--- observed", "+++ desired")


def diff_lines(text: str) -> list[tuple[str, str]]:
    """(css class, line) pairs for a rendered change block."""
    out = []
    for line in text.splitlines():
        if line.startswith(_TEXT_DIFF):  # a context line "- a" is not a removal
            body = line[len(_TEXT_DIFF) :]
            cls = "hunk" if body in _TEXT_HEADERS else _TEXT_SIGNS.get(body[:1], "text")
            out.append((cls, line))
            continue
        stripped = line.lstrip()
        cls = next((c for sign, c in _SIGNS if stripped.startswith(sign)), "plain")
        out.append((cls, line))
    return out


def to_yaml(value: Any) -> str:
    if value is None:
        return "(none)"
    return yaml.safe_dump(value, sort_keys=True, default_flow_style=False, allow_unicode=True)


def spec_yaml(value: Any, kind: str) -> str:
    """A spec as YAML in the model's field order, without unset fields (`tidy_spec`)."""
    if not isinstance(value, dict):
        return to_yaml(value)
    tidy = tidy_spec(kind, value)
    return yaml.safe_dump(tidy, sort_keys=False, default_flow_style=False, allow_unicode=True)


def to_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


def short(value: Any, n: int = 12) -> str:
    return str(value or "")[:n]


def install_filters(env: jinja2.Environment) -> None:
    env.filters["diff_lines"] = diff_lines
    env.filters["yaml"] = to_yaml
    env.filters["spec_yaml"] = spec_yaml
    env.filters["pretty"] = to_json
    env.filters["short"] = short
    env.filters["change_text"] = change_text
    env.filters["bytes"] = human
    env.filters["when"] = event_format.when
    env.filters["id_time"] = event_format.id_time
    env.filters["severity"] = event_format.severity
    env.filters["data_parts"] = event_format.data_parts
