#!/usr/bin/env bash
# Starts (or stops) the daemons the tests use: a private Docker engine on its
# own socket with a tiny local/busybox:1 image imported from busybox-static.
# Usage: hack/dev-daemons.sh start|stop|env
#   start  installs what is missing (as root, Debian), starts dockerd, imports the image;
#          prints "started" or "running" (already up) on stdout
#   env    prints `export DOCKER_HOST=...` for the running engine
# State lives under $HOMELAB_DEV_DIR (default /tmp/homelab-dev).
set -euo pipefail

DEV_DIR=${HOMELAB_DEV_DIR:-/tmp/homelab-dev}
SOCK="$DEV_DIR/docker.sock"
PIDFILE="$DEV_DIR/dockerd.pid"
IMAGE=local/busybox:1

need_packages() {
  local missing=()
  # Every tool hack/test.sh, the tests and hack/e2e-compose.sh (run by .ci/run) call
  # beyond python3 and git; README.md lists the same packages.
  { command -v dockerd >/dev/null && command -v docker >/dev/null; } || missing+=(docker.io)
  [ -x /bin/busybox ] || missing+=(busybox-static)
  command -v docker-compose >/dev/null || missing+=(docker-compose)
  command -v chromium >/dev/null || missing+=(chromium)
  command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  command -v wrk >/dev/null || missing+=(wrk)
  command -v shellcheck >/dev/null || missing+=(shellcheck)
  [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
  # The remote-source tests: git http-backend behind nginx, an htpasswd by openssl.
  [ -x /usr/sbin/fcgiwrap ] || missing+=(fcgiwrap)
  command -v openssl >/dev/null || missing+=(openssl)
  # The signed-commit tests: git verify-commit calls gpg (ssh-keygen comes with openssh).
  command -v gpg >/dev/null || missing+=(gnupg)
  # Playwright's bundled node (the driver of the browser tests) links libatomic.so.1.
  /sbin/ldconfig -p 2>/dev/null | grep -q 'libatomic\.so\.1 ' || missing+=(libatomic1)
  command -v curl >/dev/null || missing+=(curl)                   # e2e: the UI's API
  command -v debootstrap >/dev/null || missing+=(debootstrap)     # e2e: the base image
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "dev-daemons: missing packages ${missing[*]}; install them as root (apt-get install -y ${missing[*]})" >&2
      exit 1
    fi
    echo "dev-daemons: installing ${missing[*]}" >&2
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
  fi
}

engine_up() { docker -H "unix://$SOCK" version >/dev/null 2>&1; }

start() {
  need_packages
  mkdir -p "$DEV_DIR"
  local state=running
  if ! engine_up; then
    state=started
    # A dockerd of ours that is still shutting down (or a pid file left by a
    # machine that stopped) would make the new one refuse to start.
    stop_pid
    rm -f "$SOCK"
    nohup dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs \
      --data-root "$DEV_DIR/data" --exec-root "$DEV_DIR/exec" --pidfile "$PIDFILE" \
      -H "unix://$SOCK" >"$DEV_DIR/dockerd.log" 2>&1 &
    for _ in $(seq 1 100); do engine_up && break; sleep 0.2; done
    engine_up || { echo "dev-daemons: dockerd did not start; see $DEV_DIR/dockerd.log" >&2; tail -20 "$DEV_DIR/dockerd.log" >&2; exit 1; }
  fi
  if ! docker -H "unix://$SOCK" image inspect "$IMAGE" >/dev/null 2>&1; then
    local rootfs="$DEV_DIR/busybox-rootfs"
    rm -rf "$rootfs"
    mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/www" "$rootfs/etc"
    cp /bin/busybox "$rootfs/bin/busybox"
    for tool in sh sleep httpd wget cat echo date hostname ls true false env id kill ps nc mkdir touch; do
      ln -sf busybox "$rootfs/bin/$tool"
    done
    echo 'root:x:0:0:root:/:/bin/sh' >"$rootfs/etc/passwd"
    tar -C "$rootfs" -c . | docker -H "unix://$SOCK" import -c 'ENV PATH=/bin' - "$IMAGE" >/dev/null
  fi
  echo "dev-daemons: docker engine at unix://$SOCK with $IMAGE" >&2
  echo "$state"  # "started" when this call started the engine (the caller stops it)
}

# Ends the dockerd named by our pid file and waits until the process is gone
# (the socket goes quiet well before containerd has shut down and the pid file
# is removed); a pid file whose process is not a dockerd is stale and removed.
end_process() {  # pidfile, expected command name
  [ -f "$1" ] || return 0
  local pid
  pid=$(cat "$1" 2>/dev/null || true)
  if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = "$2" ]; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do
      [ -d "/proc/$pid" ] || break
      sleep 0.2
    done
    if [ -d "/proc/$pid" ]; then
      echo "dev-daemons: $2 $pid did not stop in 30 s; killing it" >&2
      kill -9 "$pid" 2>/dev/null || true
      sleep 0.5
    fi
  fi
  rm -f "$1"
}

# dockerd first; then the containerd it started, which outlives a dockerd
# that was killed outright and would make the next dockerd time out.
stop_pid() {
  end_process "$PIDFILE" dockerd
  end_process "$DEV_DIR/exec/containerd/containerd.pid" containerd
}

stop() { stop_pid; }

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  env) echo "export DOCKER_HOST=unix://$SOCK" ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
