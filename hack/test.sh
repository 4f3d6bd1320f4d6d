#!/usr/bin/env bash
# The README's second command: the whole test suite. Creates .venv (with the
# test extras), installs the Debian packages the tests need (as root), starts
# the private Docker engine (hack/dev-daemons.sh), runs the static checks, then pytest.
# Extra arguments go to pytest (e.g. hack/test.sh -k plan).
set -euo pipefail
cd "$(dirname "$0")/.."
# The test extras too (pytest, mypy, ruff, Playwright...); after hack/run.sh only those are added.
VENV_EXTRAS="test"
# shellcheck source=hack/venv.sh
. hack/venv.sh

started=$(hack/dev-daemons.sh start)
eval "$(hack/dev-daemons.sh env)"
export HOMELAB_TEST_DOCKER_HOST="$DOCKER_HOST"
if [ "$started" = "started" ]; then
  trap 'hack/dev-daemons.sh stop' EXIT
fi

hack/check.sh
# axe-core for the accessibility tests (a pinned npm tarball, sha512 checked; no npm needed)
"$BIN/python" -m tests.browser.axe
mkdir -p artifacts
"$BIN/python" -m pytest -p no:cacheprovider "$@"
