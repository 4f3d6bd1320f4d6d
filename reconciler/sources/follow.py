"""Following a remote: polling with jitter and backoff, fetch requests, SourceReady.

`Follower.run(stop)` fetches the remote into its mirror (`Remote.fetch`) at
start, then every `poll` seconds (±`jitter`, so many control planes never
poll a forge in step), at once when a fetch is requested
(`fetch_signal.request_fetch`: the webhook, `homelab source fetch`; watched
with a `FileWatch` on the request's folder), and after a failure with
exponential backoff (`poll`, doubled per failure, capped at `max_backoff`;
a request still fetches at once). A failed fetch keeps the last fetched
commit in force. After every attempt it writes `ROOT/state/source/status.json`
(`read_status`): the URL without credentials, branch, last fetch time and
duration, last success, the commit in force, `ready` and the redacted
error; the UI, `homelab plan` and `/metrics` read it, and the supervisor
proposes no deletes while it says not ready (`source_gate`). Events, through
the `emit` callback the service gives (sources do not write the log
themselves): `source.fetched` (a new tip), `source.force_pushed` (a tip that
does not descend from the previous one, both ids), `source.fetch_failed`
(when the error first appears or changes) and `source.recovered`; each
carries `source` (the URL shown) and `ready`, which the notifier turns into
`source.notready` and its recovery.

`commit_in_force(root, repo, ref)` is the ONE answer to "which commit is
desired now", used by the supervisor, `homelab plan` and the executor, for a
mirror and a local folder alike (the signed-commit gate hooks in there).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.atomic_files import atomic_write_json, read_json
from reconciler.errors import GitError, HomelabError
from reconciler.file_watch import FileWatch
from reconciler.runtime_root import RuntimeRoot
from reconciler.sources.fetch_signal import fetch_request_path, take_fetch_request
from reconciler.sources.git import GitRepo
from reconciler.sources.remote import Remote

log = logging.getLogger("reconciler.source")
Emit = Callable[[str, dict[str, Any]], None]
DEFAULT_POLL = 60.0
DEFAULT_JITTER = 0.1
DEFAULT_MAX_BACKOFF = 600.0
MAINTAIN_EVERY = 50  # fetches that brought a new tip between two `git maintenance --auto`


def status_path(root: RuntimeRoot) -> Path:
    return root.state / "source" / "status.json"


def read_status(root: RuntimeRoot) -> dict[str, Any] | None:
    """The follower's last status document; None when no remote is followed."""
    try:
        doc = read_json(status_path(root))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def source_gate(root: RuntimeRoot) -> str | None:
    """Why deletes must wait for the source (None: a local folder or a ready remote)."""
    doc = read_status(root)
    if doc is None or doc.get("ready") is not False:
        return None
    return f"source not ready: {doc.get('error') or 'the last fetch failed'}"


def commit_in_force(root: RuntimeRoot | None, repo: Path, ref: str | None = None) -> str:
    """The commit to plan and apply now: the tip of `ref` (default HEAD) of `repo`.

    For a followed remote `repo` is the mirror, whose HEAD is the followed
    branch at the last successful fetch, so a failed fetch keeps the last
    fetched commit in force. GitError when there is no commit yet.
    """
    del root  # the signed-commit gate (per runtime root) plugs in here
    try:
        return GitRepo(repo).resolve(ref)
    except GitError:
        if ref is None and repo.parent.name == "git" and (repo / "HEAD").is_file():
            raise GitError(
                f"no commit fetched yet into the mirror {repo} "
                "(see `homelab source status` for why)"
            ) from None
        raise


@dataclass(frozen=True)
class FollowSettings:
    poll: float = DEFAULT_POLL
    jitter: float = DEFAULT_JITTER
    timeout: float = 60.0
    max_backoff: float = DEFAULT_MAX_BACKOFF


