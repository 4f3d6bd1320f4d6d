"""Repository-wide settings: the optional `homelab.yaml` at the repository top.

It says what the repository explicitly allows: pruning without a person,
dangerous container options for named resources, maintenance windows for
the executor. Absent, everything is at its safest default. Pure parsing;
used by the git source and the planner.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from reconciler.resources.meta import StrictModel

REPO_CONFIG_FILE = "homelab.yaml"
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class MaintenanceWindow(StrictModel):
    """Approved actions run only inside a window (UTC), when windows are given."""

    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS))
    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM UTC")
    end: str = Field(pattern=r"^([01]\d|2[0-4]):[0-5]\d$", description="HH:MM UTC")


class RepoConfig(StrictModel):
    apiVersion: Literal["homelab.reconciler/v1alpha1"] = "homelab.reconciler/v1alpha1"
    kind: Literal["RepositoryConfig"] = "RepositoryConfig"
    autoApprovePrune: bool = Field(
        default=False, description="Let deletes (prune) run without a person. Default: never."
    )
    allowDangerous: list[str] = Field(
        default_factory=list,
        description="Container names the guard rails let through: engine sockets, host "
        "roots, privileged mode, host namespaces, dangerous capabilities (docs/guardrails.md).",
    )
    maintenanceWindows: list[MaintenanceWindow] = Field(default_factory=list)
    manifestsPath: str = "manifests"
