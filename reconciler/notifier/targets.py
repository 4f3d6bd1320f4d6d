"""Notification targets: from `homelab.yaml` entries to Apprise URLs, redacted for display.

`resolve(entry, secrets)` turns one `NotificationTarget` into a `Target`:
its id (the entry's `name`, else the URL scheme and a hash of the entry),
the URL to send to (the secret's content put in place of `{secret}`, passed
as Apprise's `token` parameter, or taken as the whole URL) and `shown`, the
only form that ever leaves this module: Apprise's own privacy rendering of
the URL (it knows which part of each service's URL is a credential), cut
to scheme, host and path, with the secret's text masked in case Apprise
missed it. `scrub` masks secret text in error messages too.
`config_problems` checks what the model cannot (Apprise knows the scheme,
the secret file exists) as located errors for `homelab validate`, and
`read_targets` reads the `notifications` of a commit entry by entry, so one
broken entry never silences the others. Apprise is imported on first use:
commands that never notify do not pay for it. Called by the notifier
service, `homelab notify test` and `homelab validate`.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reconciler.errors import ManifestError
from reconciler.resources.repo import (
    REPO_CONFIG_FILE,
    SECRET_PLACEHOLDER,
    NotificationTarget,
)
from reconciler.sources.git import GitRepo
from reconciler.sources.yamlload import load_documents, locate

MASK = "***"


@dataclass(frozen=True)
class Target:
    """One resolved target. `url` holds secrets: send to it, never show or record it."""

    id: str
    url: str
    shown: str
    events: frozenset[str]
    min_severity: str
    rate_per_minute: int
    secrets: tuple[str, ...] = ()  # texts to mask wherever this target's output is shown

    def __repr__(self) -> str:  # a Target in a traceback or a log line shows no secret
        return f"Target({self.id!r}, {self.shown!r})"


class TargetError(Exception):
    """A target that cannot be used: the message names the field, never the secret."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def target_id(entry: NotificationTarget) -> str:
    if entry.name:
        return entry.name
    scheme = (entry.url or "secret").split(":", 1)[0].lower()
    digest = hashlib.sha256(f"{entry.url}\0{entry.secret}".encode()).hexdigest()[:8]
    return f"{scheme}-{digest}"


def _read_secret(secrets: Path | None, name: str) -> str:
    if secrets is None:
        raise TargetError("secret", f"secret {name!r}: no runtime root to read it from")
    try:
        text = (secrets / name).read_text()
    except FileNotFoundError:
        raise TargetError(
            "secret", f"secret {name!r} does not exist (create {secrets / name}, mode 0600)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetError(
            "secret", f"secret {name!r} is unreadable ({type(exc).__name__})"
        ) from None
    value = text.strip()
    if not value:
        raise TargetError("secret", f"secret {name!r} is empty")
    return value


