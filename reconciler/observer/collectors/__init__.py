"""Collectors: turn the real world (Docker engines, files, stacks) into events.

Each collector appends through an `Emit` callback (the observer's `EventLog`
plus a wake-up of the folding loop) and never writes world documents itself.
`docker` follows one Node's engine (containers, compose stacks, node
status); `files` stats managed File paths. Run by the observer service.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reconciler.resources.key import ResourceKey

Emit = Callable[[str, ResourceKey | None, dict[str, Any]], None]
