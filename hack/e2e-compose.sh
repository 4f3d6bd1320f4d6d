#!/usr/bin/env bash
# The real stack test, run by .ci/run after `make test`: does what
# docs/vps-control-plane.md tells an operator, against the private Docker
# engine of hack/dev-daemons.sh, and echoes every step.
#  - base image: debootstrap of bookworm (python3, venv, git, docker-compose, openssh-client, gnupg),
#    cached in $HOMELAB_E2E_CACHE, imported with `docker import` (no registry)
#  - install + upgrade: hack/bootstrap-vps-control-plane.sh, twice, on a temp root
#  - verify: docker-compose ps healthy, /summary, commit → pending action,
#    approve through the API → applied, restart loses nothing, checkpoint
#    deleted → world rebuilt identical, upgrade keeps every event/world doc/action,
#    hand changes (docker stop, docker update --restart=no) seen by the collector
#    through the read-only proxy and proposed as `start` and `update`
# Everything it started is torn down at the end (pass --keep to look around).
set -euo pipefail
export LC_ALL=C  # sort and comm must agree
cd "$(dirname "$0")/.."
TOP=$(pwd)
CACHE=${HOMELAB_E2E_CACHE:-/var/cache/homelab-e2e}
BASE_IMAGE=local/python-base:bookworm
BASE_PACKAGES=python3,python3-venv,ca-certificates,git,docker-compose,openssh-client,gnupg
PORT=${HOMELAB_E2E_PORT:-8080}
KEEP=${1:-}
WORK=$(mktemp -d /tmp/homelab-e2e.XXXXXX)
chmod 0755 "$WORK"
START=$(date +%s)

step() { printf '\ne2e [%3ss] == %s\n' "$(($(date +%s) - START))" "$*"; }
ok() { printf 'e2e   ok: %s\n' "$*"; }
fail() { printf 'e2e FAILED: %s\n' "$*" >&2; exit 1; }

