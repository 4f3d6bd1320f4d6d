#!/usr/bin/env bash
# The README's first command: the whole product in one process on the bundled
# example repository (`homelab up`). Extra arguments go to `homelab up`.
# Installs only the runtime dependencies into .venv (hack/test.sh adds the test extras).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=hack/venv.sh
. hack/venv.sh
exec "$BIN/homelab" up "$@"
