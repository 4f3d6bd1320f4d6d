"""Fuzzing the manifest loader: any input is values or located errors, never an exception.

Hypothesis generates YAML scalars (number-like texts, huge integers, booleans,
arbitrary text) under every tag the loader may meet (`!!int`, `!!float`,
`!!bool`, `!!binary`, `!!timestamp`, python tags, unknown tags), in every
quoting style; puts them in every field of real manifests; and generates
whole documents (nested flow and block collections, anchors and aliases).
The loader (`parse_file`, which `homelab validate`, the supervisor and the
observer all use) must return a `FileResult` whose errors are located
`ManifestError`s and whose manifests encode as JSON and into the blob cache.
"""

from __future__ import annotations

import json

import msgspec
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.errors import ManifestError
from reconciler.sources.blobcache import encode_result
from reconciler.sources.manifests import FileResult, parse_file, parse_repo_config

TAGS = [
    "",
    "!!int ",
    "!!float ",
    "!!bool ",
    "!!null ",
    "!!str ",
    "!!timestamp ",
    "!!binary ",
    "!!python/object:os.system ",
    "!!python/name:builtins.eval ",
    "!!python/tuple ",
    "!unknown ",
    "!<tag:yaml.org,2002:int> ",
    "!<tag:example.com,2026:x> ",
    "!!merge ",
    "!!set ",
    "!!omap ",
    "! ",
]
NUMBER_LIKE = st.from_regex(
    r"\A[-+]?(0b[01_]{0,8}|0x[0-9a-fA-F_]{0,8}|0o[0-7_]{0,6}|0[0-7_]{0,6}"
    r"|[0-9_]{0,8}(\.[0-9_]{0,4})?([eE][-+]?[0-9]{0,3})?"
    r"|[0-9]{1,3}(:[0-9_]{1,2}){1,3}(\.[0-9]*)?|\.(inf|nan|Inf|NaN|INF)"
    r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ][0-9:.]{0,12})?)\Z",
    fullmatch=True,
)
HUGE = st.integers(4200, 6000).flatmap(
    lambda n: st.sampled_from(
        [
            *("1" * n, "0x" + "f" * n, "0b" + "1" * (4 * n), "-" + "9" * n, "1" * n + ":30"),
            *("0" + "7" * n, "1" * n + ".5", "1:" * (n // 2) + "1", "+" + "1_" * n),
        ]
    )
)
WORDS = st.sampled_from(["yes", "No", "on", "OFF", "y", "~", "null", "true", "maybe", "", "="])
SCALARS = st.one_of(NUMBER_LIKE, HUGE, WORDS, st.text(max_size=40))


def quoted(value: str, style: str) -> str:
    if style == "single":
        return "'" + value.replace("'", "''") + "'"
    if style == "double":
        return json.dumps(value)
    return value


SCALAR_TEXT = st.builds(
    lambda tag, value, style: tag + quoted(value, style),
    st.sampled_from(TAGS),
    SCALARS,
    st.sampled_from(["plain", "plain", "single", "double"]),
)

FILE = """\
apiVersion: homelab.reconciler/v1alpha1
kind: {kind}
metadata:
  name: {name}
  labels: {{tier: {label}}}
spec:
{spec}
"""
SPECS = {
    "File": "  path: {a}\n  content: {b}\n  mode: {c}\n  node: {d}",
    "Container": (
        "  image: {a}\n  env: {{A: {b}}}\n  ports: [{{containerPort: {c}}}]\n"
        "  healthcheck: {{test: [CMD, 'true'], interval: {d}}}\n  capAdd: [{a}]\n"
        "  volumes: [{{source: {b}, target: /x}}]\n  privileged: {c}"
    ),
    "Node": "  dockerHost: {a}\n  allowedRoots: [{b}]\n  labels: {{x: {c}}}\n  y: {d}",
}


def check(result: FileResult, path: str = "f.yaml") -> None:
    """The only outcomes allowed: values that encode, and located errors."""
    for error in result.errors:
        assert isinstance(error, ManifestError)
        assert error.location.path == path and error.location.line >= 1
        assert error.location.column >= 1 and error.message
    for manifest in result.manifests:
        orjson.dumps(manifest.doc)  # the world, actions and labels are JSON
    msgspec.msgpack.encode(encode_result(result))  # the blob cache


@settings(max_examples=600, deadline=None)
@given(SCALAR_TEXT)
def test_any_scalar_under_any_tag_is_a_value_or_a_located_error(scalar: str) -> None:
    for text in (f"a: {scalar}\n", f"- {scalar}\n", f"{scalar}\n", f"? {scalar}\n: 1\n"):
        check(parse_file("f.yaml", text.encode()))
        config, errors = parse_repo_config("f.yaml", text.encode())
        assert config is None or not errors
        assert all(isinstance(e, ManifestError) and e.location.path == "f.yaml" for e in errors)


@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from(sorted(SPECS)),
    st.lists(SCALAR_TEXT, min_size=6, max_size=6),
    st.booleans(),
)
def test_any_scalar_in_any_manifest_field_is_a_value_or_a_located_error(
    kind: str, values: list[str], inline: bool
) -> None:
    a, b, c, d, name, label = values
    spec = SPECS[kind].format(a=a, b=b, c=c, d=d)
    text = FILE.format(kind=kind, name=name, label=label, spec=spec)
    if inline:
        text = text.replace("\n", "\n---\n", 1)  # a second, broken document
    check(parse_file("f.yaml", text.encode()))


LEAVES = SCALAR_TEXT | st.sampled_from(["*a", "&a x", "&a [1, *a]", "<<: *a", "[", "}", "- -"])


def flow(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.lists(children, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.lists(st.tuples(SCALAR_TEXT, children), max_size=4).map(
            lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in kv) + "}"
        ),
        st.tuples(st.sampled_from(TAGS), children).map("".join),
        st.tuples(st.sampled_from(["&a ", "&b ", ""]), children).map("".join),
    )


DOCUMENT = st.recursive(LEAVES, flow, max_leaves=30)
BLOCK = st.lists(
    st.tuples(st.sampled_from(["", "  ", "    ", "- ", "  - "]), SCALAR_TEXT, DOCUMENT), max_size=8
).map(lambda rows: "\n".join(f"{indent}{k}: {v}" for indent, k, v in rows))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(DOCUMENT, BLOCK), min_size=1, max_size=4))
def test_any_generated_document_is_values_or_located_errors(documents: list[str]) -> None:
    text = "\n---\n".join(documents) + "\n"
    check(parse_file("f.yaml", text.encode()))
