"""The package layers are checked by a tool: `lint-imports` keeps them and fails a wrong import.

`hack/check.sh` runs `lint-imports` with the contracts in pyproject.toml. These
tests run the same tool on a copy of the package: as it is (every contract
kept) and with one import from a service into another added (the layers
contract broken, naming the import), so the check can fail and does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    shutil.copytree(
        TOP / "reconciler", tmp_path / "reconciler", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(TOP / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_package_keeps_every_contract(package_copy: Path) -> None:
    result = _lint(package_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "imported"),
    [
        ("api/rendering.py", "reconciler.observer.fold"),
        ("executor/window.py", "reconciler.supervisor.policy"),
        ("planning/stale.py", "reconciler.executor.window"),
        ("world/writer.py", "reconciler.planning"),
    ],
)
def test_an_import_up_or_across_the_layers_fails(
    package_copy: Path, module: str, imported: str
) -> None:
    target = package_copy / "reconciler" / module
    target.write_text(target.read_text() + f"\nimport {imported}  # noqa: E402\n")
    result = _lint(package_copy)
    assert result.returncode != 0
    importer = "reconciler." + module.removesuffix(".py").replace("/", ".")
    assert f"{importer} -> {imported}" in result.stdout, result.stdout
