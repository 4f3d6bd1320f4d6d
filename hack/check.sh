#!/usr/bin/env bash
# Static checks: ruff lint, ruff format, mypy strict, the import layers
# (lint-imports, contracts in pyproject.toml), shellcheck. Run by hack/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
"$BIN/ruff" check reconciler tests hack
"$BIN/ruff" format --check reconciler tests hack
"$BIN/mypy" reconciler
layers=$("$BIN/lint-imports" --no-cache 2>&1) || { echo "$layers" >&2; exit 1; }
if command -v shellcheck >/dev/null; then
  shellcheck hack/*.sh .ci/run
else
  echo "check: shellcheck is missing (apt-get install shellcheck)" >&2
  exit 1
fi
echo "check: ruff, mypy, import layers and shellcheck clean"
