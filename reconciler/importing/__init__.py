"""`homelab import`: manifests for what a homelab already runs.

`compose_config` asks `docker-compose config` (Debian's compose v1) to
normalise a compose project (interpolation with `.env`, `extends`, every
short and long syntax) and filters its profiles; `compose_map` maps each
service, network and volume of that output to Container, Network and Volume
manifests under the Container field names of issue 17; `docker_map` does the
same from the running containers of an engine (`docker inspect`); `writer`
merges the result into the repository's manifests folder with ruamel.yaml's
round-trip mode, so a re-run updates what an import wrote and keeps the
operator's comments, key order and other resources. Used by `reconciler.cli.importing`.
"""
