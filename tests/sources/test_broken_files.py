"""A file YAML cannot parse still names its resources (`recover_refs`), as invalid ones."""

from __future__ import annotations

from reconciler.resources.key import ResourceKey
from reconciler.sources.manifests import parse_file, recover_refs

TWO_DOCS_SECOND_BROKEN = b"""\
apiVersion: homelab.reconciler/v1alpha1
kind: Node
metadata:
  name: local
spec: {}
---
apiVersion: homelab.reconciler/v1alpha1
kind: Container
metadata:
  labels: {team: core}
  name: "web"
spec:
  image: [unclosed
"""


def test_block_and_flow_styles_name_their_resources() -> None:
    flow = b'{"apiVersion": "x", "kind": "File", "metadata": {"name": "motd"}, "spec": {'
    assert recover_refs(flow) == [ResourceKey("File", "motd")]
    assert recover_refs(TWO_DOCS_SECOND_BROKEN) == [
        ResourceKey("Node", "local"),
        ResourceKey("Container", "web"),
    ]


def test_unknown_kinds_and_nameless_documents_name_nothing() -> None:
    assert recover_refs(b"kind: Gizmo\nmetadata:\n  name: x\n") == []
    assert recover_refs(b"kind: Container\nspec: [\n") == []


def test_a_syntax_error_leaves_earlier_documents_valid_and_the_rest_invalid_there() -> None:
    result = parse_file("manifests/apps.yaml", TWO_DOCS_SECOND_BROKEN)
    assert [m.ref for m in result.manifests] == [ResourceKey("Node", "local")]
    assert result.invalid == [ResourceKey("Container", "web")]
    [error] = result.errors_of(0)
    assert str(error).startswith("manifests/apps.yaml:14:")
    assert "YAML syntax error" in error.message
    assert not result.parsed_whole  # nothing may be pruned while the file is unreadable
