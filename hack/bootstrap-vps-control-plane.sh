#!/usr/bin/env bash
# Installs, or upgrades, the homelab-reconciler control plane on this machine:
#   1. tree   creates the runtime tree with the right owners and modes
#   2. repo   creates an example git repository when HOMELAB_REPO_PATH is absent
#   3. image  builds wheels on the host and the image from them (old image kept as :previous)
#   4. stack  (re)starts compose.yaml with docker-compose, then waits for healthy services
# Idempotent: run it again after `git pull` to upgrade; every event, world
# document and queued action is kept. Usage (as root, from a checkout):
#   hack/bootstrap-vps-control-plane.sh
# Variables (defaults in brackets):
#   HOMELAB_ROOT [/opt/homelab]  HOMELAB_REPO_PATH [/srv/homelab-repo]
#   HOMELAB_FILES_ROOT [/srv/homelab]  HOMELAB_IMAGE [homelab-reconciler:local]
#   HOMELAB_BASE_IMAGE [debian:bookworm-slim]  HOMELAB_UID [1000]
#   HOMELAB_PROJECT [homelab]  HOMELAB_UI_HOST [127.0.0.1]  HOMELAB_UI_PORT [8080]
#   HOMELAB_BOOTSTRAP_STEPS [tree,repo,image,stack]  HOMELAB_COMPOSE [docker-compose]
#   HOMELAB_WHEEL_PYTHON [python3, else a venv of it]  HOMELAB_FORCE_RECREATE [0]
#   DOCKER_HOST [unix:///var/run/docker.sock] (a unix socket: it is mounted into the
#     executor and docker-proxy, the read-only API proxy the collector reads through)
set -euo pipefail
cd "$(dirname "$0")/.."
TOP=$(pwd)

