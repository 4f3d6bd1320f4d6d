"""Fixtures of the executor tests: the `lab` (see tests/executor/lab.py)."""

from tests.executor.lab import lab

__all__ = ["lab"]
