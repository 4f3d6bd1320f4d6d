"""homelab-reconciler: a GitOps control plane for a homelab.

Desired state is YAML in git, observed state is folded from an append-only
event log, a supervisor proposes actions, an operator approves them and an
executor applies them. The CLI (`reconciler.cli`) is the entry point; this
package's subpackages are layered as described in STYLE.md.
"""

__version__ = "0.1.0"
