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

Field lines come from `reconciler.diff.fields` (the JSON Patch is not shown
as such): readable paths (`env.GREETING`, `ports[8080/tcp].hostPort`), the
model's field order, nothing unset or default on both sides, a secret by its
name (`(secret NAME)`), fingerprints shortened to 12 hex digits. The JSON
plan gives the same paths as `fields`, beside the unchanged `patch`.
"""

from __future__ import annotations

import re
from typing import Any

import jsonpatch
import jsonpointer
import orjson

from reconciler.diff.fields import FieldChange, field_changes, is_secret_ref
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


_FINGERPRINT = re.compile(r"^sha256:([0-9a-f]{12})[0-9a-f]{52}$")


def _plain(value: Any, short: bool = True) -> Any:
    """A value as shown: secret references by name, fingerprints shortened (`short`)."""
    if is_secret_ref(value):
        return {"secret": value.get("secret")}
    if isinstance(value, dict):
        return {k: _plain(v, short) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, short) for v in value]
    if short and isinstance(value, str) and (m := _FINGERPRINT.match(value)):
        return f"sha256:{m.group(1)}…"
    return value


def _show(value: Any) -> str:
    if is_secret_ref(value):
        return f"(secret {value.get('secret')})"
    return orjson.dumps(_plain(value)).decode()


def _patch_tops(patch: list[dict[str, Any]]) -> set[str]:
    return {
        str(op.get("path", "")).split("/")[1].replace("~1", "/").replace("~0", "~")
        for op in patch
        if str(op.get("path", "")).count("/") >= 1
    }


def _target(change: Change, tops: set[str]) -> dict[str, Any] | None:
    """The desired side as the patch sees it: observed with the patch applied.

    Only the top-level fields the patch touches are copied and compared, and
    fields the planner was told to ignore (`ignoreDifferences`) keep their
    observed value, so only what the patch changes is shown.
    """
    observed = change.observed or {}
    part = orjson.loads(orjson.dumps({k: observed[k] for k in tops if k in observed}))
    try:
        out = jsonpatch.apply_patch(part, change.patch, in_place=True)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError):
        return change.desired
    return out if isinstance(out, dict) else change.desired


def changed_fields(change: Change) -> list[FieldChange]:
    """The change's fields as people read them (`env.GREETING`), in the model's order."""
    if change.operation == "create":
        return field_changes(change.kind, None, change.desired)
    if change.operation == "delete":
        return field_changes(change.kind, change.observed, None)
    if not change.patch:
        return []
    tops = _patch_tops(change.patch)
    if change.observed is None or any(op.get("path") == "" for op in change.patch):
        return field_changes(change.kind, change.observed, change.desired)
    return field_changes(change.kind, change.observed, _target(change, tops), only=tops)


_SIGN = {"add": ("+", "32"), "remove": ("-", "31"), "change": ("~", "33")}


def _forced(change: Change, fc: FieldChange) -> bool:
    """Whether the change forces a replacement (a nested force: `resources.oomScoreAdj`)."""
    parts = fc.pointer.split("/")[1:]
    if fc.top in change.forces or ".".join(parts[:2]) in change.forces:
        return True
    return len(parts) == 1 and any(f.startswith(f"{parts[0]}.") for f in change.forces)


def _field_lines(change: Change, colour: bool) -> list[str]:
    fields = changed_fields(change)
    lines = []
    for fc in fields:
        sign, code = _SIGN[fc.op]
        notes = [fc.note] if fc.note else []
        if _forced(change, fc) and change.operation not in ("adopt", "create", "delete"):
            notes.append("forces replacement")  # an adopt's heading says so once
        note = f"  # {'; '.join(notes)}" if notes else ""
        if fc.op == "change":
            text = f"      ~ {fc.path}: {_show(fc.old)} -> {_show(fc.new)}"
        else:
            value = fc.new if fc.op == "add" else fc.old
            text = f"      {sign} {fc.path}" + ("" if value is None else f": {_show(value)}")
        lines.append(_paint(text + note, code, colour))
        lines.extend(_text_diff(change.text_diffs.get(fc.pointer, ""), colour))
    if change.patch and not fields and change.operation not in ("create", "delete"):
        lines.append(_paint("      # only unset or default values differ", "36", colour))
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
    after = [f"      after {', '.join(change.after)}"] if change.after else []
    return "\n".join([head, *notes, title, *after, *_field_lines(change, colour)])


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
        "fields": [field_to_json(fc, change) for fc in changed_fields(change)],
        **({"contentDiff": dict(change.text_diffs)} if change.text_diffs else {}),
        **({"after": list(change.after)} if change.after else {}),
    }


def field_to_json(fc: FieldChange, change: Change) -> dict[str, Any]:
    """One readable field change: its path (`env.GREETING`), op, old and new values."""
    out: dict[str, Any] = {"field": fc.path, "op": fc.op}
    if fc.op != "add":
        out["old"] = _plain(fc.old, short=False)
    if fc.op != "remove":
        out["new"] = _plain(fc.new, short=False)
    if fc.note:
        out["note"] = fc.note
    if fc.top in change.forces and change.operation == "replace":
        out["forcesReplacement"] = True
    return out


def plan_to_json(plan: Plan) -> dict[str, Any]:
    return {
        "commit": plan.commit,
        "changes": [change_to_json(c) for c in plan.changes],
        "notes": plan.notes,
        "summary": plan.counts(),
    }
