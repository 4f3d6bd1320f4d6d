"""Kubernetes-shaped envelope shared by every kind: apiVersion, kind, metadata.

Validates names as DNS-1123 labels (so a name is always a safe file name) and
labels/annotations the way Kubernetes does. Pure: no I/O. Used by
`reconciler.resources.kinds` and everything that reads manifests.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

API_VERSION = "homelab.reconciler/v1alpha1"
LABEL_PREFIX = "homelab.reconciler"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_ANNOTATIONS_MAX = 256 * 1024


class StrictModel(BaseModel):
    """Immutable, closed model: unknown fields are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


def check_dns_label(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a DNS-1123 label: lower-case letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters"
        )
    return value


DnsLabel = Annotated[str, AfterValidator(check_dns_label)]


def check_qualified_key(key: str) -> str:
    """A label/annotation key: `[prefix/]name`, prefix a DNS subdomain."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        raise ValueError(f"key {key!r}: prefix {prefix!r} must be a DNS subdomain")
    if not name or len(name) > 63 or not _QUALIFIED.match(name):
        raise ValueError(
            f"key {key!r}: name part must be 1-63 characters of [A-Za-z0-9-_.], "
            "starting and ending with a letter or digit"
        )
    return key


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        check_qualified_key(key)
        if value and (len(value) > 63 or not _QUALIFIED.match(value)):
            raise ValueError(
                f"label {key!r}: value {value!r} must be empty or 1-63 characters of "
                "[A-Za-z0-9-_.], starting and ending with a letter or digit"
            )
    return dict(sorted(labels.items()))


def _check_annotations(annotations: dict[str, str]) -> dict[str, str]:
    total = 0
    for key, value in annotations.items():
        check_qualified_key(key)
        total += len(key) + len(value)
    if total > _ANNOTATIONS_MAX:
        raise ValueError(f"annotations total {total} bytes, at most {_ANNOTATIONS_MAX}")
    return dict(sorted(annotations.items()))


Labels = Annotated[dict[str, str], AfterValidator(_check_labels)]
AnnotationMap = Annotated[dict[str, str], AfterValidator(_check_annotations)]


class Metadata(StrictModel):
    """`metadata`: the resource's name (unique per kind), labels and annotations."""

    name: DnsLabel = Field(description="DNS-1123 label, unique per kind.")
    labels: Labels = Field(default_factory=dict)
    annotations: AnnotationMap = Field(default_factory=dict)
