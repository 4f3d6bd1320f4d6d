"""Resource models (pure): the Kubernetes-shaped kinds, repository settings, normalization."""

from reconciler.resources.kinds import (
    KINDS,
    ComposeStack,
    Container,
    File,
    Network,
    Node,
    Resource,
    Volume,
)
from reconciler.resources.meta import API_VERSION, LABEL_PREFIX

__all__ = [
    "API_VERSION",
    "KINDS",
    "LABEL_PREFIX",
    "ComposeStack",
    "Container",
    "File",
    "Network",
    "Node",
    "Resource",
    "Volume",
]
