"""Line diffs of file contents: what a changed text file looks like, bounded.

`unified_diff(observed, desired)` is `difflib.unified_diff` of the two texts
(`--- observed` / `+++ desired`, three lines of context) as one string, with
git's `\\ No newline at end of file` marker, control characters other than
tab shown as `\\xNN` (so a file cannot drive the operator's terminal), and at
most `MAX_LINES` lines of `MAX_LINE_CHARS` characters (a note says how much
was left out). A `Change` carries these diffs in `text_diffs`, keyed by the
JSON pointer of the fingerprint they explain (`/sha256` of a File,
`/files/0/sha256` of a ComposeStack); `reconciler.diff.render` prints each
under its fingerprint's line. Pure; the planning layer computes them.
"""

from __future__ import annotations

import difflib
import re

MAX_LINES = 200
MAX_LINE_CHARS = 400
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x80-\x9f]")
_NO_EOL = "\\ No newline at end of file"


def _visible(text: str) -> str:
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _split(text: str) -> list[str]:
    """Lines ending in "\n" (only: a "\r" stays visible as part of its line)."""
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    return lines if lines[-1] else lines[:-1]


def _lines(raw: list[str]) -> list[str]:
    out = raw[:2]  # the --- / +++ header
    for line in raw[2:]:
        if line.startswith("@@"):
            out.append(line)
            continue
        body = line[:-1] if line.endswith("\n") else line
        limit = MAX_LINE_CHARS + 1  # the sign column, then the text
        if len(body) > limit:
            body = body[:limit] + f"... ({len(body) - limit} more characters)"
        out.append(_visible(body))
        if not line.endswith("\n"):
            out.append(_NO_EOL)
    return out


def unified_diff(observed: str, desired: str) -> str:
    """The unified diff turning `observed` into `desired` ("" when they are equal)."""
    if observed == desired:
        return ""
    raw = difflib.unified_diff(
        _split(observed),
        _split(desired),
        "observed",
        "desired",
        lineterm="",
    )
    lines = _lines(list(raw))
    if len(lines) > MAX_LINES:
        left = len(lines) - MAX_LINES
        lines = [*lines[:MAX_LINES], f"... ({left} more diff lines not shown)"]
    return "\n".join(lines)