hack/dev-daemons.sh start
eval "$(hack/dev-daemons.sh env)"
export DOCKER_HOST
export HOMELAB_ROOT=$WORK/root HOMELAB_REPO_PATH=$WORK/repo HOMELAB_FILES_ROOT=$WORK/files
export HOMELAB_IMAGE=homelab-reconciler:e2e HOMELAB_BASE_IMAGE=$BASE_IMAGE
export HOMELAB_PROJECT=homelab-e2e HOMELAB_UI_HOST=127.0.0.1 HOMELAB_UI_PORT=$PORT
export HOMELAB_DOCKER_SOCKET=${DOCKER_HOST#unix://}
HOMELAB_DOCKER_GID=$(stat -c %g "$HOMELAB_DOCKER_SOCKET")
export HOMELAB_DOCKER_GID
# The private engine uses the vfs storage driver: creating a container copies
# the whole image, and five at once on a busy 2-core machine took longer than
# docker-compose's default 60 s HTTP timeout (the bootstrap's `up -d` failed).
export COMPOSE_HTTP_TIMEOUT=${COMPOSE_HTTP_TIMEOUT:-300}
# As the docs say: plain docker-compose in the checkout, settings from the .env the bootstrap wrote.
dc() { docker-compose "$@"; }

teardown() {
  local rc=$?
  if [ "$rc" != 0 ]; then
    echo "e2e: failure; last logs of the stack:" >&2
    dc logs --tail 40 >&2 || true
  fi
  if [ "$KEEP" = --keep ]; then
    echo "e2e: kept $WORK and project $HOMELAB_PROJECT" >&2
  else
    dc down -v --remove-orphans >/dev/null 2>&1 || true
    docker ps -aq --filter label=homelab.reconciler/managed-by=homelab-reconciler | xargs -r docker rm -f >/dev/null
    docker rmi -f "$HOMELAB_IMAGE" "${HOMELAB_IMAGE%:*}:previous" >/dev/null 2>&1 || true
    docker image prune -f >/dev/null 2>&1 || true
    rm -rf "$WORK" "$TOP/dist/wheels" "$TOP/.env"
  fi
  echo "e2e: finished in $(($(date +%s) - START)) s with status $rc" >&2
}
trap teardown EXIT

apt_mirror() {
  local uri
  uri=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
  [ -n "$uri" ] || uri=$(grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

build_base_image() {
  if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    ok "base image $BASE_IMAGE already imported"
    return
  fi
  local key tarball rootfs
  key=$(echo "bookworm $BASE_PACKAGES" | sha256sum | cut -c1-12)
  tarball="$CACHE/python-base-bookworm-$key.tar"
  mkdir -p "$CACHE"
  if [ ! -s "$tarball" ]; then
    rootfs="$CACHE/rootfs.$$"
    echo "e2e: debootstrap bookworm from $(apt_mirror) (cached afterwards in $tarball)"
    debootstrap --variant=minbase --include="$BASE_PACKAGES" bookworm "$rootfs" "$(apt_mirror)" >/dev/null
    tar -C "$rootfs" --exclude=./var/cache/apt --exclude=./var/lib/apt/lists \
      --exclude=./usr/share/doc --exclude=./usr/share/man --exclude=./usr/share/locale \
      --exclude=./usr/share/info -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
  fi
  docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' "$tarball" "$BASE_IMAGE" >/dev/null
  ok "imported $BASE_IMAGE ($(docker image inspect -f '{{.Size}}' "$BASE_IMAGE" | numfmt --to=iec))"
}

api() { # api METHOD PATH [curl args...]: the UI's JSON API with the login token
  local method=$1 path=$2
  shift 2
  curl -fsS -X "$method" -H "Authorization: Bearer $(cat "$HOMELAB_ROOT/state/ui_token")" \
    "http://127.0.0.1:$PORT$path" "$@"
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds
  local limit=$1 what=$2
  shift 2
  for _ in $(seq 1 $((limit * 2))); do
    if "$@" >/dev/null 2>&1; then ok "$what"; return; fi
    sleep 0.5
  done
  fail "timed out after ${limit}s waiting for: $what"
}

snapshot() { # snapshot FILE: every event line, world document and queued action, sorted
  {
    find "$HOMELAB_ROOT/events" -name '*.jsonl' -exec cat {} +
    find "$HOMELAB_ROOT/world" "$HOMELAB_ROOT/queue" -name '*.json' -printf '%P\n'
  } | sort >"$1"
}

kept_everything() { # kept_everything BEFORE AFTER: every line of BEFORE is still in AFTER
  local lost
  lost=$(comm -23 "$1" "$2" | wc -l)
  [ "$lost" = 0 ] || { comm -23 "$1" "$2" | head -5 >&2; fail "$lost lines lost"; }
}

step "base image from Debian packages"
build_base_image

step "install: hack/bootstrap-vps-control-plane.sh (root $HOMELAB_ROOT, repo $HOMELAB_REPO_PATH)"
HOMELAB_WHEEL_PYTHON=${HOMELAB_WHEEL_PYTHON:-$TOP/.venv/bin/python} hack/bootstrap-vps-control-plane.sh
# (Python's zipfile, not `unzip -l | grep -q`: under pipefail that pipeline failed
# at random when grep exited early and unzip got SIGPIPE.)
"$TOP/.venv/bin/python" - "$(ls "$TOP"/dist/wheels/homelab_reconciler-*.whl)" <<'PY' ||
import sys, zipfile
sys.exit("reconciler/example/manifests/nodes.yaml" not in zipfile.ZipFile(sys.argv[1]).namelist())
PY
  fail "the wheel lacks the example manifests"
ok "the wheel ships the example repository"

SERVICES=7 # observer supervisor executor ui collector docker-proxy notifier
step "docker-compose ps: $SERVICES services, all healthy"
docker-compose ps | tee "$WORK/ps.txt"
healthy=$(grep -c 'Up (healthy)' "$WORK/ps.txt" || true)
[ "$healthy" = "$SERVICES" ] || fail "expected $SERVICES healthy services, got $healthy"
ok "$SERVICES healthy services"

step "curl localhost:$PORT/summary"
curl -fsS "localhost:$PORT/summary" | tee "$WORK/summary.json"
echo
ok "/summary answers"

step "commit a manifest to the mounted repository"
cat >"$HOMELAB_REPO_PATH/manifests/e2e.yaml" <<YAML
apiVersion: homelab.reconciler/v1alpha1
kind: File
metadata:
  name: e2e-note
spec:
  node: local
  path: $HOMELAB_FILES_ROOT/example/e2e.txt
  content: "written by the e2e test\n"
---
apiVersion: homelab.reconciler/v1alpha1
kind: Container
metadata:
  name: e2e-sleeper
spec:
  node: local
  image: local/busybox:1
  imagePullPolicy: Never
  command: ["sleep", "100000"]
  networkMode: host
---
apiVersion: homelab.reconciler/v1alpha1
kind: Container
metadata:
  name: e2e-keeper
spec:
  node: local
  image: local/busybox:1
  imagePullPolicy: Never
  command: ["sleep", "100000"]
  networkMode: host
  restartPolicy: unless-stopped
YAML
git -C "$HOMELAB_REPO_PATH" add manifests/e2e.yaml
git -C "$HOMELAB_REPO_PATH" -c user.name=e2e -c user.email=e2e@localhost commit -q -m "e2e: a file and two containers"
ok "committed $(git -C "$HOMELAB_REPO_PATH" rev-parse --short HEAD)"

pending_id() { # pending_id KIND NAME: the id of the pending action for that resource
  api GET "/api/actions?state=pending" |
    python3 -c 'import json,sys; print(next(a["id"] for a in json.load(sys.stdin) if (a["kind"], a["name"]) == (sys.argv[1], sys.argv[2])))' "$1" "$2"
}
action_state() { api GET "/api/actions/$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["action"]["state"])'; }
wait_for 60 "a pending action for File/e2e-note" pending_id File e2e-note
wait_for 60 "a pending action for Container/e2e-sleeper" pending_id Container e2e-sleeper
wait_for 60 "a pending action for Container/e2e-keeper" pending_id Container e2e-keeper
file_action=$(pending_id File e2e-note)
container_action=$(pending_id Container e2e-sleeper)
keeper_action=$(pending_id Container e2e-keeper)

step "approve the three through the API (Authorization: Bearer \$(cat \$HOMELAB_ROOT/state/ui_token))"
for id in "$file_action" "$container_action" "$keeper_action"; do
  api POST "/api/actions/$id/approve" -H 'Content-Type: application/json' -d '{"reason": "e2e"}'
  echo
done
is_done() { [ "$(action_state "$1")" = "done" ]; }
wait_for 90 "action $file_action done" is_done "$file_action"
wait_for 90 "action $container_action done" is_done "$container_action"
wait_for 90 "action $keeper_action done" is_done "$keeper_action"
[ "$(cat "$HOMELAB_FILES_ROOT/example/e2e.txt")" = "written by the e2e test" ] || fail "file content"
ok "the file is on the host: $HOMELAB_FILES_ROOT/example/e2e.txt"
for name in homelab-e2e-sleeper homelab-e2e-keeper; do
  [ "$(docker inspect -f '{{.State.Running}}' "$name")" = true ] || fail "$name not running"
done
ok "the containers homelab-e2e-sleeper and homelab-e2e-keeper run on the engine"
again=$(api POST "/api/actions/$file_action/approve" -o /dev/null -w '%{http_code}' || true)
[ "$again" = 409 ] || fail "a second approval answered $again, expected 409"
ok "a second approval is refused (409)"

wait_healthy() {
  local ids=() healthy
  for _ in $(seq 1 120); do
    mapfile -t ids < <(dc ps -q)
    healthy=$(docker inspect -f '{{.State.Health.Status}}' "${ids[@]}" | grep -c '^healthy$' || true)
    [ "$healthy" = "$SERVICES" ] && { ok "$SERVICES healthy services"; return; }
    sleep 1
  done
  fail "services not healthy again"
}

step "docker-compose restart loses nothing"
snapshot "$WORK/before-restart"
docker-compose restart
wait_healthy
snapshot "$WORK/after-restart"
kept_everything "$WORK/before-restart" "$WORK/after-restart"
ok "every event line, world document and queued action survived ($(wc -l <"$WORK/before-restart") entries)"

step "recovery: delete state/observer_checkpoint.json, restart the observer, the world is rebuilt identical"
# The collector and the notifier too: nothing may append while the world is compared.
dc stop supervisor executor ui collector notifier
caught_up() { python3 -c 'import json,sys; sys.exit(not json.load(open(sys.argv[1]))["caughtUp"])' "$HOMELAB_ROOT/state/observer_status.json"; }
wait_for 60 "the observer caught up" caught_up
dc stop observer
rm -rf "$WORK/world-before"
cp -a "$HOMELAB_ROOT/world" "$WORK/world-before"
find "$HOMELAB_ROOT/events" -name '*.jsonl' -exec cat {} + >"$WORK/events-before"
rm "$HOMELAB_ROOT/state/observer_checkpoint.json"
dc start observer
wait_for 60 "a new checkpoint" test -s "$HOMELAB_ROOT/state/observer_checkpoint.json"
wait_for 60 "the observer caught up" caught_up
dc stop observer
python3 - "$WORK/world-before" "$HOMELAB_ROOT/world" "$WORK/events-before" <<'PY'
# Documents last touched by an event that existed before the restart must be
# byte-identical; only documents changed by events written since may differ.
import json, pathlib, sys
before, after, log = map(pathlib.Path, sys.argv[1:])
old_ids = {json.loads(line)["id"] for line in log.read_text().splitlines() if line.strip()}
same = newer = 0
for doc in sorted(before.rglob("*.json")):
    rebuilt = after / doc.relative_to(before)
    assert rebuilt.is_file(), f"lost in the rebuild: {rebuilt}"
    if json.loads(rebuilt.read_text())["status"].get("lastEventId") in old_ids:
        assert rebuilt.read_bytes() == doc.read_bytes(), f"differs after the rebuild: {rebuilt}"
        same += 1
    else:
        newer += 1
extra = {p.relative_to(after) for p in after.rglob("*.json")} - {p.relative_to(before) for p in before.rglob("*.json")}
assert same > 0 and not extra, (same, extra)
print(f"e2e   ok: {same} world documents rebuilt byte-identical ({newer} updated by newer events)")
PY
dc start observer supervisor executor ui collector notifier
wait_healthy

step "upgrade: the bootstrap again (rebuild, recreate) keeps every event, world document and action"
snapshot "$WORK/before-upgrade"
HOMELAB_FORCE_RECREATE=1 HOMELAB_WHEEL_PYTHON=${HOMELAB_WHEEL_PYTHON:-$TOP/.venv/bin/python} \
  hack/bootstrap-vps-control-plane.sh
wait_healthy
snapshot "$WORK/after-upgrade"
kept_everything "$WORK/before-upgrade" "$WORK/after-upgrade"
[ "$(action_state "$file_action")" = "done" ] || fail "the done action changed state"
ok "upgrade kept all $(wc -l <"$WORK/before-upgrade") entries; actions still done"
curl -fsS "http://localhost:$PORT/summary" >/dev/null && ok "/summary answers after the upgrade"

step "hand changes: docker stop one managed container, docker update --restart=no another"
# Only the executor and docker-proxy hold the socket; the collector sees the
# engine through the proxy, which refuses anything but reads.
proxy_refuses_writes() {
  dc exec -T collector python3 - <<'PY'
import http.client, socket, sys
class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect("/run/homelab-engine/docker.sock")
codes = []
for method, path in (("GET", "/containers/json"), ("POST", "/containers/homelab-e2e-keeper/stop")):
    conn = Unix("docker")
    conn.request(method, path)
    codes.append(conn.getresponse().status)
sys.exit(codes != [200, 403])
PY
}
proxy_refuses_writes || fail "the collector's proxy does not answer GET 200 / POST 403"
ok "through the proxy the collector may list containers (200) but not stop one (403)"
docker stop homelab-e2e-sleeper >/dev/null
docker update --restart=no homelab-e2e-keeper >/dev/null
[ "$(docker inspect -f '{{.HostConfig.RestartPolicy.Name}}' homelab-e2e-keeper)" = no ] ||
  fail "docker update did not change the restart policy"
ok "stopped homelab-e2e-sleeper, set homelab-e2e-keeper's restart policy to no"
seen_stopped() { # the world document, read through the API, says stopped, from the collector
  api GET /api/resources/Container/e2e-sleeper | python3 -c '
import json, sys
d = json.load(sys.stdin)
by_collector = [e for e in d["events"] if (e["source"], e["type"]) == ("collector", "observed.resource")]
sys.exit(not (d["resource"]["health"] == "Stopped" and d["resource"]["exists"]
              and any(e["data"].get("health") == "Stopped" for e in by_collector)))'
}
wait_for 60 "the collector saw homelab-e2e-sleeper stopped (world: Stopped, by the collector)" seen_stopped
pending_op() { # pending_op KIND NAME OPERATION: a pending action of that operation
  api GET "/api/actions?state=pending" | python3 -c '
import json, sys
sys.exit(not any((a["kind"], a["name"], a["operation"]) == tuple(sys.argv[1:]) for a in json.load(sys.stdin)))' "$@"
}
wait_for 90 "a pending start for Container/e2e-sleeper" pending_op Container e2e-sleeper start
wait_for 90 "a pending update for Container/e2e-keeper" pending_op Container e2e-keeper update

step "all verification steps passed"
