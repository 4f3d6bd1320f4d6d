"""Fixtures of the driver tests: the `lab` (see tests/executor/lab.py)."""

from tests.executor.lab import lab

__all__ = ["lab"]
