"""How the pages show an event: its time, its severity and its data, readable.

`when` gives the absolute UTC time (date and seconds, with the full stamp
for a hover title) and a relative one ("5 min ago"); `severity` sorts an
event type into bad / warn / ok / info for its colour; `data_lines` turns
an event's data into `key: value` lines (nested mappings indented, lists
inline or as `- ` items, JSON spellings `true`, `false`, `null`), never
Python literals. Installed as Jinja filters by
`reconciler.api.rendering.install_filters`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import orjson

_BAD = ("failed", "exhausted", "corrupt", "error", "quarantined", "refused")
_WARN = ("rejected", "superseded", "missing", "drift", "flapping", "retry", "stale", "pressure")
_OK = ("done", "succeeded", "approved", "sent", "recovered", "adopted")
BULKY = ("spec", "runtime", "desired", "observed", "patch")  # shown folded on the pages


def severity(event_type: Any) -> str:
    last = str(event_type or "").rsplit(".", 1)[-1].lower()
    if any(word in last for word in _BAD):
        return "bad"
    if any(word in last for word in _WARN):
        return "warn"
    if any(word in last for word in _OK):
        return "ok"
    return "info"


def relative(seconds: float) -> str:
    ago = seconds >= 0
    s = abs(seconds)
    if s < 5:
        return "just now"
    if s < 60:
        text = f"{s:.0f} s"
    elif s < 3600:
        text = f"{s / 60:.0f} min"
    elif s < 86400:
        text = f"{s / 3600:.0f} h"
    else:
        text = f"{s / 86400:.0f} d"
    return f"{text} ago" if ago else f"in {text}"


def when(ts: Any, now: float | None = None) -> dict[str, str]:
    """`{date, time, full, relative}` of an event's `ts` (empty strings if unreadable)."""
    value = str(ts or "")
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return {"date": "", "time": value, "full": value, "relative": ""}
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    at = at.astimezone(UTC)
    now = time.time() if now is None else now
    return {
        "date": at.strftime("%Y-%m-%d"),
        "time": at.strftime("%H:%M:%S"),
        "full": at.strftime("%Y-%m-%d %H:%M:%S.%f UTC"),
        "iso": value,
        "relative": relative(now - at.timestamp()),
    }


def id_time(event_id: Any) -> str:
    """The UTC time an event id (or an id-shaped cursor) stands for, as "YYYY-MM-DD HH:MM:SS"."""
    text = str(event_id or "")
    if len(text) < 19 or not text[:19].isdigit():
        return ""
    return datetime.fromtimestamp(int(text[:19]) / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")


def scalar(value: Any) -> str:
    if value is None or isinstance(value, bool | int | float):
        return orjson.dumps(value).decode()
    text = str(value)
    if not text or text != text.strip() or "\n" in text:
        return orjson.dumps(text).decode()
    return text


def _lines(value: Any, indent: int, out: list[str]) -> None:
    pad = "  " * indent
    if isinstance(value, dict):
        for key in sorted(value, key=str):
            item = value[key]
            nested = isinstance(item, list) and any(isinstance(x, dict | list) for x in item)
            if nested or (isinstance(item, dict) and item):
                out.append(f"{pad}{key}:")
                _lines(item, indent + 1, out)
            else:
                out.append(f"{pad}{key}: {_inline(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list) and item:
                out.append(f"{pad}-")
                _lines(item, indent + 1, out)
            else:
                out.append(f"{pad}- {_inline(item)}")
    else:
        out.append(pad + scalar(value))


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_inline(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    return scalar(value)


def readable(value: Any) -> str:
    """`key: value` lines of a mapping (or a list or a scalar), nested ones indented."""
    out: list[str] = []
    _lines(value, 0, out)
    return "\n".join(out)


def data_parts(data: Any) -> tuple[str, list[tuple[str, str]]]:
    """(the short lines, [(bulky key, its lines)]) of an event's data."""
    if not isinstance(data, dict):
        return readable(data), []
    small = {k: v for k, v in data.items() if k not in BULKY}
    bulky = [(k, readable(data[k])) for k in BULKY if k in data]
    return readable(small) if small else "", bulky
