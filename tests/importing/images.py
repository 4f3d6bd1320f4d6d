"""The stand-in images of tests/data/compose-real: busybox-based, tagged like the real ones.

Each is `local/busybox:1` with an entrypoint that idles until SIGTERM (any
command or args a compose file passes are ignored by the script) and the few
programs the compose files call: `pg_isready` and `healthcheck.sh` (the
postgres and mariadb healthchecks, both succeed) and `/cron.sh` (nextcloud's
cron entrypoint). Built from a tar context with no RUN step, so the build
needs no container and no network; never pulled.
"""

from __future__ import annotations

import io
import tarfile
from typing import Any

from tests.conftest import BUSYBOX

IDLE = "trap 'exit 0' TERM INT; while :; do sleep 1 & wait $!; done"
TAGS = (
    "local/traefik:v3",
    "local/whoami:v1.10",
    "local/jellyfin:10.9",
    "local/postgres:16",
    "local/adminer:4",
    "local/mariadb:10.11",
    "local/redis:7-alpine",
    "local/nextcloud:29-apache",
    "local/vaultwarden:1.32",
)
_SCRIPTS = {
    "pg_isready": "#!/bin/sh\nexit 0\n",
    "healthcheck.sh": "#!/bin/sh\nexit 0\n",
    "cron.sh": f"#!/bin/sh\n{IDLE}\n",
}
_DOCKERFILE = f"""\
FROM {BUSYBOX}
COPY pg_isready healthcheck.sh /bin/
COPY cron.sh /cron.sh
ENTRYPOINT ["/bin/sh", "-c", "{IDLE}", "app"]
"""


def _context() -> io.BytesIO:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        files = {"Dockerfile": (_DOCKERFILE, 0o644)} | {
            name: (text, 0o755) for name, text in _SCRIPTS.items()
        }
        for name, (text, mode) in files.items():
            raw = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(raw), mode
            tar.addfile(info, io.BytesIO(raw))
    data.seek(0)
    return data


def build_images(client: Any) -> None:
    """Build the stand-in once and tag it with every name the compose files use."""
    image, _logs = client.images.build(
        fileobj=_context(), custom_context=True, tag=TAGS[0], rm=True, pull=False
    )
    for tag in TAGS[1:]:
        image.tag(tag)
