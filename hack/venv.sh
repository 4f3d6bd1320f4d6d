#!/usr/bin/env bash
# Sourced by hack/run.sh, hack/test.sh and the Makefile: creates .venv on first
# use and installs the project into it (editable). What it installs depends on
# VENV_EXTRAS, set by the caller before sourcing:
#   (unset)  the runtime dependencies only (`pip install -e .`): hack/run.sh
#   test     also the test extras (`.[test]`): hack/test.sh, make check
# Markers in .venv remember what is installed: .installed-runtime, .installed-test
# (the test one implies the runtime one). A marker older than pyproject.toml is
# stale, and everything is installed again.
# Uses uv (https://docs.astral.sh/uv/) when it is on PATH, which is much
# faster; otherwise python3's venv and pip. Needs only python3 with venv; as
# root on Debian it installs python3-venv when `python3 -m venv` fails.
# POSIX sh on purpose: the Makefile sources it with /bin/sh.
VENV=${VENV:-.venv}
VENV_EXTRAS=${VENV_EXTRAS:-}
BIN="$VENV/bin"
export BIN

venv_fresh() { [ -f "$VENV/.installed-$1" ] && ! [ pyproject.toml -nt "$VENV/.installed-$1" ]; }

venv_plain() {  # python3 -m venv, with the newest pip put in by Python's bundled one
  # Not ensurepip: it also installs setuptools and byte-compiles both (seconds).
  # The newest pip, not the bundled one (23.x): it evaluates the index's links
  # much faster; installing it costs about 1.5 s and saves about 5 s on the
  # project's dependencies. Offline, the bundled pip is installed instead.
  python3 -m venv --without-pip "$VENV" >/dev/null 2>&1 || return 1
  local whl
  whl=$("$BIN/python" -c 'import ensurepip, os
p = ensurepip._get_packages()["pip"]
print(p.wheel_path or os.path.join(os.path.dirname(ensurepip.__file__), "_bundled", p.wheel_name))' 2>/dev/null) || whl=""
  if [ -f "$whl" ]; then
    set -- -q --no-compile --disable-pip-version-check
    "$BIN/python" "$whl/pip" install "$@" --upgrade pip >/dev/null 2>&1 && return 0
    "$BIN/python" "$whl/pip" install "$@" --no-index "$whl" >/dev/null 2>&1 && return 0
  fi
  rm -rf "$VENV"
  python3 -m venv "$VENV" >/dev/null 2>&1
}

venv_create() {
  if command -v uv >/dev/null; then
    # --seed: pip inside too (hack/e2e-compose.sh builds wheels with .venv/bin/python -m pip).
    uv venv -q --seed --python "$(command -v python3)" "$VENV" && return
  fi
  venv_plain && return
  rm -rf "$VENV"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "venv: python3 -m venv failed; installing python3-venv" >&2
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 python3-venv >/dev/null
    venv_plain && return
  fi
  echo "could not create $VENV: install python3-venv (apt-get install -y python3-venv)" >&2
  return 1
}

venv_pip() {  # venv_pip ARGS...: `pip install ARGS` into the venv, through uv when present
  if command -v uv >/dev/null; then
    uv pip install -q --python "$BIN/python" "$@"
  else
    # --no-compile: byte-compiling every installed module took a third of the
    # install; Python compiles what it imports on first use instead.
    # PYTHONWARNINGS: newer pip shows the build backend's Python warnings even
    # with -q (setuptools' banner about editable installs of a flat layout).
    PYTHONWARNINGS=ignore "$BIN/python" -m pip install -q --no-compile --disable-pip-version-check "$@"
  fi
}

venv_test_requirements() {  # writes the test extras of pyproject.toml to a requirements file
  "$BIN/python" -c 'import sys, tomllib
extras = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]
open(sys.argv[1], "w").write("\n".join(extras["test"]) + "\n")' "$1"
}

venv_setup() {
  local want=runtime
  [ "$VENV_EXTRAS" = test ] && want="test"
  if [ -f "$VENV/.installed" ]; then  # the marker of the earlier venv.sh, which installed .[test]
    mv "$VENV/.installed" "$VENV/.installed-test"
    cp -p "$VENV/.installed-test" "$VENV/.installed-runtime"
  fi
  venv_fresh test && return 0
  [ "$want" = runtime ] && venv_fresh runtime && return 0
  [ -x "$BIN/python" ] || venv_create || return 1
  if [ "$want" = test ] && venv_fresh runtime; then
    echo "setting up $VENV: adding the test extras..." >&2
    venv_test_requirements "$VENV/.test-requirements.txt" || return 1
    venv_pip -r "$VENV/.test-requirements.txt" || return 1
  else
    echo "setting up $VENV ($want; first run only)..." >&2
    rm -f "$VENV"/.installed-*
    if [ "$want" = test ]; then venv_pip -e '.[test]' || return 1; else venv_pip -e . || return 1; fi
    touch "$VENV/.installed-runtime"
  fi
  touch "$VENV/.installed-$want"
}

venv_setup || exit 1
