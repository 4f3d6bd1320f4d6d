"""Drivers: apply one action to one kind (Docker containers, files, compose stacks).

The interface and its rules are in `reconciler.drivers.base`.
"""

from reconciler.drivers.base import (
    ApplyContext,
    ApplyResult,
    Driver,
    DriverSettings,
    InputChanged,
    NodeInfo,
)

__all__ = ["ApplyContext", "ApplyResult", "Driver", "DriverSettings", "InputChanged", "NodeInfo"]
