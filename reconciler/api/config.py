"""Settings of the UI service: where it listens, how operators are recognised.

One frozen value built by `homelab run ui` (reconciler/cli/run_ui.py) or by
tests, passed to `create_app` and the middleware.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from reconciler.api.limits import HEADER_TIMEOUT_SECONDS, MAX_CONNECTIONS
from reconciler.errors import ConfigError
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
    # DiskPressure below the smaller of this share of the disk and this many free bytes
    # (env HOMELAB_DISK_WARN_PERCENT / HOMELAB_DISK_WARN_BYTES, so `homelab up` takes them too)
    disk_warn_percent: float = field(
        default_factory=lambda: _env_number("HOMELAB_DISK_WARN_PERCENT", 5.0, 100.0)
    )
    disk_warn_bytes: int = field(
        default_factory=lambda: int(_env_number("HOMELAB_DISK_WARN_BYTES", 1 << 30, 1e18))
    )


def _env_number(name: str, default: float, top: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a number") from None
    if not 0 <= value <= top:
        raise ConfigError(f"{name}={raw!r}: expected a number from 0 to {top:g}")
    return value
