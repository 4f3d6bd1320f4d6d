"""Write imported documents into the manifests folder, keeping what the operator wrote.

Each manifest file is read with ruamel.yaml's round-trip mode
(`YAML(typ='rt')`), so comments, key order, quoting and the documents the
import did not produce survive. A document the import wrote before (it
carries the `homelab.reconciler/imported-from` annotation) is updated in
place: a value that did not change keeps its node (and its comments), a new
key is added at the end of its mapping, and a spec key it no longer
produces is removed, except `policy` (the import writes only its
`ignoreDifferences`: an operator's `autoApprove` stays) and what the
document's `metadata` holds besides its name and the import's annotation. A document
of the same kind and name the import did not write, in this file or in any
other under the folder, is never touched: it is reported. New strings that
YAML 1.1 (the manifest loader's PyYAML) would read as something else (`no`,
`on`, `0644`) are quoted. Files are replaced atomically.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from reconciler.atomic_files import atomic_write_bytes
from reconciler.errors import ConfigError
from reconciler.importing.model import IMPORTED_FROM, Imported

# Spec keys an operator adds and the import never writes: kept on a re-run.
OPERATOR_KEYS = frozenset({"policy"})
# The keys the import writes under these mappings (the rest is the operator's).
_SUB_OWNED = {
    "policy": frozenset({"ignoreDifferences"}),
    "annotations": frozenset({IMPORTED_FROM}),
}


@dataclass
class WriteReport:
    """What a write did, per resource (`Kind/name`) and per file."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # with the reason
    files: list[str] = field(default_factory=list)


def _yaml() -> YAML:
    rt = YAML(typ="rt")
    rt.preserve_quotes = True
    rt.indent(mapping=2, sequence=4, offset=2)
    rt.width = 4096
    rt.explicit_start = False
    return rt


def _needs_quotes(text: str) -> bool:
    """Whether YAML 1.1 (PyYAML's safe loader) would not read `text` back as that string."""
    try:
        return bool(pyyaml.safe_load(f"k: {text}") != {"k": text})
    except pyyaml.YAMLError:
        return True


def to_rt(value: Any) -> Any:
    """Plain data as round-trip nodes, quoting strings YAML 1.1 would misread."""
    if isinstance(value, dict):
        out = CommentedMap()
        for key, item in value.items():
            out[key] = to_rt(item)
        return out
    if isinstance(value, list):
        seq = CommentedSeq()
        seq.extend(to_rt(item) for item in value)
        return seq
    if isinstance(value, str) and _needs_quotes(value):
        return DoubleQuotedScalarString(value)
    return value


def _plain(value: Any) -> Any:
    """Round-trip nodes as plain data (for comparisons)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def merge_into(old: CommentedMap, new: dict[str, Any], owned: frozenset[str] | None) -> bool:
    """Update `old` in place to hold `new`; True when anything changed.

    `owned`: the keys of `old` this merge may remove when `new` lacks them
    (None: every key).
    """
    changed = False
    for key, value in new.items():
        if key in old and isinstance(old[key], dict) and isinstance(value, dict):
            sub_owned = _SUB_OWNED.get(key)
            changed |= merge_into(old[key], value, sub_owned)
        elif key not in old or _plain(old[key]) != value:
            old[key] = to_rt(value)  # an existing key keeps its place in the mapping
            changed = True
    for key in list(old):
        if key not in new and (owned is None or key in owned):
            del old[key]
            changed = True
    return changed


def _comment(item: Imported) -> str:
    return f"imported from {item.source}"


def _new_document(item: Imported) -> CommentedMap:
    doc: CommentedMap = to_rt(item.document())
    doc.yaml_set_start_comment(_comment(item))
    return doc


def _key(doc: Any) -> tuple[str, str] | None:
    if not isinstance(doc, dict):
        return None
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    kind = doc.get("kind")
    return (kind, name) if isinstance(kind, str) and isinstance(name, str) else None


def _imported(doc: Any) -> bool:
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    return isinstance(annotations, dict) and IMPORTED_FROM in annotations


def defined_elsewhere(folder: Path, skip: Path) -> dict[tuple[str, str], str]:
    """Kind/name of every document in the other manifest files (safe loader) -> file."""
    found: dict[tuple[str, str], str] = {}
    paths = sorted([*folder.rglob("*.yaml"), *folder.rglob("*.yml")]) if folder.is_dir() else []
    for path in paths:
        if path.resolve() == skip.resolve():
            continue
        try:
            docs = list(pyyaml.safe_load_all(path.read_bytes()))
        except (OSError, pyyaml.YAMLError):
            continue  # `homelab validate` reports a broken file; it defines nothing here
        for doc in docs:
            key = _key(doc)
            if key is not None:
                found.setdefault(key, str(path.relative_to(folder)))
    return found


def _load(path: Path, rt: YAML) -> list[Any]:
    if not path.exists():
        return []
    try:
        return [d for d in rt.load_all(path.read_text()) if d is not None]
    except (OSError, YAMLError) as exc:
        raise ConfigError(f"{path}: cannot be read as YAML, not rewritten: {exc}") from exc


def _spec_owned(old: dict[str, Any]) -> frozenset[str]:
    """Spec keys this import owns: all but `OPERATOR_KEYS` (each valid key is a field it maps)."""
    return frozenset(set(old) - OPERATOR_KEYS)


def write_file(folder: Path, rel: str, items: list[Imported], report: WriteReport) -> None:
    """Merge `items` into `folder/rel` (created when absent)."""
    path = folder / rel
    if not path.resolve().is_relative_to(folder.resolve()):
        raise ConfigError(f"{rel}: outside the manifests folder")
    rt = _yaml()
    docs = _load(path, rt)
    elsewhere = defined_elsewhere(folder, path)
    by_key = {_key(d): d for d in docs if _key(d) is not None}
    changed = False
    for item in items:
        ref = f"{item.kind}/{item.name}"
        if item.key in elsewhere:
            report.skipped.append(f"{ref}: already defined in {elsewhere[item.key]}")
            continue
        old = by_key.get(item.key)
        if old is None:
            docs.append(_new_document(item))
            by_key[item.key] = docs[-1]
            report.created.append(ref)
            changed = True
        elif not _imported(old):
            report.skipped.append(f"{ref}: {rel} has it and it was not written by an import")
        else:
            new = item.document()
            touched = merge_into(old["metadata"], new["metadata"], frozenset({"name"}))
            touched |= merge_into(old, {k: v for k, v in new.items() if k != "spec"}, frozenset())
            if not isinstance(old.get("spec"), dict):
                old["spec"] = CommentedMap()
            touched |= merge_into(old["spec"], new["spec"], _spec_owned(old["spec"]))
            (report.updated if touched else report.unchanged).append(ref)
            changed |= touched
    if changed or not path.exists():
        buffer = io.StringIO()
        rt.dump_all(docs, buffer)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buffer.getvalue().encode(), mode=0o644)
        report.files.append(rel)


def write_all(folder: Path, files: dict[str, list[Imported]]) -> WriteReport:
    report = WriteReport()
    for rel, items in sorted(files.items()):
        write_file(folder, rel, items, report)
    return report
