"""Planning: desired state + observed state -> plan, below every service.

`desired_specs` (checked comparable specs of a commit), `compute_plan` (one
planning pass: desired, world, diff) and `stale_reason` (does an approved
action still hold) are what the supervisor, the executor's stale-plan check
and the CLI all call, so each compares exactly the same things. The package
reads git and the world through `reconciler.sources` and `reconciler.world`
and imports no service.
"""

from reconciler.planning.compute import IN_PLACE, PlanResult, compute_plan, managed_observed
from reconciler.planning.desired import desired_specs
from reconciler.planning.stale import Tip, stale_reason

__all__ = [
    "IN_PLACE",
    "PlanResult",
    "Tip",
    "compute_plan",
    "desired_specs",
    "managed_observed",
    "stale_reason",
]