export HOMELAB_ROOT=${HOMELAB_ROOT:-/opt/homelab}
export HOMELAB_REPO_PATH=${HOMELAB_REPO_PATH:-/srv/homelab-repo}
export HOMELAB_FILES_ROOT=${HOMELAB_FILES_ROOT:-/srv/homelab}
export HOMELAB_IMAGE=${HOMELAB_IMAGE:-homelab-reconciler:local}
export HOMELAB_UI_HOST=${HOMELAB_UI_HOST:-127.0.0.1}
export HOMELAB_UI_PORT=${HOMELAB_UI_PORT:-8080}
HOMELAB_BASE_IMAGE=${HOMELAB_BASE_IMAGE:-debian:bookworm-slim}
HOMELAB_UID=${HOMELAB_UID:-1000}
HOMELAB_PROJECT=${HOMELAB_PROJECT:-homelab}
STEPS=${HOMELAB_BOOTSTRAP_STEPS:-tree,repo,image,stack}
read -r -a COMPOSE <<<"${HOMELAB_COMPOSE:-docker-compose}"
export DOCKER_HOST=${DOCKER_HOST:-unix:///var/run/docker.sock}
QUEUE_STATES="pending approved running done failed rejected superseded"

say() { printf 'bootstrap: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
want() { [[ ",$STEPS," == *",$1,"* ]]; }

# Absolute paths only: the same path is mounted inside the containers.
for var in HOMELAB_ROOT HOMELAB_REPO_PATH HOMELAB_FILES_ROOT; do
  [[ ${!var} == /* ]] || die "$var must be an absolute path (got '${!var}')"
done

# The runtime tree belongs to the services' uid; run as a normal user it stays ours.
if [ "$(id -u)" = 0 ]; then OWNER_UID=$HOMELAB_UID OWNER_GID=$HOMELAB_UID; else OWNER_UID=$(id -u) OWNER_GID=$(id -g); fi
owner() { echo "$OWNER_UID:$OWNER_GID"; }

make_dir() { # make_dir MODE DIR: create or repair one folder
  mkdir -p "$2"
  chmod "$1" "$2"
  chown "$(owner)" "$2"
}

step_tree() {
  say "runtime tree in $HOMELAB_ROOT (owner $(owner))"
  make_dir 0750 "$HOMELAB_ROOT"
  for sub in events world state logs cache stacks queue; do make_dir 0750 "$HOMELAB_ROOT/$sub"; done
  for state in $QUEUE_STATES; do make_dir 0750 "$HOMELAB_ROOT/queue/$state"; done
  make_dir 0700 "$HOMELAB_ROOT/secrets"
  # Repair anything left with another owner (e.g. a file copied in as root); never delete.
  find "$HOMELAB_ROOT" \( ! -uid "$OWNER_UID" -o ! -gid "$OWNER_GID" \) -exec chown -h "$(owner)" {} +
  find "$HOMELAB_ROOT/secrets" -type f -exec chmod 0600 {} +
  make_dir 0755 "$HOMELAB_FILES_ROOT"
}

step_repo() {
  if [ -e "$HOMELAB_REPO_PATH" ]; then
    git -C "$HOMELAB_REPO_PATH" rev-parse --verify -q HEAD >/dev/null ||
      die "$HOMELAB_REPO_PATH exists but is not a git repository with a commit"
    say "repository $HOMELAB_REPO_PATH at $(git -C "$HOMELAB_REPO_PATH" rev-parse --short HEAD)"
    return
  fi
  say "creating an example repository in $HOMELAB_REPO_PATH (from $TOP/manifests)"
  mkdir -p "$HOMELAB_REPO_PATH"
  cp -r "$TOP/manifests" "$TOP/compose" "$HOMELAB_REPO_PATH/"
  # The example's files go where the executor may write and the observer may look.
  grep -rlF /tmp/homelab-example "$HOMELAB_REPO_PATH/manifests" |
    xargs -r sed -i "s|/tmp/homelab-example|$HOMELAB_FILES_ROOT/example|g"
  git -C "$HOMELAB_REPO_PATH" init -q -b main
  git -C "$HOMELAB_REPO_PATH" add -A
  git -C "$HOMELAB_REPO_PATH" -c user.name=bootstrap -c user.email=bootstrap@localhost \
    -c commit.gpgsign=false commit -q -m "Example homelab created by the bootstrap"
  chmod -R a+rX "$HOMELAB_REPO_PATH"
}

wheel_python() {
  # Debian's python3 often lacks pip: build the wheels from a throwaway venv then.
  # The wheels must match the image's python (3.11 on bookworm).
  if [ -n "${HOMELAB_WHEEL_PYTHON:-}" ]; then echo "$HOMELAB_WHEEL_PYTHON"; return; fi
  if python3 -m pip --version >/dev/null 2>&1; then echo python3; return; fi
  python3 -m venv "$TOP/dist/.build-venv" >&2 || die "python3 -m venv failed (apt-get install python3-venv)"
  echo "$TOP/dist/.build-venv/bin/python"
}

step_image() {
  command -v docker >/dev/null || die "docker is missing (apt-get install docker.io)"
  say "building wheels (dist/wheels)"
  rm -rf "$TOP/dist/wheels"
  mkdir -p "$TOP/dist"
  "$(wheel_python)" -m pip wheel -q --disable-pip-version-check . -w "$TOP/dist/wheels"
  if docker image inspect "$HOMELAB_IMAGE" >/dev/null 2>&1; then
    docker tag "$HOMELAB_IMAGE" "${HOMELAB_IMAGE%:*}:previous"
    say "kept the running image as ${HOMELAB_IMAGE%:*}:previous (for rollback)"
  fi
  say "building $HOMELAB_IMAGE from $HOMELAB_BASE_IMAGE"
  docker build -q --network host --build-arg "BASE_IMAGE=$HOMELAB_BASE_IMAGE" \
    -t "$HOMELAB_IMAGE" . >/dev/null
  docker image prune -f >/dev/null
}

socket_path() {
  case "$DOCKER_HOST" in
    unix://*) echo "${DOCKER_HOST#unix://}" ;;
    *) die "DOCKER_HOST=$DOCKER_HOST: the executor and docker-proxy need a local unix socket to mount" ;;
  esac
}

step_stack() {
  HOMELAB_DOCKER_SOCKET=$(socket_path)
  export HOMELAB_DOCKER_SOCKET
  [ -S "$HOMELAB_DOCKER_SOCKET" ] || die "no Docker socket at $HOMELAB_DOCKER_SOCKET"
  HOMELAB_DOCKER_GID=$(stat -c %g "$HOMELAB_DOCKER_SOCKET")
  export HOMELAB_DOCKER_GID
  # docker-compose reads .env beside compose.yaml: plain `docker-compose ps|logs|restart`
  # in this folder then use the same project, paths and socket as the bootstrap did.
  cat >"$TOP/.env.tmp" <<EOF
COMPOSE_PROJECT_NAME=$HOMELAB_PROJECT
HOMELAB_IMAGE=$HOMELAB_IMAGE
HOMELAB_ROOT=$HOMELAB_ROOT
HOMELAB_REPO_PATH=$HOMELAB_REPO_PATH
HOMELAB_FILES_ROOT=$HOMELAB_FILES_ROOT
HOMELAB_DOCKER_SOCKET=$HOMELAB_DOCKER_SOCKET
HOMELAB_DOCKER_GID=$HOMELAB_DOCKER_GID
HOMELAB_UI_HOST=$HOMELAB_UI_HOST
HOMELAB_UI_PORT=$HOMELAB_UI_PORT
EOF
  mv "$TOP/.env.tmp" "$TOP/.env"
  say "starting the stack (project $HOMELAB_PROJECT, socket group $HOMELAB_DOCKER_GID; settings in $TOP/.env)"
  local recreate=()
  [ "${HOMELAB_FORCE_RECREATE:-0}" = 1 ] && recreate=(--force-recreate)
  "${COMPOSE[@]}" -p "$HOMELAB_PROJECT" -f "$TOP/compose.yaml" up -d --remove-orphans "${recreate[@]}"
  local ids=() unhealthy=""
  for _ in $(seq 1 90); do
    mapfile -t ids < <("${COMPOSE[@]}" -p "$HOMELAB_PROJECT" -f "$TOP/compose.yaml" ps -q)
    unhealthy=$(docker inspect -f '{{.Name}} {{.State.Health.Status}}' "${ids[@]}" | grep -v ' healthy$' || true)
    [ -z "$unhealthy" ] && break
    sleep 2
  done
  [ -z "$unhealthy" ] || die "not healthy after 180 s: $unhealthy (docker-compose -p $HOMELAB_PROJECT logs)"
  say "all services healthy; UI on http://$HOMELAB_UI_HOST:$HOMELAB_UI_PORT/"
  if [ -s "$HOMELAB_ROOT/state/ui_token" ]; then
    say "login token: in $HOMELAB_ROOT/state/ui_token (sudo cat it; not printed, so it stays out of logs)"
  fi
}

want tree && step_tree
want repo && step_repo
want image && step_image
want stack && step_stack
say "done"
