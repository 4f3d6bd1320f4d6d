"""Settings of the UI service: where it listens, how operators are recognised.

One frozen value built by `homelab run ui` (reconciler/cli/run_ui.py) or by
tests, passed to `create_app` and the middleware.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from reconciler.api.limits import HEADER_TIMEOUT_SECONDS, MAX_CONNECTIONS
from reconciler.runtime_root import RuntimeRoot

AuthMode = Literal["token", "proxy"]


@dataclass(frozen=True)
class UISettings:
    """`base_path` is the sub-path a reverse proxy serves us under (e.g. "/homelab")."""

    root: RuntimeRoot
    repo: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    auth_mode: AuthMode = "token"
    trusted_proxies: tuple[str, ...] = ()
    identity_header: str = "Tailscale-User-Login"
    secure_cookies: bool | None = None  # None: only when the request came over TLS
    max_body_bytes: int = 1024 * 1024
    base_path: str = ""
    event_capacity: int = 20000
    token: str | None = None  # tests may fix the token; else ROOT/state/ui_token
    max_connections: int = MAX_CONNECTIONS  # lowered further by the descriptor budget
    header_timeout: float = HEADER_TIMEOUT_SECONDS
    disk_warn_percent: float = 5.0  # DiskPressure below the smaller of this share of the disk
    disk_warn_bytes: int = 1 << 30  # and this many free bytes
