"""Container labels as the engine takes them, not as Kubernetes metadata labels.

A container's `labels` are Docker labels: routers and middlewares of a
reverse proxy live there (`traefik.http.routers.web.rule: Host(`x.lan`)`,
keys past 63 characters), so they are checked for what the engine and the
control plane need, not for DNS-label shape: a key is 1-255 printable
characters without spaces (the driver's own `homelab.reconciler/*` labels
win over the manifest's); a value is text without NUL or line breaks, up to 4096
characters. Pure. Used by `ContainerSpec.labels` (reconciler/resources/kinds.py).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

_KEY = re.compile(r"^[!-~]{1,255}$")  # printable ASCII, no space
_MAX_VALUE = 4096


def _texts(value: Any) -> Any:
    """Numbers and booleans written unquoted are the text the engine would store."""
    if isinstance(value, dict):
        return {
            k: ("true" if v else "false")
            if isinstance(v, bool)
            else (str(v) if isinstance(v, int | float) else v)
            for k, v in value.items()
        }
    return value


def _check(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        if not _KEY.match(key):
            raise ValueError(f"label key {key!r}: 1-255 printable characters without spaces")
        if len(value) > _MAX_VALUE or any(c in value for c in "\x00\r\n"):
            raise ValueError(
                f"label {key!r}: the value must be one line of at most {_MAX_VALUE} characters"
            )
    return dict(sorted(labels.items()))


DockerLabels = Annotated[dict[str, str], BeforeValidator(_texts), AfterValidator(_check)]
