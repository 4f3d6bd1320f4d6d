"""Build hook: ship the example repository (`manifests/`, `compose/`) inside the wheel.

`homelab up` without `--repo` creates its example repository from
`reconciler/example/` of the installed package (see reconciler/cli/example.py);
in a source checkout it reads the folders at the repository top instead. All
other packaging settings live in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

EXAMPLE_FOLDERS = ("manifests", "compose")
ASSET_FOLDERS = {"ui": "ui_assets"}  # the operator UI's templates and static files


class BuildPyWithExample(build_py):
    def run(self) -> None:
        super().run()
        top = Path(__file__).resolve().parent
        target = Path(self.build_lib) / "reconciler" / "example"
        for folder in EXAMPLE_FOLDERS:
            if (top / folder).is_dir():
                shutil.rmtree(target / folder, ignore_errors=True)
                shutil.copytree(top / folder, target / folder)
        for folder, name in ASSET_FOLDERS.items():
            if (top / folder).is_dir():
                shutil.rmtree(target.parent / name, ignore_errors=True)
                shutil.copytree(top / folder, target.parent / name)


setup(cmdclass={"build_py": BuildPyWithExample})
