"""What `homelab up` prints: the login box and short log lines.

`login_box` frames the UI address and the login token (or where it is kept)
so they stand out among the services' messages; each framed line reads
`│ UI: http://…  │`. `ShortFormatter` keeps a log line to one short line:
the time of day, the logger name without the `reconciler.` prefix and the
message's first line cut at `MAX_MESSAGE` characters (a long engine error
repeats its whole connection pool repr; the full text stays in the event
log and `state/services/`). Tracebacks of crashes are kept whole. Called by
reconciler/cli/up.py.
"""

from __future__ import annotations

import logging

MAX_MESSAGE = 160


def login_box(lines: list[str]) -> str:
    """`lines` framed in a box (text only; no colour, so logs keep it readable)."""
    width = max(len(line) for line in lines)
    top = "┌" + "─" * (width + 2) + "┐"
    bottom = "└" + "─" * (width + 2) + "┘"
    return "\n".join([top, *(f"│ {line.ljust(width)} │" for line in lines), bottom])


def login_lines(url: str, answering: bool, token: str | None, where: str) -> list[str]:
    """The box's content: the address, then the token once (else where it is kept)."""
    lines = [f"UI: {url}" + ("" if answering else " (not answering yet; see the messages above)")]
    if token is not None:
        lines.append(f"Login token: {token}")
        lines.append(f"  (shown once; kept in {where})")
    else:
        lines.append(f"Login token: in {where} (printed only when created)")
    return lines


class ShortFormatter(logging.Formatter):
    """`HH:MM:SS.mmm name: message`, one line of at most MAX_MESSAGE message characters."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03d %(name)s: %(message)s", datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        record = logging.makeLogRecord(record.__dict__)
        record.name = record.name.removeprefix("reconciler.")
        text = record.getMessage()
        first = text.splitlines()[0] if text else ""
        if len(first) > MAX_MESSAGE or first != text:
            first = first[: MAX_MESSAGE - 1].rstrip() + "…"
        record.msg, record.args = first, None
        return super().format(record)


def short_logging() -> None:
    """Log INFO and above to stderr as short lines (watchdog's chatter left out)."""
    handler = logging.StreamHandler()
    handler.setFormatter(ShortFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    logging.getLogger("watchdog").setLevel(logging.WARNING)
