"""The error hierarchy of the whole package, in one place.

Every user-facing error says what went wrong, where (file:line:column or a
resource reference) and, where it helps, what to do. The CLI prints
`HomelabError` subclasses without a traceback; anything else is a bug.
Retry policy lives apart from the loops: drivers raise `TemporaryError` or
`PermanentError` and one place (the executor) decides to retry.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass


class HomelabError(Exception):
    """Base of every error the CLI reports as a message, not a traceback."""


class ConfigError(HomelabError):
    """A flag, environment variable or runtime root is unusable."""


class GitError(HomelabError):
    """git failed or the repository/ref does not exist."""


@dataclass(frozen=True)
class Location:
    """Where in a manifest file something is: 1-based line and column."""

    path: str
    line: int = 1
    column: int = 1

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True)
class ManifestError:
    """One problem in one manifest: `path:line:column: field: message`."""

    location: Location
    field: str
    message: str

    def __str__(self) -> str:
        field = f"{self.field}: " if self.field else ""
        return f"{self.location}: {field}{self.message}"

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.location.path,
            "line": self.location.line,
            "column": self.location.column,
            "field": self.field,
            "message": self.message,
        }


class ManifestsInvalid(HomelabError):
    """Raised by strict callers when any manifest error exists."""

    def __init__(self, errors: list[ManifestError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class TemporaryError(HomelabError):
    """A transient failure (engine unreachable, timeout): worth retrying."""

    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentError(HomelabError):
    """A failure that retrying cannot fix (bad image reference, denied)."""


class QueueConflict(HomelabError):
    """An action is no longer in the state the caller expected."""

    def __init__(self, action_id: str, current: str | None) -> None:
        self.action_id = action_id
        self.current = current
        where = f"already {current}" if current else "not found"
        super().__init__(f"action {action_id} is {where}")


class PathOutsideRoot(PermanentError):
    """A path built from input would leave its allowed root."""


class StorageError(HomelabError, OSError):
    """A write to the runtime root failed (disk full, read-only, I/O error).

    Also an `OSError`, so code that tolerates a failed write keeps doing so.
    `errno` is the system's; the message names the path, the problem and
    what became of the operation (the queue says "nothing was moved").
    """

    def __init__(self, what: str, path: object, cause: OSError, outcome: str) -> None:
        problem = cause.strerror or str(cause)
        hint = ""
        if cause.errno in (errno.ENOSPC, errno.EDQUOT):
            hint = "; the disk holding the runtime root is full: free space, then retry"
        elif cause.errno == errno.EROFS:
            hint = "; the runtime root is on a read-only filesystem"
        message = f"cannot {what}: {problem} writing {path}{hint} ({outcome})"
        HomelabError.__init__(self, message)
        self.errno = cause.errno
        self.strerror = message
        self.filename = str(path)
        self.what, self.outcome = what, outcome
        self.retryable = True  # False once the write passed its point of no return

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
