# homelab-reconciler: one image for the four services (see compose.yaml).
#
# Built from wheels made on the host, so the build needs no compiler and no
# package index:  pip wheel . -w dist/wheels && docker build -t homelab-reconciler:local .
# (hack/bootstrap-vps-control-plane.sh does both). The base needs python3 with
# venv (3.11, like the wheels), git (the services read the repository through
# git; ssh-keygen from openssh-client and gpg from gnupg verify signed commits)
# and, for ComposeStack resources, docker-compose; whatever is missing is
# installed from Debian. hack/e2e-compose.sh passes a debootstrapped base that
# has them all. Few instructions on purpose: every layer is a full copy on
# engines using the vfs storage driver.
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS build
ARG BASE_PACKAGES="python3 python3-venv git ca-certificates docker-compose openssh-client gnupg"
COPY dist/wheels /wheels
# hadolint ignore=DL3008
RUN set -eu; missing=""; \
    for p in $BASE_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done; \
    if [ -n "$missing" ]; then \
      apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing; \
    fi; \
    python3 -m venv /opt/venv; \
    /opt/venv/bin/pip install -q --no-index --no-compile --find-links /wheels homelab-reconciler; \
    /opt/venv/bin/pip uninstall -y -q pip; \
    find /opt/venv -name '__pycache__' -prune -exec rm -rf {} +

FROM ${BASE_IMAGE}
ARG BASE_PACKAGES="python3 python3-venv git ca-certificates docker-compose openssh-client gnupg"
COPY --from=build /opt/venv /opt/venv
# uid 1000 owns the runtime tree. The repository is mounted read-only and owned
# by someone else, which git refuses unless told it is safe.
# hadolint ignore=DL3008
RUN set -eu; missing=""; \
    for p in $BASE_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done; \
    if [ -n "$missing" ]; then \
      apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing \
      && rm -rf /var/lib/apt/lists/*; \
    fi; \
    useradd --uid 1000 --user-group --no-create-home --home-dir /tmp homelab; \
    git config --system --add safe.directory '*'
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp \
    HOMELAB_ROOT=/opt/homelab HOMELAB_REPO=/repo
USER 1000:1000
ENTRYPOINT ["homelab"]
