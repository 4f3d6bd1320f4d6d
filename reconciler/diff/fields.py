"""Field-level changes for people: `env.GREETING: "hello" -> "bye"`, in the model's order.

`field_changes(kind, observed, desired)` walks two comparable specs and lists
what differs as `FieldChange`s with readable paths. It works from the kind's
pydantic model (`reconciler.resources.kinds.KINDS`), never from a hand list
of fields, so a field added to a model renders without an edit here:

- **order**: the model's declared field order, nested too (a model's own
  fields, then those it inherits from a base model; keys the model does not
  declare, like a File's `sha256`, follow in the order they appear);
- **keyed lists**: a list whose items have a key (`KEYED_LISTS`, by field
  name; otherwise an item model with a required `name` field) is matched item
  by item on that key, so one variable shows as `env.GREETING` and an added
  or removed one as `+ env.NEW` / `- env.OLD`, never `env[0]`; a key that is
  not a plain word is bracketed (`ports[8080/tcp].hostPort`,
  `volumes[/data]`); a list without unique keys is one value;
- **no defaults**: a field unset (missing, null, empty) or at its model
  default on both sides is no change to show; a created or deleted
  resource lists only what is set (null, empty and false/zero defaults left
  out);
- **secrets**: a secret reference (`{"secret": NAME, "sha256": ...}`) shows as
  `(secret NAME)`, never its fingerprint.

`pointer` is the JSON pointer of the changed value in the desired spec (in
the observed one for a removal), which is how a content fingerprint finds
its line diff (`Change.text_diffs`). The JSON Patch of a change is not
touched: this is its presentation only. Pure.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import types
import typing
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pydantic
from pydantic_core import PydanticUndefined

from reconciler.resources.kinds import KINDS

# List field -> the item fields that identify an item (joined with "/" when several).
KEYED_LISTS: dict[str, tuple[str, ...]] = {
    "env": ("name",),
    "ports": ("containerPort", "protocol"),
    "volumes": ("target",),
    "networks": ("network",),
    "devices": ("containerPath",),
    "tmpfs": ("target",),
    "secrets": ("target",),
    "configs": ("target",),
    "mounts": ("target",),
    "files": ("path",),
    "extraHosts": ("hostname",),
    "subnets": ("subnet",),
    "dependsOn": ("resource",),
}
_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_SINGLE = ("value", "valueFrom")  # an item that holds only one of these shows as that value
_MISSING: Any = object()

Op = Literal["add", "remove", "change"]


@dataclass(frozen=True)
class FieldChange:
    path: str  # readable: env.GREETING, ports[8080/tcp].hostPort
    op: Op
    old: Any  # _MISSING-free: None when there was nothing
    new: Any
    top: str  # the top-level spec field (what forces a replacement)
    pointer: str  # JSON pointer in the desired spec (observed for a removal)
    note: str = ""  # e.g. "secret value changed" when both sides read the same


@dataclass(frozen=True, eq=False)
class Shape:
    """What the model says about one object: field order, defaults, nested shapes."""

    order: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    children: Mapping[str, Shape] = dataclasses.field(default_factory=dict)
    required: frozenset[str] = frozenset()

    @functools.cached_property
    def rank(self) -> dict[str, int]:
        return {k: i for i, k in enumerate(self.order)}

    def default(self, key: str) -> Any:
        return self.defaults.get(key, _MISSING)

    def child(self, key: str) -> Shape:
        return self.children.get(key, _EMPTY)


_EMPTY = Shape()


def _model_of(annotation: Any) -> type[pydantic.BaseModel] | None:
    """The model an annotation holds: itself, its Optional, its list items, unwrapped."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _model_of(typing.get_args(annotation)[0])
    if origin in (list, tuple, set, frozenset, typing.Union, types.UnionType):
        found = [m for a in typing.get_args(annotation) if (m := _model_of(a)) is not None]
        return found[0] if len(found) == 1 else None
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return annotation
    return None


def _json_default(info: Any) -> Any:
    try:
        value = info.get_default(call_default_factory=True, validated_data={})
    except Exception:  # a factory that needs other fields: no default to compare with
        return _MISSING
    if value is PydanticUndefined:
        return _MISSING
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    return value


