"""A File's runtime facts: its size and, for small text that is not a secret, the text.

World documents keep these beside the comparable spec (`status.runtime`,
never diffed) so the plan can show a changed file as a line diff instead of
two fingerprints. `content` is there only when the caller says the file may
be shown (its manifest gives `content` or `source`, never `secret`) and the
bytes are at most `TEXT_LIMIT` long, valid UTF-8 and free of NUL bytes
(what git would call binary). The File collector and the file driver both
build them here, so what the executor reports after a write is exactly what
the collector sees next. Pure.
"""

from __future__ import annotations

from typing import Any

TEXT_LIMIT = 64 * 1024


def text_of(data: bytes) -> str | None:
    """The bytes as text, or None when they are too long, binary or not UTF-8."""
    if len(data) > TEXT_LIMIT or b"\x00" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def file_runtime(data: bytes, *, show_content: bool) -> dict[str, Any]:
    """`{size}` plus `content` for small text that may be shown."""
    out: dict[str, Any] = {"size": len(data)}
    if show_content:
        text = text_of(data)
        if text is not None:
            out["content"] = text
    return out
