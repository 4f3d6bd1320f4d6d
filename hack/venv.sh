#!/usr/bin/env bash
# Sourced by hack/run.sh and hack/test.sh: creates .venv on first use (or when
# pyproject.toml changed) and installs the project with its test extras.
# Needs only python3 (with venv; on Debian, apt-get install python3-venv).
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" || {
    echo "could not create $VENV: install python3-venv (apt-get install -y python3-venv)" >&2
    exit 1
  }
fi
if [ ! -f "$VENV/.installed" ] || [ pyproject.toml -nt "$VENV/.installed" ]; then
  echo "setting up $VENV (first run only)..." >&2
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e '.[test]'
  touch "$VENV/.installed"
fi
BIN="$VENV/bin"
export BIN
