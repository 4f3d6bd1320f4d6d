"""YAML scalars to Python values: every text either converts or says why not.

PyYAML's constructors trust the implicit resolver: `0b_` matches the YAML 1.1
int pattern, then `int('', 2)` raises ValueError; a 5,000-digit integer hits
Python's int-string conversion limit; `!!bool maybe` raises KeyError and
`!!float ''` IndexError. These converters do the same YAML 1.1 conversions
but raise only `ScalarError`, whose message says what to do (quote the value
to keep it as text), so the loader can report it at the scalar's position.
Integers are bounded (`MAX_INT_DIGITS` digits, and the same magnitude for
binary, octal, hexadecimal and base-60 forms) so no later `str()` or JSON
encoding can fail on them. Pure; called by `reconciler.sources.yamlload`.
"""

from __future__ import annotations

import math
from typing import Any

MAX_INT_DIGITS = 4000  # below Python's 4,300-digit conversion limit
_MAX_INT_BITS = int(MAX_INT_DIGITS * math.log2(10))
_BOOLS = {
    "yes": True,
    "no": False,
    "true": True,
    "false": False,
    "on": True,
    "off": False,
    "y": True,
    "n": False,
}
_SPECIAL_FLOATS = {".inf": math.inf, ".nan": math.nan}
_NUMBER_HINT = "YAML 1.1 reads a plain 0b…, 0x…, 0… or digits as a number"


class ScalarError(ValueError):
    """A scalar that its tag cannot turn into a value; the message is for people."""


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:20] + "…" + text[-8:])


def _int_error(text: str, why: str = "") -> ScalarError:
    detail = f" ({why})" if why else f" ({_NUMBER_HINT})"
    return ScalarError(
        f"{_shown(text)} is not a valid integer{detail}; quote it to keep it as text"
    )


def _digits(text: str, body: str, base: int) -> int:
    if not body:
        raise _int_error(text)
    if base == 10 and len(body) > MAX_INT_DIGITS:
        raise _int_error(text, f"more than {MAX_INT_DIGITS} digits")
    try:
        return int(body, base)
    except ValueError:
        raise _int_error(text) from None


def _sexagesimal(text: str, body: str) -> int:
    value = 0
    for part in body.split(":"):
        value = value * 60 + _digits(text, part, 10)
        if value.bit_length() > _MAX_INT_BITS:
            raise _int_error(text, f"more than {MAX_INT_DIGITS} digits")
    return value


def to_int(text: str) -> int:
    """A YAML 1.1 integer: `_` separators, sign, 0b / 0x / 0 (octal) / base 60."""
    body = text.replace("_", "")
    sign = -1 if body[:1] == "-" else 1
    if body[:1] in ("-", "+"):
        body = body[1:]
    if body == "0":
        return 0
    if body.startswith("0b"):
        value = _digits(text, body[2:], 2)
    elif body.startswith("0x"):
        value = _digits(text, body[2:], 16)
    elif ":" in body:
        value = _sexagesimal(text, body)
    elif body.startswith("0"):
        value = _digits(text, body[1:], 8)
    else:
        value = _digits(text, body, 10)
    if value.bit_length() > _MAX_INT_BITS:
        raise _int_error(text, f"more than {MAX_INT_DIGITS} digits")
    return sign * value


def to_float(text: str) -> float:
    """A YAML 1.1 float: `_` separators, sign, .inf / .nan, base 60."""
    body = text.replace("_", "").lower()
    sign = -1.0 if body[:1] == "-" else 1.0
    if body[:1] in ("-", "+"):
        body = body[1:]
    try:
        if body in _SPECIAL_FLOATS:
            return sign * _SPECIAL_FLOATS[body]
        if ":" in body:
            value = 0.0
            for part in body.split(":"):
                value = value * 60 + float(part)
            return sign * value
        return sign * float(body)
    except (ValueError, OverflowError):
        raise ScalarError(
            f"{_shown(text)} is not a valid number; quote it to keep it as text"
        ) from None


def to_bool(text: str) -> bool:
    """A YAML 1.1 boolean (yes/no/true/false/on/off/y/n, any case)."""
    found = _BOOLS.get(text.lower())
    if found is None:
        raise ScalarError(
            f"{_shown(text)} is not a boolean (use true or false); quote it to keep it as text"
        )
    return found


def to_value(tag_kind: str, text: str) -> Any:
    """Convert by the short kind of a core tag: int, float or bool."""
    if tag_kind == "int":
        return to_int(text)
    if tag_kind == "float":
        return to_float(text)
    return to_bool(text)
