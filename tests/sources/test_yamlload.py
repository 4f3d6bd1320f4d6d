"""Bad YAML input: every case is a located error, never a crash."""

from __future__ import annotations

from reconciler.sources.manifests import parse_file
from reconciler.sources.yamlload import MAX_DEPTH, MAX_FILE_BYTES, load_documents

GOOD = """\
apiVersion: homelab.reconciler/v1alpha1
kind: File
metadata:
  name: good
spec:
  path: /srv/homelab/good
  content: ok
"""


def errors_of(text: str) -> list[str]:
    return [str(e) for e in parse_file("m.yaml", text.encode()).errors]


def test_syntax_error_reports_line_and_column() -> None:
    errors = errors_of("a: [1, 2\nb: 3\n")
    assert len(errors) == 1
    assert errors[0].startswith("m.yaml:2:2: YAML syntax error")


def test_oversized_file_is_refused_at_line_one() -> None:
    text = GOOD + "# " + "x" * MAX_FILE_BYTES + "\n"
    result = parse_file("big.yaml", text.encode())
    assert [str(e) for e in result.errors] == [
        f"big.yaml:1:1: file is {len(text)} bytes, larger than the {MAX_FILE_BYTES} byte limit"
    ]
    assert result.manifests == []


def test_alias_bomb_is_stopped_where_it_expands() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    text = "\n".join(lines) + "\n---\n" + GOOD
    result = parse_file("bomb.yaml", text.encode())
    assert len(result.errors) == 1
    error = result.errors[0]
    assert error.message.startswith("aliases of the anchor here expand the document")
    # PyYAML resolves an alias to its anchor's node: the anchor (&d, line 4) is reported.
    assert (error.location.path, error.location.line, error.location.column) == ("bomb.yaml", 4, 4)
    # the valid document after the bomb still loads
    assert [m.name for m in result.manifests] == ["good"]


def test_deep_nesting_is_refused_at_the_level_that_is_too_deep() -> None:
    depth = MAX_DEPTH + 5
    text = "".join("  " * i + f"k{i}:\n" for i in range(depth)) + "  " * depth + "v\n"
    docs, errors = load_documents("deep.yaml", text.encode())
    assert docs == []
    assert len(errors) == 1
    assert f"nesting deeper than {MAX_DEPTH} levels" in errors[0].message
    # the mapping that starts level MAX_DEPTH + 1 is the value of k{MAX_DEPTH}
    assert errors[0].location.line == MAX_DEPTH + 2


def test_very_deep_flow_nesting_does_not_crash() -> None:
    errors = errors_of("[" * 5000 + "]" * 5000)
    assert len(errors) == 1
    assert errors[0].startswith("m.yaml:1:")


def test_duplicate_key_is_reported_at_the_second_key() -> None:
    text = GOOD.replace("  content: ok\n", "  content: ok\n  content: again\n")
    assert errors_of(text) == ["m.yaml:8:3: duplicate key 'content'"]


def test_unknown_kind_is_reported_at_the_kind_value() -> None:
    errors = errors_of(GOOD.replace("kind: File", "kind: Pod"))
    assert errors == [
        "m.yaml:2:7: kind: unknown kind 'Pod'; "
        "expected one of Node, Container, File, ComposeStack, Network, Volume"
    ]


def test_unknown_api_version_is_reported_at_its_value() -> None:
    errors = errors_of(GOOD.replace("homelab.reconciler/v1alpha1", "v1"))
    assert errors == [
        "m.yaml:1:13: apiVersion: unknown apiVersion 'v1'; expected 'homelab.reconciler/v1alpha1'"
    ]


def test_unknown_field_is_reported_at_the_key() -> None:
    errors = errors_of(GOOD + "  colour: blue\n")
    assert errors == ["m.yaml:8:3: spec.colour: Extra inputs are not permitted"]


def test_bad_name_points_at_the_name() -> None:
    errors = errors_of(GOOD.replace("name: good", "name: Not_Valid"))
    assert len(errors) == 1
    assert errors[0].startswith("m.yaml:4:9: metadata.name: 'Not_Valid' is not a DNS-1123 label")


def test_missing_required_field_points_at_its_parent() -> None:
    text = GOOD.replace("  path: /srv/homelab/good\n", "")
    assert errors_of(text) == ["m.yaml:6:3: spec.path: Field required"]


def test_unsafe_tags_are_refused() -> None:
    text = GOOD.replace("content: ok", "content: !!python/object/apply:os.system ['true']")
    errors = errors_of(text)
    assert len(errors) == 1
    assert "unsupported tag" in errors[0] or "could not determine a constructor" in errors[0]
    assert errors[0].startswith("m.yaml:7:")


def test_a_manifest_must_be_a_mapping() -> None:
    assert errors_of("- a\n- b\n") == ["m.yaml:1:1: a manifest must be a mapping"]


def test_many_documents_per_file_and_empty_documents() -> None:
    text = GOOD + "---\n---\n" + GOOD.replace("name: good", "name: second")
    result = parse_file("m.yaml", text.encode())
    assert result.errors == []
    assert [(m.name, m.location.line) for m in result.manifests] == [("good", 4), ("second", 13)]


def test_invalid_document_is_listed_as_invalid_and_others_still_load() -> None:
    bad = GOOD.replace("name: good", "name: broken").replace("content: ok", "mode: '999'")
    result = parse_file("m.yaml", (bad + "---\n" + GOOD).encode())
    assert [m.name for m in result.manifests] == ["good"]
    assert result.invalid == [("File", "broken")]
    assert [str(e) for e in result.errors] == [
        "m.yaml:7:9: spec.mode: expected a file mode like '0644', got '999'"
    ]
