#!/usr/bin/env bash
# The whole test suite: static checks, then pytest against real daemons.
# Starts the private Docker engine (hack/dev-daemons.sh) and stops it after.
# Extra arguments go to pytest (e.g. hack/test.sh -k plan).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin

hack/dev-daemons.sh start
eval "$(hack/dev-daemons.sh env)"
export HOMELAB_TEST_DOCKER_HOST="$DOCKER_HOST"
trap 'hack/dev-daemons.sh stop' EXIT

hack/check.sh
mkdir -p artifacts
"$BIN/python" -m pytest -p no:cacheprovider "$@"
