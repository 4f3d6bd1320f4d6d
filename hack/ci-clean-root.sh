#!/usr/bin/env bash
# Runs .ci/run as CI would on a fresh machine: in a clean Debian bookworm root
# (debootstrap minbase with only python3, git and ca-certificates), in a fresh
# clone of a committed branch with a read-only copy of ../shared beside it, as
# root, with CI=true and no standard input. Whatever .ci/run needs beyond that
# must be installed by the project's own scripts, so a missing install step
# fails here instead of on a new machine. The root's dockerd is a private one
# started by the scripts inside the root.
#
# Usage (as root, from a checkout): hack/ci-clean-root.sh [--keep] [--branch NAME]
#   --keep         keep the root after the run (it is always unmounted), to look around
#   --branch NAME  the branch to clone [the checkout's current branch]; commit first:
#                  only committed work is tested
# Passed from this environment into the run: PIP_*, SSL_CERT_FILE/DIR,
# REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, NODE_EXTRA_CA_CERTS and the *_proxy variables.
# Variables:
#   HOMELAB_CLEAN_ROOT [/var/tmp/cleanroot]  where the root is made (removed first)
#   HOMELAB_CLEAN_CACHE [/var/cache/homelab-ci]  caches the pristine debootstrap as a
#                  tarball (nothing of the project's scripts is in it); rm it to redo
#   HOMELAB_SHARED_DIR [../shared of the checkout]  copied read-only beside the clone
#   HOMELAB_E2E_PORT [18480]  the e2e's UI port: the root shares the host's network,
#                  so the default 8080 could collide with anything else on the machine
# The log is $HOMELAB_CLEAN_ROOT.log; the last line says how .ci/run ended.
set -euo pipefail
cd "$(dirname "$0")/.."
TOP=$(pwd)
ROOT=${HOMELAB_CLEAN_ROOT:-/var/tmp/cleanroot}
CACHE=${HOMELAB_CLEAN_CACHE:-/var/cache/homelab-ci}
PORT=${HOMELAB_E2E_PORT:-18480}
SHARED=${HOMELAB_SHARED_DIR:-$TOP/../shared}
LOG="$ROOT.log"
KEEP=0
BRANCH=$(git rev-parse --abbrev-ref HEAD)
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) KEEP=1 ;;
    --branch) BRANCH=$2; shift ;;
    *) echo "usage: $0 [--keep] [--branch NAME]" >&2; exit 2 ;;
  esac
  shift
done
CLONE=/work/ci/homelab-reconciler  # inside the root; ../shared beside it
START=$(date +%s)

say() { printf 'ci-clean-root [%4ss]: %s\n' "$(($(date +%s) - START))" "$*" >&2; }
die() { say "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run it as root (debootstrap, mount, pivot_root)"
case "$ROOT" in /?*) ;; *) die "HOMELAB_CLEAN_ROOT must be an absolute path other than /" ;; esac
git rev-parse --verify -q "refs/heads/$BRANCH" >/dev/null || die "no branch $BRANCH"

net_env() {  # the variables that tell how to reach the registries (pip, CAs, proxies)
  env | grep -E '^(PIP_[A-Z_]*|SSL_CERT_FILE|SSL_CERT_DIR|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE|NODE_EXTRA_CA_CERTS|(https?|no|all)_proxy|(HTTPS?|NO|ALL)_PROXY)=' || true
}

