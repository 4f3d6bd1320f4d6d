"""Terraform-style rendering of a plan: text for people, JSON for machines.

`+` create, `<=` adopt (a resource that exists unmanaged: taken over as it
runs, or replaced when its fields differ), `>` start, `~` update in place
(each changed field, old -> new; a changed file's content also as a unified
line diff under its fingerprint, when the planner found both texts), `^` up
(a compose stack's services brought up again), `-/+` replace (and the field
that forces it), `[]` stop, `-` delete, then the summary line `Plan: N to
create, N to update, N to replace, N to delete.`, followed by `, N to adopt`
(start, bring up, stop) only for the other operations the plan has. Colours
only when the caller asks (the CLI does on a terminal). Pure; used by the
CLI, the supervisor's action summaries and the UI.
"""

from __future__ import annotations

from typing import Any

import jsonpointer
import orjson

from reconciler.diff.plan import Change, Plan

_SYMBOL = {
    "create": "+",
    "adopt": "<=",
    "start": ">",
    "update": "~",
    "up": "^",
    "replace": "-/+",
    "stop": "[]",
    "delete": "-",
}
_COLOUR = {
    "create": "32",
    "adopt": "36",
    "start": "32",
    "update": "33",
    "up": "34",
    "replace": "35",
    "stop": "33",
    "delete": "31",
}
_VERB = {
    "create": "will be created",
    "adopt": "will be adopted",
    "start": "will be started",
    "update": "will be updated in place",
    "up": "will be brought up (compose up -d: services down, missing or outdated)",
    "replace": "must be replaced",
    "stop": "will be stopped",
    "delete": "will be deleted",
}
# Always in the summary line, even at zero (scripts read it); the others only when present.
_SUMMARY_ALWAYS = ("create", "update", "replace", "delete")
_SUMMARY_WORDS = {"up": "bring up"}


def _paint(text: str, code: str, colour: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if colour else text


def _show(value: Any) -> str:
    return orjson.dumps(value).decode()


def _field(path: str) -> str:
    out = ""
    for part in path.lstrip("/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out or "(root)"


def _lookup(doc: Any, path: str) -> Any:
    try:
        return jsonpointer.resolve_pointer(doc, path)
    except jsonpointer.JsonPointerException:
        return None


def _field_lines(change: Change, colour: bool) -> list[str]:
    lines = []
    if change.operation == "create":
        for key, value in (change.desired or {}).items():
            if value is None or value == [] or value == {}:
                continue  # defaults that say nothing; --json shows the full document
            lines.append(_paint(f"      + {key}: {_show(value)}", "32", colour))
        return lines
    if change.operation == "delete":
        for key, value in (change.observed or {}).items():
            lines.append(_paint(f"      - {key}: {_show(value)}", "31", colour))
        return lines
    for op in change.patch:
        name = _field(op["path"])
        parts = op["path"].split("/")[1:]  # a nested force is `resources.oomScoreAdj`
        forced = parts[0] in change.forces or ".".join(parts[:2]) in change.forces
        if len(parts) == 1:
            forced = forced or any(f.startswith(f"{parts[0]}.") for f in change.forces)
        forces = "  # forces replacement" if forced else ""
        if change.operation == "adopt":
            forces = ""  # every differing field does; the heading says so once
        if op["op"] == "add":
            text, code = f"      + {name}: {_show(op['value'])}{forces}", "32"
        elif op["op"] == "remove":
            old = _lookup(change.observed, op["path"])
            text, code = f"      - {name}: {_show(old)}{forces}", "31"
        else:
            old = _lookup(change.observed, op["path"])
            text, code = f"      ~ {name}: {_show(old)} -> {_show(op.get('value'))}{forces}", "33"
        lines.append(_paint(text, code, colour))
        lines.extend(_text_diff(change.text_diffs.get(op["path"], ""), colour))
    return lines


def _text_diff(diff: str, colour: bool) -> list[str]:
    """A content's line diff, indented under its fingerprint's line."""
    out = []
    for line in diff.splitlines():
        code = "32" if line.startswith("+") else "31" if line.startswith("-") else "36"
        plain = line.startswith(" ") or line.startswith("\\")
        out.append(f"        {line}" if plain else _paint(f"        {line}", code, colour))
    return out


def render_change(change: Change, *, colour: bool = False) -> str:
    """One resource's block of the plan."""
    symbol = _SYMBOL[change.operation]
    head = f"  # {change.kind}/{change.name} {_VERB[change.operation]}"
    if change.operation == "adopt":
        head += (
            f" ({', '.join(change.forces)} differ: approving replaces it)"
            if change.forces
            else " (it matches the manifest: taken over as it runs)"
        )
    elif change.forces:
        head += f" ({', '.join(change.forces)} cannot change in place)"
    title = _paint(f"{symbol:>3} {change.kind}/{change.name}", _COLOUR[change.operation], colour)
    notes = [f"  # {note}" for note in change.notes]
    return "\n".join([head, *notes, title, *_field_lines(change, colour)])


def summary_line(plan: Plan) -> str:
    """`Plan: N to create, N to update, N to replace, N to delete[, N to adopt ...].`"""
    counts = plan.counts()
    parts = [f"{counts[op]} to {op}" for op in _SUMMARY_ALWAYS]
    parts += [
        f"{n} to {_SUMMARY_WORDS.get(op, op)}"
        for op, n in counts.items()
        if n and op not in _SUMMARY_ALWAYS
    ]
    return f"Plan: {', '.join(parts)}."


def render_text(plan: Plan, *, colour: bool = False) -> str:
    out = [f"Desired state: commit {plan.commit[:12]}", ""]
    if plan.empty:
        out.append("No changes. The homelab matches the desired state.")
    for change in plan.changes:
        out.extend([render_change(change, colour=colour), ""])
    out.extend(f"Note: {note}" for note in plan.notes)
    out.append(summary_line(plan))
    return "\n".join(out)


def change_to_json(change: Change) -> dict[str, Any]:
    return {
        "kind": change.kind,
        "name": change.name,
        "operation": change.operation,
        "patch": change.patch,
        "desired": change.desired,
        "observed": change.observed,
        "forcesReplacement": list(change.forces),
        **({"contentDiff": dict(change.text_diffs)} if change.text_diffs else {}),
    }


def plan_to_json(plan: Plan) -> dict[str, Any]:
    return {
        "commit": plan.commit,
        "changes": [change_to_json(c) for c in plan.changes],
        "notes": plan.notes,
        "summary": plan.counts(),
    }