def _declared_order(model: type[pydantic.BaseModel]) -> list[str]:
    """The model's fields as its class declares them, then those it inherits (nearest first)."""
    out: dict[str, None] = {}
    for cls in model.__mro__:
        for name in vars(cls).get("__annotations__", {}):
            if name in model.model_fields:
                out.setdefault(name)
    out.update(dict.fromkeys(model.model_fields))
    return list(out)


@functools.cache
def model_shape(model: type[pydantic.BaseModel]) -> Shape:
    fields = {name: model.model_fields[name] for name in _declared_order(model)}
    children = []
    for name, info in fields.items():
        inner = _model_of(info.annotation)
        if inner is not None:
            children.append((name, model_shape(inner)))
    return Shape(
        order=tuple(fields),
        defaults={n: d for n, info in fields.items() if (d := _json_default(info)) is not _MISSING},
        children=dict(children),
        required=frozenset(n for n, info in fields.items() if info.is_required()),
    )


@functools.cache
def spec_shape(kind: str) -> Shape:
    """The shape of a kind's spec (an unknown kind: no order, no defaults)."""
    model = KINDS.get(kind)
    spec = model.model_fields.get("spec") if model is not None else None
    inner = _model_of(spec.annotation) if spec is not None else None
    return model_shape(inner) if inner is not None else _EMPTY


def ordered_keys(shape: Shape, *docs: Any) -> list[str]:
    """The keys of `docs`: the model's order first, then the others as they come."""
    present: dict[str, None] = {}
    for doc in docs:
        if isinstance(doc, dict):
            present.update(dict.fromkeys(doc))
    if len(present) * 4 < len(shape.order):  # a few keys of a big model: sort them
        rank = shape.rank
        return sorted(present, key=lambda k: rank.get(k, len(rank)))  # stable: others as they come
    out = [k for k in shape.order if k in present]
    out += [k for k in present if k not in shape.rank]
    return out


def _empty(value: Any) -> bool:
    return (
        value is _MISSING or value is None or (not value and isinstance(value, list | dict | str))
    )


def _quiet(value: Any, default: Any, *, all_defaults: bool) -> bool:
    """Unset, or at its default (any default when comparing; false/zero ones on a create)."""
    if _empty(value):
        return True
    if default is _MISSING or value != default:
        return False
    return all_defaults or not default


def is_secret_ref(value: Any) -> bool:
    return isinstance(value, dict) and "secret" in value and set(value) <= {"secret", "sha256"}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def segment(key: Any) -> str:
    text = str(key)
    return f".{text}" if _WORD.match(text) else f"[{text}]"


def _pointer_part(key: Any) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def _list_key(field: str, shape: Shape, items: list[Any]) -> tuple[str, ...] | None:
    key = KEYED_LISTS.get(field)
    if key is None and "name" in shape.required:
        key = ("name",)
    if key is None or not all(isinstance(i, dict) and key[0] in i for i in items):
        return None
    return key


def _item_key(item: dict[str, Any], key: tuple[str, ...]) -> str:
    return "/".join(str(item.get(k)) for k in key if item.get(k) is not None)


def _keyed(items: list[Any], key: tuple[str, ...]) -> dict[str, tuple[int, dict[str, Any]]] | None:
    out: dict[str, tuple[int, dict[str, Any]]] = {}
    for i, item in enumerate(items):
        k = _item_key(item, key)
        if k in out:
            return None  # the key does not identify the items: one value
        out[k] = (i, item)
    return out


def _rest(item: dict[str, Any], key: tuple[str, ...], shape: Shape) -> Any:
    """An item without its key and its quiet fields; a lone `value` is the value itself."""
    rest = {
        k: item[k]
        for k in ordered_keys(shape, item)
        if k not in key and not _quiet(item[k], shape.default(k), all_defaults=False)
    }
    if len(rest) == 1 and next(iter(rest)) in _SINGLE:
        return next(iter(rest.values()))
    return rest or _MISSING


