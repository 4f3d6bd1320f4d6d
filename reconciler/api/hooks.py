"""The git webhook service behind `POST /api/hooks/git`: verify, de-duplicate, ask for a fetch.

`GitHooks.admit` counts a request before its body is read, then
`GitHooks.receive` takes its headers, raw body and client address and either
asks the source follower to fetch now (`request_fetch`, the only thing a
webhook can cause) or raises `HookRefused`. In order:

1. the rate limit (`admit`, `HookThrottle`: `PER_ADDRESS` requests a minute
   per client address, `TOTAL` in all) -> 429;
2. the shared secret, read from `ROOT/secrets/git-webhook` on every request
   (so rotating it needs no restart); missing or empty -> 401;
3. the sender's proof (`reconciler.api.hook_senders.verify`) -> 401;
4. replays: a delivery id or a body (sha256) accepted within
   `REPLAY_SECONDS` is refused with 401. The HMAC covers the body only, so a
   captured request with a new delivery header is still a replay of its body.
   Both are kept in `ROOT/state/source/hook-deliveries.json` (bounded), so a
   restart reopens no window.

The body size limit (413) is the route's (`reconciler.api.controllers.hooks`),
which reports it through `refused`. Every outcome is audited under the
`ui` producer: `source.hook.accepted` (provider, event, delivery, ref,
commit, whether a fetch was asked) or `source.hook.refused` (reason,
status). Refusals past the rate limit are audited once a minute in all,
with the count of those left out meanwhile, so a flood cannot fill the
event log (the others are bounded by the rate limit itself). Of the
payload only the ref and the commit id are kept.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

import orjson

from reconciler.api.hook_senders import HookRefused, Sender, clean, provider_of, verify
from reconciler.atomic_files import atomic_write_json, read_json
from reconciler.runtime_root import RuntimeRoot
from reconciler.sources.fetch_signal import request_fetch

SECRET_NAME = "git-webhook"
MAX_BODY_BYTES = 1024 * 1024  # GitHub lists at most 20 commits in a push: far below this
PER_ADDRESS = 30  # requests per minute from one client address
TOTAL = 120  # requests per minute in all
WINDOW_SECONDS = 60.0
REPLAY_SECONDS = 24 * 3600.0
LEDGER_ENTRIES = 10_000  # deliveries (and bodies) remembered at most
_ADDRESSES = 10_000  # addresses the throttle remembers at most
_COMMIT = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
Audit = Callable[[str, dict[str, Any]], None]


class HookThrottle:
    """Sliding one-minute windows per client address and in all; thread-safe."""

    def __init__(self, per_address: int = PER_ADDRESS, total: int = TOTAL) -> None:
        self.per_address = per_address
        self.total = total
        self._seen: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()
        self._lock = threading.Lock()

    def take(self, address: str, now: float) -> None:
        """Count one request, or raise HookRefused(429) saying which limit it hit."""
        with self._lock:
            cutoff = now - WINDOW_SECONDS
            while self._all and self._all[0] <= cutoff:
                self._all.popleft()
            mine = self._seen.get(address)
            if mine is None:
                if len(self._seen) >= _ADDRESSES:
                    self._seen.pop(next(iter(self._seen)))
                mine = self._seen[address] = deque()
            while mine and mine[0] <= cutoff:
                mine.popleft()
            if len(mine) >= self.per_address:
                raise HookRefused(429, f"more than {self.per_address} webhooks a minute from here")
            if len(self._all) >= self.total:
                raise HookRefused(429, f"more than {self.total} webhooks a minute in all")
            mine.append(now)
            self._all.append(now)


class DeliveryLedger:
    """Delivery ids and body digests accepted recently, persisted under `ROOT/state/source/`."""

    def __init__(self, root: RuntimeRoot) -> None:
        self.path = root.state / "source" / "hook-deliveries.json"
        self.deliveries: dict[str, float] = {}
        self.bodies: dict[str, float] = {}
        try:
            doc = read_json(self.path)
        except (OSError, ValueError):
            doc = {}
        if isinstance(doc, dict):
            self.deliveries = _stamps(doc.get("deliveries"))
            self.bodies = _stamps(doc.get("bodies"))

    def check(self, delivery: str, digest: str, now: float) -> None:
        """Raise HookRefused(401) if this delivery id or body was accepted within the window."""
        cutoff = now - REPLAY_SECONDS
        if delivery and self.deliveries.get(delivery, cutoff - 1) >= cutoff:
            raise HookRefused(401, "replayed: this delivery id was accepted already")
        if self.bodies.get(digest, cutoff - 1) >= cutoff:
            raise HookRefused(401, "replayed: this exact body was accepted already")

    def record(self, delivery: str, digest: str, now: float) -> None:
        """Remember an accepted delivery: written first, kept in memory only once written."""
        cutoff = now - REPLAY_SECONDS
        tables = []
        for table, key in ((self.deliveries, delivery), (self.bodies, digest)):
            kept = {k: ts for k, ts in table.items() if ts >= cutoff}
            if key:
                kept[key] = now
            while len(kept) > LEDGER_ENTRIES:
                kept.pop(next(iter(kept)))
            tables.append(kept)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.path, {"deliveries": tables[0], "bodies": tables[1]})
        self.deliveries, self.bodies = tables


def _stamps(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        return {}
    return {str(k): float(v) for k, v in value.items() if isinstance(v, int | float)}


def payload_facts(body: bytes, content_type: str) -> dict[str, str | None]:
    """The ref and the new commit a push names (JSON or GitHub's form encoding), if any."""
    try:
        if content_type.startswith("application/x-www-form-urlencoded"):
            body = parse_qs(body.decode(), max_num_fields=10).get("payload", [""])[0].encode()
        doc = orjson.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {"ref": None, "after": None}
    if not isinstance(doc, dict):
        return {"ref": None, "after": None}
    ref, after = doc.get("ref"), doc.get("after")
    return {
        "ref": clean(ref, 200) if isinstance(ref, str) else None,
        "after": after if isinstance(after, str) and _COMMIT.match(after) else None,
    }


class GitHooks:
    """One per app; see the module docstring."""

    def __init__(self, root: RuntimeRoot, audit: Audit, throttle: HookThrottle | None = None):
        self.root = root
        self.audit = audit
        self.throttle = throttle or HookThrottle()
        self.ledger = DeliveryLedger(root)
        self._ledger_lock = threading.Lock()
        self._quiet_since = float("-inf")  # when a rate-limit refusal was last audited
        self._suppressed = 0  # rate-limit refusals not audited since then
        self._lock = threading.Lock()

    def secret(self) -> bytes | None:
        try:
            value = (self.root.secrets / SECRET_NAME).read_bytes().strip()
        except OSError:
            return None
        return value or None

    def admit(self, headers: Mapping[str, str], address: str, now: float | None = None) -> None:
        """Count the request against the rate limit before its body is read; or HookRefused."""
        now = time.time() if now is None else now
        try:
            self.throttle.take(address, now)
        except HookRefused as refusal:
            self.refused(refusal, headers, address, now)
            raise

    def receive(
        self, headers: Mapping[str, str], body: bytes, address: str, now: float | None = None
    ) -> tuple[Sender, bool]:
        """Verify and act on an admitted webhook: (sender, whether a fetch was asked).

        HookRefused (audited) when it is not configured, unsigned, wrongly signed
        or replayed.
        """
        now = time.time() if now is None else now
        try:
            secret = self.secret()
            if secret is None:
                raise HookRefused(401, f"no webhook secret: put one in ROOT/secrets/{SECRET_NAME}")
            sender = verify(headers, body, secret)
        except HookRefused as refusal:
            self.refused(refusal, headers, address, now)
            raise
        key = f"{sender.provider}:{sender.delivery}" if sender.delivery else ""
        digest = hashlib.sha256(body).hexdigest()
        fetch = sender.is_push
        # One at a time from the replay check to the record, so two copies sent at
        # once count as one; a write that fails leaves nothing recorded (507, retry).
        with self._ledger_lock:
            try:
                self.ledger.check(key, digest, now)
            except HookRefused as refusal:
                self.refused(refusal, headers, address, now)
                raise
            if fetch:
                request_fetch(self.root, f"webhook: {sender.provider} {sender.event}")
            self.ledger.record(key, digest, now)
        facts = payload_facts(body, headers.get("content-type", ""))
        self.audit(
            "source.hook.accepted",
            {
                "provider": sender.provider,
                "event": clean(sender.event),
                "delivery": clean(sender.delivery),
                "address": address,
                **facts,
                "fetch": fetch,
            },
        )
        return sender, fetch

    def refused_now(self, refusal: HookRefused, headers: Mapping[str, str], address: str) -> None:
        self.refused(refusal, headers, address, time.time())

    def refused(
        self, refusal: HookRefused, headers: Mapping[str, str], address: str, now: float
    ) -> None:
        """Audit a refusal; rate-limit refusals at most once a minute, counting the rest."""
        suppressed = 0
        if refusal.status == 429:
            with self._lock:
                if now - self._quiet_since < WINDOW_SECONDS:
                    self._suppressed += 1
                    return
                suppressed, self._suppressed, self._quiet_since = self._suppressed, 0, now
        provider = refusal.provider or provider_of(headers)
        self.audit(
            "source.hook.refused",
            {
                "provider": provider,
                "status": refusal.status,
                "reason": refusal.reason,
                "address": address,
                "delivery": clean(_delivery_header(headers)),
                "suppressedBefore": suppressed,
            },
        )


def _delivery_header(headers: Mapping[str, str]) -> str:
    for name in ("x-github-delivery", "x-forgejo-delivery", "x-gitea-delivery"):
        if name in headers:
            return headers[name]
    return headers.get("x-gogs-delivery") or headers.get("idempotency-key") or ""
