"""Repository-wide settings: the optional `homelab.yaml` at the repository top.

It says what the repository explicitly allows: pruning without a person,
dangerous container options for named resources, maintenance windows for
the executor, and who is told about what (`notifications`, Apprise URLs
delivered by the notifier service, reconciler/notifier/), and how long the
event log keeps its days whole (`eventLog`). Absent,
everything is at its safest default. Pure parsing (a notification URL is
checked here for its shape only; the notifier and `homelab validate` ask
Apprise whether it names a service); used by the git source, the planner
and the notifier.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from reconciler.resources.meta import DnsLabel, StrictModel

REPO_CONFIG_FILE = "homelab.yaml"
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class MaintenanceWindow(StrictModel):
    """Approved actions run only inside a window (UTC), when windows are given."""

    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS))
    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM UTC")
    end: str = Field(pattern=r"^([01]\d|2[0-4]):[0-5]\d$", description="HH:MM UTC")


NotifyEvent = Literal[
    "action.pending",
    "action.failed",
    "resource.drifted",
    "resource.flapping",
    "node.notready",
    "source.notready",
]
NOTIFY_EVENTS: tuple[NotifyEvent, ...] = (
    "action.pending",
    "action.failed",
    "resource.drifted",
    "resource.flapping",
    "node.notready",
    "source.notready",
)
Severity = Literal["info", "warning", "failure"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "failure")
_APPRISE_URL = re.compile(r"^[a-z][a-z0-9+.-]{1,31}://\S+$", re.IGNORECASE)
SECRET_PLACEHOLDER = "{secret}"


class NotificationTarget(StrictModel):
    """One place to tell: an Apprise URL, what to tell it and from which severity on."""

    name: DnsLabel | None = Field(
        default=None,
        description="How events, logs and the UI name this target (default: the URL's "
        "scheme and a hash of the entry).",
    )
    url: str | None = Field(
        default=None,
        description="Any Apprise URL (ntfy://, json://, discord://...). May hold "
        "`{secret}`, replaced by the secret's content when sending. Omitted: the "
        "secret holds the whole URL.",
    )
    secret: DnsLabel | None = Field(
        default=None,
        description="A file under ROOT/secrets/: the whole URL, or its token (put in "
        "place of `{secret}`, else passed as Apprise's `token` parameter).",
    )
    on: list[NotifyEvent] = Field(default_factory=lambda: list(NOTIFY_EVENTS))
    minSeverity: Severity = "info"
    ratePerMinute: int = Field(
        default=30, ge=1, le=600, description="Messages at most per minute to this target."
    )

    @field_validator("url")
    @classmethod
    def _url_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _APPRISE_URL.match(value.replace(SECRET_PLACEHOLDER, "x")):
            raise ValueError(
                f"{_shown(value)!r} is not an Apprise URL (scheme://...; e.g. "
                "ntfys://ntfy.example.org/homelab, json://127.0.0.1:8000/hook)"
            )
        return value

    @model_validator(mode="after")
    def _url_or_secret(self) -> NotificationTarget:
        if self.url is None and self.secret is None:
            raise ValueError("give url, secret (a file holding the URL), or both")
        if self.url and SECRET_PLACEHOLDER in self.url and self.secret is None:
            raise ValueError(f"url holds {SECRET_PLACEHOLDER} but no secret is named")
        return self


def _shown(url: str) -> str:
    """A URL cut short for an error message (it may hold a token by mistake)."""
    return url if len(url) <= 16 else url[:13] + "..."


class EventLogRetention(StrictModel):
    """How long the event log keeps its days whole (reconciler/observer/compaction.py)."""

    compressAfterDays: int = Field(
        default=90,
        ge=1,
        le=36_500,
        description="Closed days older than this are compressed (zstd) once the "
        "observer's durable record covers them; still read by every reader.",
    )
    deleteAfterDays: int | None = Field(
        default=None,
        ge=1,
        le=36_500,
        description="Days older than this are deleted, except their audit trail "
        "(action.* events), which is kept compressed. Default: never delete.",
    )
    deleteAuditAfterDays: int | None = Field(
        default=None,
        ge=1,
        le=36_500,
        description="Days older than this are deleted whole, audit trail included. "
        "Default: the audit trail is kept for ever.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> EventLogRetention:
        delete, audit = self.deleteAfterDays, self.deleteAuditAfterDays
        if delete is not None and delete <= self.compressAfterDays:
            raise ValueError(
                f"deleteAfterDays ({delete}) must be more than compressAfterDays "
                f"({self.compressAfterDays})"
            )
        if audit is not None and (delete is None or audit < delete):
            raise ValueError(
                f"deleteAuditAfterDays ({audit}) needs deleteAfterDays, and not more than it"
            )
        return self


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
    requireSignedCommits: bool = Field(
        default=False,
        description="Plan only commits signed by a key under ROOT/signing/ (SSH keys in "
        "allowed_signers, GPG keys in the gnupg/ keyring); an unsigned tip is held back "
        "and the last verified commit stays in force. Turning it off takes a signed commit.",
    )
    notifications: list[NotificationTarget] = Field(
        default_factory=list,
        description="Where the notifier service sends pending actions, failures, "
        "drift, flapping and nodes going down (README, Notifications).",
    )
    eventLog: EventLogRetention = Field(
        default_factory=EventLogRetention,
        description="Compression and deletion of old event-log days (README, Event log).",
    )
