"""What an import produces: manifest documents with their source, and warnings.

Pure data shared by the mappers (`compose_map`, `docker_map`) and the
`writer`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

API_VERSION = "homelab.reconciler/v1alpha1"
# The annotation that marks a document as written by an import (the writer updates only those).
IMPORTED_FROM = "homelab.reconciler/imported-from"
# The labels compose v1 puts on what it creates: its bookkeeping, not the operator's.
COMPOSE_LABEL_PREFIX = "com.docker.compose."
_NOT_DNS = re.compile(r"[^a-z0-9-]+")


@dataclass
class Imported:
    """One manifest document and the comment that names where it came from."""

    kind: str
    name: str
    spec: dict[str, Any]
    source: str  # e.g. "compose.yaml service jellyfin"
    origin: str  # the annotation value, e.g. "compose:jellyfin/jellyfin"

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.name)

    def document(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": self.kind,
            "metadata": {"name": self.name, "annotations": {IMPORTED_FROM: self.origin}},
            "spec": self.spec,
        }


@dataclass
class ImportResult:
    """The documents of one manifest file (by its path under the manifests folder)."""

    files: dict[str, list[Imported]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def add(self, file: str, item: Imported) -> None:
        self.files.setdefault(file, []).append(item)


def dns_name(text: str, fallback: str = "imported") -> str:
    """A DNS-1123 label from an engine or service name (`proxy_default` -> `proxy-default`)."""
    name = _NOT_DNS.sub("-", text.lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name)[:63].strip("-")
    return name or fallback


def ignore_compose_labels(labels: dict[str, Any]) -> list[str]:
    """`ignoreDifferences` pointers for the compose bookkeeping labels among `labels`."""
    return [
        "/labels/" + key.replace("~", "~0").replace("/", "~1")
        for key in sorted(labels)
        if key.startswith(COMPOSE_LABEL_PREFIX)
    ]