def _with_token(url: str, token: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query = [(k, v) for k, v in query if k != "token"] + [("token", token)]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _url(entry: NotificationTarget, secrets: Path | None) -> tuple[str, tuple[str, ...]]:
    if entry.secret is None:
        assert entry.url is not None  # the model requires one of them
        return entry.url, ()
    value = _read_secret(secrets, entry.secret)
    masks = (value, urllib.parse.quote(value, safe=""))
    if entry.url is None:
        if "://" not in value:
            raise TargetError(
                "secret", f"secret {entry.secret!r} must hold a whole Apprise URL (no url given)"
            )
        return value, masks
    if SECRET_PLACEHOLDER in entry.url:
        return entry.url.replace(SECRET_PLACEHOLDER, value), masks
    if "://" in value:
        return value, masks  # the secret holds the whole URL; `url` names it in git
    return _with_token(entry.url, value), masks


def _instantiate(url: str) -> Any:
    import apprise

    return apprise.Apprise.instantiate(url)


def redact(plugin: Any, masks: tuple[str, ...]) -> str:
    """Apprise's privacy URL cut to scheme://host/path, secret texts masked."""
    private = str(plugin.url(privacy=True))
    parts = urllib.parse.urlsplit(private)
    shown = urllib.parse.urlunsplit(parts._replace(query="", fragment=""))
    return scrub(shown, masks)


def scrub(text: str, masks: tuple[str, ...]) -> str:
    for value in sorted(masks, key=len, reverse=True):
        if value:
            text = text.replace(value, MASK)
    return text


def resolve(entry: NotificationTarget, secrets: Path | None) -> Target:
    """The target of one entry; TargetError (field, message) when it cannot be used."""
    url, masks = _url(entry, secrets)
    plugin = _instantiate(url)
    if plugin is None:
        scheme = url.split("://", 1)[0]
        where = "secret" if entry.url is None else "url"
        raise TargetError(
            where,
            f"Apprise cannot use this {scheme}:// URL (an unknown service, or a field it "
            "requires is missing); see https://appriseit.com/services/",
        )
    return Target(
        id=target_id(entry),
        url=url,
        shown=redact(plugin, masks),
        events=frozenset(entry.on),
        min_severity=entry.minSeverity,
        rate_per_minute=entry.ratePerMinute,
        secrets=masks,
    )


@dataclass
class TargetSet:
    """The usable targets of one commit and the located problems of the others."""

    targets: list[Target]
    problems: list[ManifestError]


def _entries(text: bytes) -> tuple[list[Any], Any, list[ManifestError]]:
    docs, errors = load_documents(REPO_CONFIG_FILE, text)
    if errors or not docs or docs[0].errors:
        return [], None, [*errors, *(docs[0].errors if docs else [])]
    data = docs[0].data if isinstance(docs[0].data, dict) else {}
    raw = data.get("notifications") or []
    return (raw if isinstance(raw, list) else []), docs[0].node, []


def targets_from_text(text: bytes, secrets: Path | None) -> TargetSet:
    """Every usable entry of `homelab.yaml` text; a broken one is a problem, not a stop."""
    raw, node, problems = _entries(text)
    out: list[Target] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        where = ("notifications", index)
        try:
            entry = NotificationTarget.model_validate(item)
        except ValidationError as exc:
            for err in exc.errors():
                loc = (*where, *err["loc"])
                field = ".".join(str(p) for p in loc)
                message = err["msg"].removeprefix("Value error, ")
                problems.append(ManifestError(locate(REPO_CONFIG_FILE, node, loc), field, message))
            continue
        try:
            target = resolve(entry, secrets)
        except TargetError as exc:
            loc = (*where, exc.field)
            field = ".".join(str(p) for p in loc)
            problems.append(ManifestError(locate(REPO_CONFIG_FILE, node, loc), field, exc.message))
            continue
        if target.id in seen:
            loc = (*where, "name")
            msg = f"two notification targets are both named {target.id!r}"
            problems.append(ManifestError(locate(REPO_CONFIG_FILE, node, loc), "name", msg))
            continue
        seen.add(target.id)
        out.append(target)
    return TargetSet(out, problems)


def read_targets(repo: GitRepo, commit: str, secrets: Path | None) -> TargetSet:
    """The notification targets of `homelab.yaml` at `commit` (none when it has none)."""
    out = repo.run("ls-tree", "-z", "--full-tree", commit, "--", REPO_CONFIG_FILE)
    record = out.split(b"\0")[0]
    if not record:
        return TargetSet([], [])
    blob = record.partition(b"\t")[0].split()[2].decode()
    return targets_from_text(repo.blobs([blob])[blob], secrets)


def config_problems(
    text: bytes, secrets: Path | None, known: list[ManifestError]
) -> list[ManifestError]:
    """What `homelab validate` adds to the model's errors (`known`): services Apprise
    does not know, missing secrets, duplicate names."""
    shown = {str(e) for e in known}
    return [p for p in targets_from_text(text, secrets).problems if str(p) not in shown]
