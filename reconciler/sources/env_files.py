"""`envFile`: a Container's environment from files in the repository (compose `env_file`).

`expand_env_files(state, read)` runs after the manifests of a commit are
loaded: for each Container whose spec names `envFile`, it reads the files at
that commit (`read(path)`: bytes, or None when the file is not there), parses
them as dotenv files (python-dotenv: `NAME=value`, `export NAME=...`,
quotes, comments; no `${...}` interpolation, which compose would do from the
shell's environment), and puts the values under `spec.env`: a later file
wins over an earlier one and the manifest's own `env` wins over them all, as
compose does. The comparable spec then holds the values (they are in git
anyway), so the observer compares them as any env var; `envFile` itself is
not compared. A missing file, a line without `=` or a bad name is a located
error of the manifest (`spec.envFile[i]`) and the resource is invalid.
Manifests are replaced, never mutated: the loader reuses manifest objects
across commits, and the files may change while the manifest does not.
"""

from __future__ import annotations

import dataclasses
import io
import re
from collections.abc import Callable
from typing import Any

from dotenv import dotenv_values

from reconciler.errors import Location, ManifestError
from reconciler.resources.key import ResourceKey
from reconciler.sources.manifests import Manifest
from reconciler.sources.yamlload import load_documents, locate

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_ENV_FILE = 1 << 20


class EnvFileError(ValueError):
    pass


def parse_env_file(path: str, data: bytes) -> dict[str, str]:
    """NAME -> value of one env file (dotenv syntax)."""
    if len(data) > MAX_ENV_FILE:
        raise EnvFileError(f"{path} is larger than {MAX_ENV_FILE} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EnvFileError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    values = dotenv_values(stream=io.StringIO(text), interpolate=False)
    out: dict[str, str] = {}
    for name, value in values.items():
        if not _NAME.match(name):
            raise EnvFileError(f"{path}: {name!r} is not a variable name ([A-Za-z_][A-Za-z0-9_]*)")
        if value is None:
            raise EnvFileError(
                f"{path}: {name} has no value (NAME=value; a value from the shell's "
                "environment is not taken)"
            )
        out[name] = value
    return out


def _merged(doc: dict[str, Any], files: list[dict[str, str]]) -> dict[str, Any]:
    spec = dict(doc["spec"])
    values: dict[str, str] = {}
    for found in files:
        values.update(found)
    own = {var["name"] for var in spec.get("env") or []}
    env = list(spec.get("env") or [])
    env += [
        {"name": name, "value": value, "valueFrom": None}
        for name, value in values.items()
        if name not in own
    ]
    spec["env"] = sorted(env, key=lambda var: var["name"])
    return {**doc, "spec": spec}


def _where(manifest: Manifest, index: int, read: Callable[[str], bytes | None]) -> Location:
    """The line of `spec.envFile[index]` in the manifest's file (else the resource's)."""
    path = manifest.location.path
    text = read(path)
    if text is None:
        return manifest.location
    docs, _ = load_documents(path, text)
    for doc in docs:
        data = doc.data
        meta = data.get("metadata") if isinstance(data, dict) else None
        ours = isinstance(meta, dict) and meta.get("name") == manifest.name
        if ours and data.get("kind") == "Container":
            return locate(path, doc.node, ("spec", "envFile", index))
    return manifest.location


def expand_env_files(
    manifests: dict[ResourceKey, Manifest], read: Callable[[str], bytes | None]
) -> tuple[dict[ResourceKey, Manifest], list[tuple[ResourceKey, ManifestError]]]:
    """The manifests with env files merged under `env`, and the errors of those that failed."""
    out = dict(manifests)
    errors: list[tuple[ResourceKey, ManifestError]] = []
    for ref, manifest in manifests.items():
        paths = (manifest.doc.get("spec") or {}).get("envFile") if ref.kind == "Container" else None
        if not paths:
            continue
        files = []
        for index, path in enumerate(paths):
            field = f"spec.envFile[{index}]"
            data = read(path)
            try:
                if data is None:
                    raise EnvFileError(f"{path!r} is not in the repository at this commit")
                files.append(parse_env_file(path, data))
            except EnvFileError as exc:
                where = _where(manifest, index, read)
                errors.append((ref, ManifestError(where, field, str(exc))))
                break
        else:
            out[ref] = dataclasses.replace(manifest, doc=_merged(manifest.doc, files))
            continue
        del out[ref]
    return out, errors
