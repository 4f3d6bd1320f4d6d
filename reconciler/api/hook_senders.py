"""Who sent a git webhook, and whether they proved it: GitHub, Gitea, Forgejo, Gogs, GitLab.

Pure functions over the request's headers and raw body (no I/O), used by
`reconciler.api.hooks`:

- GitHub signs the body with HMAC-SHA256 of the shared secret in
  `X-Hub-Signature-256: sha256=<hex>` (the SHA-1 `X-Hub-Signature` alone is
  refused), names the event in `X-GitHub-Event` and the delivery in
  `X-GitHub-Delivery`;
- Gitea, Forgejo and Gogs send the bare hex HMAC-SHA256 in
  `X-Gitea-Signature`, `X-Forgejo-Signature`, `X-Gogs-Signature` (Forgejo
  sends all three; every one present must match), with `X-<Name>-Event` and
  `X-<Name>-Delivery`;
- GitLab sends the secret itself in `X-Gitlab-Token`, the event in
  `X-Gitlab-Event` ("Push Hook") and a delivery id in `Idempotency-Key` or
  `X-Gitlab-Event-UUID`.

Comparisons are constant-time. `verify` returns a `Sender` or raises
`HookRefused` with the status to answer and a reason that never contains
the secret or the presented signature.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

# Events that may move a branch or a tag: they trigger a fetch.
PUSH_EVENTS = {
    "github": frozenset({"push"}),
    "forgejo": frozenset({"push"}),
    "gitea": frozenset({"push"}),
    "gogs": frozenset({"push"}),
    "gitlab": frozenset({"Push Hook", "Tag Push Hook"}),
}
PING_EVENTS = frozenset({"ping"})
# HMAC providers in the order we name them; Forgejo also sends the Gitea and Gogs headers.
HMAC_HEADERS = (
    ("forgejo", "x-forgejo-signature"),
    ("gitea", "x-gitea-signature"),
    ("gogs", "x-gogs-signature"),
)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_PRINTABLE = re.compile(r"[^\x21-\x7e ]")


class HookRefused(Exception):
    """A webhook we do not act on: `status` to answer, `reason` for the caller and the audit."""

    def __init__(self, status: int, reason: str, provider: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.provider = provider


@dataclass(frozen=True)
class Sender:
    """A verified webhook: the provider, its event name and delivery id (may be "")."""

    provider: str
    event: str
    delivery: str

    @property
    def is_push(self) -> bool:
        return self.event in PUSH_EVENTS.get(self.provider, frozenset())

    @property
    def is_ping(self) -> bool:
        return self.event in PING_EVENTS


def clean(value: str | None, limit: int = 100) -> str:
    """A header value fit for an audit event: printable ASCII, at most `limit` characters."""
    return _PRINTABLE.sub("?", (value or "")[:limit])


def provider_of(headers: Mapping[str, str]) -> str | None:
    """The provider the headers claim (lower-case header names), None when none does."""
    if "x-github-event" in headers or "x-hub-signature-256" in headers:
        return "github"
    for name, header in HMAC_HEADERS:
        if header in headers or f"x-{name}-event" in headers:
            return name
    if "x-gitlab-event" in headers or "x-gitlab-token" in headers:
        return "gitlab"
    return None


def _hmac_hex(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def _check_hex(presented: str, expected: str, header: str, provider: str) -> None:
    presented = presented.strip().lower()
    if not _HEX64.match(presented):
        raise HookRefused(401, f"{header} is not a hex HMAC-SHA256", provider)
    if not hmac.compare_digest(presented, expected):
        raise HookRefused(401, f"{header} does not match the body and the secret", provider)


def _verify_github(headers: Mapping[str, str], body: bytes, secret: bytes) -> Sender:
    signature = headers.get("x-hub-signature-256")
    if signature is None:
        why = (
            "only the SHA-1 X-Hub-Signature was sent; X-Hub-Signature-256 is required"
            if "x-hub-signature" in headers
            else "unsigned: no X-Hub-Signature-256 (set a secret on the webhook)"
        )
        raise HookRefused(401, why, "github")
    algorithm, _, digest = signature.partition("=")
    if algorithm.strip().lower() != "sha256":
        raise HookRefused(401, "X-Hub-Signature-256 must start with sha256=", "github")
    _check_hex(digest, _hmac_hex(secret, body), "X-Hub-Signature-256", "github")
    return Sender("github", headers.get("x-github-event", ""), headers.get("x-github-delivery", ""))


def _verify_hmac(provider: str, headers: Mapping[str, str], body: bytes, secret: bytes) -> Sender:
    present = [(name, h) for name, h in HMAC_HEADERS if h in headers]
    if not present:
        raise HookRefused(401, f"unsigned: no X-{provider.title()}-Signature", provider)
    expected = _hmac_hex(secret, body)
    for name, header in present:
        _check_hex(headers[header], expected, f"X-{name.title()}-Signature", provider)
    event = headers.get(f"x-{provider}-event") or headers.get("x-gitea-event", "")
    delivery = headers.get(f"x-{provider}-delivery") or headers.get("x-gitea-delivery", "")
    return Sender(provider, event, delivery)


def _verify_gitlab(headers: Mapping[str, str], secret: bytes) -> Sender:
    token = headers.get("x-gitlab-token")
    if token is None:
        raise HookRefused(401, "unsigned: no X-Gitlab-Token (set a secret token)", "gitlab")
    if not hmac.compare_digest(token.encode("latin-1"), secret):
        raise HookRefused(401, "X-Gitlab-Token is not the shared secret", "gitlab")
    delivery = headers.get("idempotency-key") or headers.get("x-gitlab-event-uuid", "")
    return Sender("gitlab", headers.get("x-gitlab-event", ""), delivery)


def verify(headers: Mapping[str, str], body: bytes, secret: bytes) -> Sender:
    """The verified sender of `body`; HookRefused(401) when unsigned or wrongly signed.

    `headers` has lower-case names; `secret` is the shared secret (non-empty).
    """
    provider = provider_of(headers)
    if provider is None:
        raise HookRefused(
            401,
            "unsigned: no GitHub, Gitea, Forgejo, Gogs or GitLab webhook headers",
        )
    if provider == "github":
        return _verify_github(headers, body, secret)
    if provider == "gitlab":
        return _verify_gitlab(headers, secret)
    return _verify_hmac(provider, headers, body, secret)
