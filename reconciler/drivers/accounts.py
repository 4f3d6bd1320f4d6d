"""File ownership on this machine: owner/group as an id, and an id as the manifest wrote it.

A File's `owner` and `group` are a name (`www-data`) or a numeric id
(`"1000"`, kept as text by the model). `resolve` turns one into the id
`os.chown` takes, or raises a `PermanentError` naming the unknown account.
`notation` is the other direction, used by the File collector so that an
observed spec compares equal to the desired one: when the manifest wrote an
id the observation is the id; when it wrote a name and that name resolves
to the file's id, the observation is that same name (an alias sharing the
id is not drift); otherwise it is the name of the file's id on this machine,
or the bare id when it has none (a user-less uid shows as `"1234"`). Names
are looked up in the machine's user and group databases (`pwd`, `grp`).
Called by the file driver and the File collector.
"""

from __future__ import annotations

import grp
import pwd
from typing import Literal

from reconciler.errors import PermanentError

Which = Literal["owner", "group"]


def _id_of(which: Which, name: str) -> int | None:
    try:
        return pwd.getpwnam(name).pw_uid if which == "owner" else grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def _name_of(which: Which, number: int) -> str | None:
    try:
        return pwd.getpwuid(number).pw_name if which == "owner" else grp.getgrgid(number).gr_name
    except (KeyError, OverflowError):
        return None


def resolve(which: Which, value: str, *, what: str) -> int:
    """The numeric id of a manifest's owner or group (a name or an id as text)."""
    if value.isdigit():
        return int(value)
    found = _id_of(which, value)
    if found is None:
        kind = "user" if which == "owner" else "group"
        raise PermanentError(
            f"{what}: {which} {value!r} is not a {kind} on this machine "
            f"(create the {kind}, or give a numeric id)"
        )
    return found


def notation(which: Which, number: int, wanted: str) -> str:
    """The file's owner or group written the way the manifest (`wanted`) writes it."""
    if wanted.isdigit():
        return str(number)
    if _id_of(which, wanted) == number:
        return wanted
    return _name_of(which, number) or str(number)