class _Walk:
    def __init__(self, create: bool) -> None:
        self.create = create  # one side is nothing at all (a create or a delete)
        self.out: list[FieldChange] = []

    def emit(
        self,
        path: str,
        old: Any,
        new: Any,
        top: str,
        pointer: str,
        note: str = "",
        op: Op | None = None,
    ) -> None:
        op = op or ("add" if _empty(old) else "remove" if _empty(new) else "change")
        self.out.append(
            FieldChange(
                path,
                op,
                None if old is _MISSING else old,
                None if new is _MISSING else new,
                top,
                pointer,
                note,
            )
        )

    def value(
        self, shape: Shape, field: str, old: Any, new: Any, path: str, top: str, ptr: str
    ) -> None:
        if old == new:
            return
        old_dict, new_dict = isinstance(old, dict), isinstance(new, dict)
        secret = is_secret_ref(old) or is_secret_ref(new)
        both_dicts = (old_dict or _empty(old)) and (new_dict or _empty(new))
        if (old_dict or new_dict) and not secret and both_dicts:
            self.object(shape, old if old_dict else {}, new, path, top, ptr)
            return
        old_list, new_list = isinstance(old, list), isinstance(new, list)
        both_lists = (old_list or _empty(old)) and (new_list or _empty(new))
        if (
            (old_list or new_list)
            and both_lists
            and self.items(shape, field, _list(old), _list(new), path, top, ptr)
        ):
            return
        note = ""
        if secret and is_secret_ref(old) and is_secret_ref(new) and old["secret"] == new["secret"]:
            note = "secret value changed"
        self.emit(path, old, new, top, ptr, note)

    def object(
        self,
        shape: Shape,
        old: dict[str, Any],
        new: Any,
        path: str,
        top: str,
        ptr: str,
        only: Collection[str] | None = None,
    ) -> None:
        new = new if isinstance(new, dict) else {}
        every = not self.create  # comparing two sides: any default is quiet
        for key in ordered_keys(shape, old, new):
            if only is not None and key not in only:
                continue
            a, b = old.get(key, _MISSING), new.get(key, _MISSING)
            if every and a == b:
                continue  # the same on both sides: nothing to show
            default = shape.default(key)
            if _quiet(a, default, all_defaults=every) and _quiet(b, default, all_defaults=every):
                continue
            sub = f"{path}{segment(key)}" if path else str(key)
            self.value(
                shape.child(key), key, a, b, sub, top or str(key), f"{ptr}/{_pointer_part(key)}"
            )

    def items(
        self,
        shape: Shape,
        field: str,
        old: list[Any],
        new: list[Any],
        path: str,
        top: str,
        ptr: str,
    ) -> bool:
        """Keyed lists item by item; False when the list has no usable key."""
        key = _list_key(field, shape, old + new)
        if key is None:
            return False
        before, after = _keyed(old, key), _keyed(new, key)
        if before is None or after is None:
            return False
        for k in [*after, *(k for k in before if k not in after)]:
            sub = f"{path}{segment(k)}"
            if k not in before:
                i, item = after[k]
                self.emit(sub, _MISSING, _rest(item, key, shape), top, f"{ptr}/{i}", op="add")
            elif k not in after:
                i, item = before[k]
                self.emit(sub, _rest(item, key, shape), _MISSING, top, f"{ptr}/{i}", op="remove")
            elif before[k][1] != after[k][1]:
                i, item = after[k]
                a, b = _rest(before[k][1], key, shape), _rest(item, key, shape)
                if isinstance(a, dict) and isinstance(b, dict) and not is_secret_ref(a | b):
                    self.object(shape, before[k][1], item, sub, top, f"{ptr}/{i}")
                else:
                    self.value(shape, "", a, b, sub, top, f"{ptr}/{i}")
        return True


def field_changes(
    kind: str,
    observed: dict[str, Any] | None,
    desired: dict[str, Any] | None,
    *,
    only: Collection[str] | None = None,
) -> list[FieldChange]:
    """What differs between two comparable specs, field by field, in the model's order.

    With one side None (a create, a delete) every set field of the other is
    listed. `only`: the top-level fields to compare (those a patch touches).
    """
    walk = _Walk(create=observed is None or desired is None)
    walk.object(spec_shape(kind), observed or {}, desired or {}, "", "", "", only)
    return walk.out


def _tidy(shape: Shape, value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _tidy(shape.child(k), value[k])
            for k in ordered_keys(shape, value)
            if not _quiet(value[k], shape.default(k), all_defaults=False)
        }
    if isinstance(value, list):
        return [_tidy(shape, v) for v in value]
    return value


def tidy_spec(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A spec as a page shows it: the model's field order, nested too, without what is unset
    (null, empty, false/zero defaults), as a create lists it. Not for comparing."""
    out: dict[str, Any] = _tidy(spec_shape(kind), spec)
    return out
