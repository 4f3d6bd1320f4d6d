"""Delivery to one target: its own thread, rate limit, retries with backoff, timeouts.

A `Courier` owns one `Target`: messages wait in its queue and are sent one
at a time through Apprise (`apprise.Apprise` with the target's URL, the
connect and read timeouts added as Apprise's `cto`/`rto` unless the URL
sets them), at most `rate_per_minute` a minute (a token bucket), retried
by tenacity with exponential backoff (`attempts` tries; a target that
failed `DOWN_AFTER` messages in a row gets one try per message until it
answers again, so a dead target does not pile up minutes of retries).
Each courier has its own thread, so a target that answers 500 or hangs
never delays another, nor the service that feeds it. Every outcome goes to
`report` (the service records it as `notification.sent` / `.failed`).
Error texts come from Apprise's result and are scrubbed of the target's
secrets. Called by the notifier service and `homelab notify test`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tenacity import Retrying, stop_after_attempt, wait_exponential

from reconciler.notifier.signals import Message
from reconciler.notifier.targets import Target, scrub

log = logging.getLogger("reconciler.notifier")
DOWN_AFTER = 3


@dataclass(frozen=True)
class DeliverySettings:
    attempts: int = 4
    backoff: float = 1.0  # seconds before the 2nd try; doubled for each later one
    backoff_cap: float = 30.0
    connect_timeout: float = 4.0
    read_timeout: float = 10.0


@dataclass(frozen=True)
class Outcome:
    ok: bool
    attempts: int
    seconds: float
    error: str | None = None


@dataclass
class CourierStats:
    sent: int = 0
    failed: int = 0
    consecutive_failures: int = 0
    last_error: str | None = None
    last_sent_at: float | None = None
    last_failure_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class DeliveryFailed(Exception):
    pass


def _with_timeouts(url: str, settings: DeliverySettings) -> str:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    keys = {k for k, _ in query}
    if "cto" not in keys:
        query.append(("cto", f"{settings.connect_timeout:g}"))
    if "rto" not in keys:
        query.append(("rto", f"{settings.read_timeout:g}"))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _errors(result: Any) -> str:
    """Apprise's own words for why a send failed (its 2.x result carries the logs)."""
    texts: list[str] = []
    try:
        for service in result:
            for entry in service.logs():
                texts.append(str(getattr(entry, "message", entry)))
    except TypeError:  # an older Apprise returns a plain bool
        pass
    text = " ".join(" ".join(texts).split())
    return text[:500] or "the service did not accept the message"


class Sender:
    """One Apprise object for one target; `send` is one try."""

    def __init__(self, target: Target, settings: DeliverySettings) -> None:
        import apprise

        self.target = target
        self._apprise = apprise.Apprise()
        if not self._apprise.add(_with_timeouts(target.url, settings)):
            raise DeliveryFailed(f"Apprise cannot use the URL of target {target.id}")
        self._types = {
            "info": apprise.NotifyType.INFO,
            "warning": apprise.NotifyType.WARNING,
            "failure": apprise.NotifyType.FAILURE,
        }

    def send(self, message: Message) -> None:
        try:
            result = self._apprise.notify(
                body=message.body,
                title=message.title,
                notify_type=self._types.get(message.severity, self._types["info"]),
            )
        except Exception as exc:  # a plugin bug must count as a failed try, not kill the thread
            raise DeliveryFailed(
                scrub(f"{type(exc).__name__}: {exc}", self.target.secrets)
            ) from None
        if not result:
            raise DeliveryFailed(scrub(_errors(result), self.target.secrets))


def _sleeper(stop: threading.Event) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        stop.wait(seconds)

    return sleep


def deliver(
    sender: Sender, message: Message, settings: DeliverySettings, stop: threading.Event, tries: int
) -> Outcome:
    """Send with up to `tries` tries and exponential backoff (tenacity); never raises."""
    began = time.monotonic()
    attempts = 0
    retrying = Retrying(
        stop=stop_after_attempt(max(1, tries)),
        wait=wait_exponential(multiplier=settings.backoff, max=settings.backoff_cap),
        sleep=_sleeper(stop),  # a stop cuts the backoff short
        reraise=True,
    )
    try:
        for attempt in retrying:
            with attempt:
                attempts = attempt.retry_state.attempt_number
                if attempts > 1 and stop.is_set():
                    raise DeliveryFailed("stopped before the message could be sent")
                sender.send(message)
    except DeliveryFailed as exc:
        return Outcome(False, attempts, time.monotonic() - began, str(exc))
    return Outcome(True, attempts, time.monotonic() - began)


class TokenBucket:
    """At most `per_minute` takes a minute, `burst` at once."""

    def __init__(self, per_minute: int, burst: int | None = None) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(burst if burst is not None else max(1, min(5, per_minute)))
        self.tokens = self.capacity
        self.at = time.monotonic()

    def wait_time(self) -> float:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate

    def take(self) -> None:
        self.tokens -= 1.0


Report = Callable[[Target, Message, Outcome], None]


class Courier:
    """The thread that delivers one target's messages in order."""

    def __init__(self, target: Target, report: Report, settings: DeliverySettings) -> None:
        self.target = target
        self.settings = settings
        self.stats = CourierStats()
        self._report = report
        self._queue: queue.Queue[Message] = queue.Queue()
        self._stop = threading.Event()
        self._bucket = TokenBucket(target.rate_per_minute)
        self._queued: set[str] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"notify-{target.id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end; one stuck in a send ends after its timeout (daemon)."""
        self._stop.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def submit(self, message: Message) -> None:
        with self._lock:
            if message.id in self._queued:
                return
            self._queued.add(message.id)
        self._queue.put(message)

    def backlog(self) -> int:
        with self._lock:
            return len(self._queued)

    def _run(self) -> None:
        try:
            sender: Sender | None = Sender(self.target, self.settings)
        except Exception as exc:
            log.error("notifier: target %s unusable: %s", self.target.id, exc)
            sender = None
        while not self._stop.is_set():
            try:
                message = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            wait = self._bucket.wait_time()
            while wait > 0 and not self._stop.wait(wait):
                wait = self._bucket.wait_time()
            if self._stop.is_set():
                return  # still in the outbox: sent by the next run
            self._bucket.take()
            if sender is None:
                outcome = Outcome(False, 0, 0.0, "Apprise cannot use this target's URL")
            else:
                down = self.stats.consecutive_failures >= DOWN_AFTER
                tries = 1 if down else self.settings.attempts
                outcome = deliver(sender, message, self.settings, self._stop, tries)
            self._account(outcome)
            try:
                self._report(self.target, message, outcome)
            except Exception:  # recording must not end deliveries to this target
                log.exception("notifier: recording the outcome for %s failed", self.target.id)
            with self._lock:
                self._queued.discard(message.id)

    def _account(self, outcome: Outcome) -> None:
        stats = self.stats
        if outcome.ok:
            stats.sent += 1
            stats.consecutive_failures = 0
            stats.last_sent_at = time.time()
        else:
            stats.failed += 1
            stats.consecutive_failures += 1
            stats.last_error = outcome.error
            stats.last_failure_at = time.time()