apt_mirror() {  # the host's Debian mirror, as hack/e2e-compose.sh finds it
  local uri
  uri=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
  [ -n "$uri" ] || uri=$(grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

mounts_under_root() {  # every mount point at or below $ROOT, deepest first
  awk -v root="$ROOT" '$5 == root || index($5, root "/") == 1 {print $5}' /proc/self/mountinfo | sort -r
}

RUN_NS=""  # the mount namespace the run lives in (see step 5)
# shellcheck disable=SC2317  # called by cleanup, run by the EXIT trap
processes_of_run() {  # pids in the run's mount namespace, and all their descendants (containers)
  [ -n "$RUN_NS" ] || return 0
  local dir seeds=""
  for dir in /proc/[0-9]*; do
    [ "$(readlink "$dir/ns/mnt" 2>/dev/null || true)" = "$RUN_NS" ] && seeds="$seeds ${dir#/proc/}"
  done
  [ -n "$seeds" ] || return 0
  ps -e -o pid=,ppid= | awk -v seeds="$seeds" '
    BEGIN { n = split(seeds, s, " "); for (i = 1; i <= n; i++) keep[s[i]] = 1 }
    { parent[$1] = $2 }
    END {
      do { more = 0; for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; more = 1 } } while (more)
      for (p in keep) print p
    }'
}

# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local rc=$? pids point left
  # Anything .ci/run left running (its dockerd, containers) would keep the
  # mounts busy: end those processes, by pid, first politely.
  pids=$(processes_of_run)
  if [ -n "$pids" ]; then
    say "ending processes left in the root: $(echo "$pids" | tr '\n' ' ')"
    # shellcheck disable=SC2086  # a list of pids
    kill $pids 2>/dev/null || true
    for _ in $(seq 1 50); do [ -z "$(processes_of_run)" ] && break; sleep 0.2; done
    pids=$(processes_of_run)
    # shellcheck disable=SC2086
    [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
    sleep 0.5
  fi
  for point in $(mounts_under_root); do
    umount "$point" 2>/dev/null || umount -l "$point" || true
  done
  left=$(mounts_under_root)
  [ -z "$left" ] || say "still mounted: $left"
  if [ "$KEEP" = 1 ]; then
    say "kept $ROOT (unmounted); the clone is $ROOT$CLONE"
  elif [ -z "$left" ]; then
    rm -rf --one-file-system "$ROOT"
  fi
  say "finished with status $rc (log: $LOG)"
}

# A root from an earlier run (kept, or interrupted) is removed: the run must start clean.
if [ -e "$ROOT" ]; then
  [ -z "$(mounts_under_root)" ] || die "$ROOT is still mounted (an earlier run still going?)"
  rm -rf --one-file-system "$ROOT"
fi

command -v debootstrap >/dev/null || {
  say "installing debootstrap on the host"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null
}

trap cleanup EXIT
: >"$LOG"

# 1. The root: debootstrap once, then from the cached tarball of that pristine root.
packages=python3,git,ca-certificates
mirror=$(apt_mirror)
tarball="$CACHE/bookworm-minbase-$(echo "$packages $mirror" | sha256sum | cut -c1-12).tar"
mkdir -p "$ROOT" "$CACHE"
if [ -s "$tarball" ]; then
  say "root from $tarball (debootstrap --variant=minbase --include=$packages bookworm, cached)"
  tar -C "$ROOT" -xpf "$tarball"
else
  say "debootstrap --variant=minbase --include=$packages bookworm $ROOT $mirror"
  debootstrap --variant=minbase --include="$packages" bookworm "$ROOT" "$mirror" >>"$LOG" 2>&1 ||
    die "debootstrap failed; see $LOG"
  rm -rf "$ROOT"/var/cache/apt/archives/*.deb
  tar -C "$ROOT" -cpf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
fi

# 2. The host's way to the registries: apt's configuration, DNS, hosts, the
# certificates it trusts (the registries may be reached through a proxy with
# its own CA), pip's configuration (its files, and the PIP_*, CA and proxy
# variables passed to the run below); local package folders that pip's
# configuration names are mounted read-only.
say "apt, DNS, CA certificates and pip configuration from the host"
[ -e /etc/apt/sources.list ] || rm -f "$ROOT/etc/apt/sources.list"  # debootstrap's; the host's sources replace it
cp -a /etc/apt/. "$ROOT/etc/apt/"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
cp -a /etc/ssl/certs/. "$ROOT/etc/ssl/certs/"
if [ -d /usr/local/share/ca-certificates ]; then
  cp -a /usr/local/share/ca-certificates/. "$ROOT/usr/local/share/ca-certificates/"
fi
[ -s "$ROOT/etc/hosts" ] || cp /etc/hosts "$ROOT/etc/hosts"
pip_files=()
for f in /etc/pip.conf /etc/xdg/pip "$HOME/.config/pip" "$HOME/.pip" "${PIP_CONFIG_FILE:-}"; do
  if [ -z "$f" ] || [ ! -e "$f" ]; then continue; fi
  mkdir -p "$ROOT$(dirname "$f")"
  cp -a "$f" "$ROOT$(dirname "$f")/"
  if [ -d "$f" ]; then pip_files+=("$f"/*); else pip_files+=("$f"); fi
done
pip_dirs=$({
  [ ${#pip_files[@]} -gt 0 ] && cat "${pip_files[@]}" 2>/dev/null
  net_env
} | grep -oE '(file://)?/[^ "=]+' | sed 's|^file://||' | sort -u)
mount_ro=()
for d in $pip_dirs; do
  [ "$(basename "$d")" = simple ] && d=$(dirname "$d")  # a local index: its files lie beside simple/
  [ -d "$d" ] && [ ! -e "$ROOT$d" ] && mount_ro+=("$d")
done

# 3. The mounts: the root, /proc, /sys (with the cgroup hierarchies), /dev (with pts and shm).
say "mounting /proc, /sys, /sys/fs/cgroup, /dev, /dev/pts, /dev/shm${mount_ro[*]:+ and, read-only, ${mount_ro[*]}}"
# The root itself becomes a mount point, as / is on a machine: dockerd's layer
# unpacking remounts / private in a new namespace, which fails (EINVAL) on a
# plain folder.
mount --bind "$ROOT" "$ROOT"
mount --make-private "$ROOT"
mount -t proc proc "$ROOT/proc"
mount --rbind /sys "$ROOT/sys"
mount --make-rslave "$ROOT/sys"
mount --rbind /dev "$ROOT/dev"
mount --make-rslave "$ROOT/dev"
for d in "${mount_ro[@]}"; do
  mkdir -p "$ROOT$d"
  mount --bind "$d" "$ROOT$d"
  mount -o remount,bind,ro "$ROOT$d"
done

# 4. A fresh clone of the branch, and a read-only copy of shared/ beside it (as CI lays it).
say "git clone --branch $BRANCH $TOP -> $CLONE ($(git rev-parse --short "$BRANCH"))"
mkdir -p "$ROOT$(dirname "$CLONE")"
git clone -q --branch "$BRANCH" --single-branch "$TOP" "$ROOT$CLONE"
if [ -d "$SHARED" ]; then
  cp -a "$SHARED" "$ROOT$(dirname "$CLONE")/shared"
  chmod -R a-w "$ROOT$(dirname "$CLONE")/shared"
fi

# 5. The run: a clean environment (no host PATH or virtualenv), CI=true, no
# stdin. In a mount namespace of its own whose root is the clean root
# (pivot_root, not chroot): runc puts `docker exec` and healthchecks in the
# namespace's root, which under a plain chroot is the host's / (the e2e's
# healthchecks then fail). The namespace goes away with the run's last process.
envs=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
  TERM=dumb CI=true HOMELAB_E2E_PORT="$PORT")
while IFS= read -r var; do envs+=("$var"); done < <(net_env)
say "pivot_root into $ROOT (own mount namespace): cd $CLONE && CI=true bash .ci/run </dev/null (log: $LOG)"
# shellcheck disable=SC2016  # expanded by the inner shell
unshare --mount --propagation private /bin/bash -c '
  set -e
  cd "$1" && mkdir -p .oldroot && pivot_root . .oldroot && cd /
  umount -l /.oldroot && rmdir /.oldroot
  shift
  exec /usr/bin/env -i "$@"
' _ "$ROOT" "${envs[@]}" /bin/bash -c "cd $CLONE && exec bash .ci/run" </dev/null > >(tee -a "$LOG") 2>&1 &
pid=$!
self_ns=$(readlink /proc/self/ns/mnt)
for _ in $(seq 1 100); do
  RUN_NS=$(readlink "/proc/$pid/ns/mnt" 2>/dev/null || true)
  [ -n "$RUN_NS" ] && [ "$RUN_NS" != "$self_ns" ] && break
  RUN_NS=""
  sleep 0.05
done
set +e
wait "$pid"
rc=$?
set -e
say ".ci/run exited $rc after $(($(date +%s) - START)) s" 2>&1 | tee -a "$LOG" >&2
exit "$rc"