def next_delay(settings: FollowSettings, failures: int, rng: random.Random) -> float:
    """Seconds to the next fetch: the poll period with jitter, doubled per failure."""
    base = settings.poll if failures == 0 else settings.poll * 2 ** min(failures - 1, 30)
    base = min(base, max(settings.poll, settings.max_backoff))
    return max(0.05, base * (1 + rng.uniform(-settings.jitter, settings.jitter)))


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Follower:
    """Keeps the mirror of one remote current; see the module docstring."""

    def __init__(
        self,
        remote: Remote,
        root: RuntimeRoot,
        settings: FollowSettings | None = None,
        emit: Emit | None = None,
    ) -> None:
        self.remote = remote
        self.root = root
        self.settings = settings or FollowSettings()
        self.emit = emit or (lambda _type, _data: None)
        self.failures = 0
        self.fetches = 0
        self.changed_fetches = 0
        self._rng = random.Random()
        self._wake = threading.Event()
        previous = read_status(root) or {}
        if previous.get("url") != remote.shown_url:
            previous = {}  # another source's history is not this one's
        self.status: dict[str, Any] = {
            k: previous.get(k)
            for k in ("lastSuccessAt", "lastSuccessTs", "lastForcePush", "commit", "error")
        }

    def fetch_once(self, reason: str = "poll") -> bool:
        """One fetch, its status and events; True when it succeeded.

        The status file is written before the events are emitted, so whoever an
        event wakes (the supervisor) reads the new SourceReady.
        """
        started = time.perf_counter()
        at = time.time()
        self.fetches += 1
        events: list[tuple[str, dict[str, Any]]] = []
        try:
            result = self.remote.fetch(self.settings.timeout)
        except Exception as exc:  # a git error, or a bug: reported, and the next fetch retries
            if not isinstance(exc, GitError | HomelabError | OSError):
                log.exception("source: fetch crashed")
            error = self.remote.redact(str(exc) or type(exc).__name__)
            self.failures += 1
            if error != self.status.get("error"):
                failed = {**self._ident(False), "error": error, "message": error, "trigger": reason}
                events.append(("source.fetch_failed", failed))
                log.warning("source: %s", error)
            self.status["error"] = error
            self._write(False, at, time.perf_counter() - started)
            self._emit_all(events)
            return False
        seconds = time.perf_counter() - started
        if self.status.get("error"):
            recovered = {**self._ident(True), "commit": result.new}
            events.append(("source.recovered", recovered))
        self.failures = 0
        self.status.update(error=None, lastSuccessAt=_now_iso(), lastSuccessTs=at)
        if result.changed:
            data = {
                **self._ident(True),
                "branch": result.branch,
                "from": result.old,
                "to": result.new,
                "trigger": reason,
            }
            events.append(("source.fetched", data))
            if result.forced:
                self.status["lastForcePush"] = {"from": result.old, "to": result.new, "at": at}
                events.append(("source.force_pushed", data))
                log.warning(
                    "source: %s was rewritten: %s -> %s (not a descendant)",
                    result.branch,
                    (result.old or "")[:12],
                    result.new[:12],
                )
        self.status["commit"] = result.new
        self._write(True, at, seconds)
        self._emit_all(events)
        if result.changed:
            self.changed_fetches += 1
            if self.changed_fetches % MAINTAIN_EVERY == 0:
                self._maintain()
        return True

    def _maintain(self) -> None:
        try:
            self.remote.maintain()
        except (GitError, OSError) as exc:  # the mirror still works, only less packed
            log.warning("source: %s", self.remote.redact(str(exc)))

    def _ident(self, ready: bool) -> dict[str, Any]:
        """What names the source in its events (the notifier's `source.notready` reads these)."""
        return {"source": self.remote.shown_url, "url": self.remote.shown_url, "ready": ready}

    def _emit_all(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        for type_, data in events:
            self.emit(type_, data)

    def _write(self, ready: bool, at: float, seconds: float) -> None:
        doc = {
            **self.status,
            "url": self.remote.shown_url,
            "branch": self.remote.branch() or self.remote.branch_flag,
            "mirror": str(self.remote.mirror),
            "ready": ready,
            "lastFetchAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)),
            "lastFetchTs": at,
            "lastFetchSeconds": round(seconds, 4),
            "consecutiveFailures": self.failures,
            "pollSeconds": self.settings.poll,
        }
        if not ready:
            doc["commit"] = self.remote.tip()  # still in force
        try:
            atomic_write_json(status_path(self.root), doc)
        except OSError as exc:  # the status is a report; the next fetch writes it again
            log.warning("source: cannot write %s: %s", status_path(self.root), exc)

    def _watch_requests(self, stop: threading.Event) -> None:
        folder = fetch_request_path(self.root).parent
        name = fetch_request_path(self.root).name
        while not stop.is_set():
            try:
                folder.mkdir(parents=True, exist_ok=True)
                watch = FileWatch(
                    [(folder, False)],
                    relevant=lambda _c, p: Path(p).name == name,
                    on_change=lambda _c, _p: self._wake.set(),
                ).start()
                try:
                    stop.wait()
                finally:
                    watch.close()
            except Exception as exc:  # the poll still runs; try the watch again
                log.warning("source: fetch-request watch failed (%s); retrying in 5s", exc)
                stop.wait(5.0)

    def run(self, stop: threading.Event) -> None:
        """Fetch at start, on every request and every poll period, until `stop`."""
        watch_stop = threading.Event()
        threading.Thread(
            target=self._watch_requests, args=(watch_stop,), name="source-requests", daemon=True
        ).start()

        def relay() -> None:
            stop.wait()
            self._wake.set()

        threading.Thread(target=relay, daemon=True).start()
        try:
            take_fetch_request(self.root)  # the first fetch covers an older request
            self.fetch_once("start")
            while not stop.is_set():
                delay = next_delay(self.settings, self.failures, self._rng)
                woken = self._wake.wait(delay)
                self._wake.clear()
                if stop.is_set():
                    break
                reason = take_fetch_request(self.root)
                if woken and reason is None:
                    continue  # a spurious wake (the request was taken already)
                self.fetch_once(f"request: {reason}" if reason else "poll")
        finally:
            watch_stop.set()

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name="source-follower")
        thread.daemon = True
        thread.start()
        return thread
