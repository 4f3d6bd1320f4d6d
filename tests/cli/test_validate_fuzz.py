"""`homelab validate` on generated manifests: never "internal error", always located errors.

Each example commits a generated file (from the loader fuzz strategies) beside
a valid one in a real git repository and runs the real CLI (click's CliRunner
on the `homelab` root group, so the error handling is the one users get).
"""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.cli.main import cli
from tests.conftest import GitRepo
from tests.sources.test_yamlload_fuzz import BLOCK, DOCUMENT, FILE, SCALAR_TEXT, SPECS

GOOD = FILE.format(
    kind="File", name="good", label="ok", spec="  path: /srv/homelab/good\n  content: ok"
)
LOCATED = re.compile(r"^manifests/fuzz\.yaml:\d+:\d+: |^homelab\.yaml:\d+:\d+: ")


def manifest(kind: str, values: list[str]) -> str:
    a, b, c, d, name, label = values
    return FILE.format(
        kind=kind, name=name, label=label, spec=SPECS[kind].format(a=a, b=b, c=c, d=d)
    )


GENERATED = st.one_of(
    st.builds(
        manifest, st.sampled_from(sorted(SPECS)), st.lists(SCALAR_TEXT, min_size=6, max_size=6)
    ),
    st.lists(st.one_of(DOCUMENT, BLOCK), min_size=1, max_size=3).map("\n---\n".join),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(GENERATED, st.booleans())
def test_validate_never_prints_internal_error(tmp_path: Path, text: str, as_config: bool) -> None:
    repo = GitRepo(tmp_path / "repo")  # one repository, a new commit per example
    repo.write("manifests/good.yaml", GOOD)
    target = "homelab.yaml" if as_config else "manifests/fuzz.yaml"
    (repo.path / target).write_text(text + "\n", encoding="utf-8", errors="surrogatepass")
    repo.commit()
    result = CliRunner().invoke(
        cli, ["validate", "--repo", str(repo.path), "--root", str(tmp_path / "root")]
    )
    (repo.path / target).unlink()
    assert "internal error" not in result.output, result.output
    assert result.exit_code in (0, 1), (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    if result.exit_code == 1:
        lines = [line for line in result.output.splitlines() if line and "error(s);" not in line]
        assert lines and all(LOCATED.match(line) for line in lines), result.output
    else:
        assert "OK:" in result.output


def test_validate_reports_the_adversarial_scalars_where_they_are(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.write("manifests/good.yaml", GOOD)
    bad = GOOD.replace("good", "bad").replace("content: ok", "content: 0b_")
    repo.write(
        "manifests/fuzz.yaml", bad + "---\n" + bad.replace("bad", "big").replace("0b_", "9" * 5000)
    )
    repo.commit()
    result = CliRunner().invoke(
        cli, ["validate", "--repo", str(repo.path), "--root", str(tmp_path / "root")]
    )
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(
        "manifests/fuzz.yaml:8:12: spec.content: '0b_' is not a valid integer"
    )
    assert lines[1].startswith("manifests/fuzz.yaml:17:12: spec.content: '99999999999")
    assert "(more than 4000 digits); quote it to keep it as text" in lines[1]
    assert lines[2] == f"2 error(s); 1 valid resource(s) at commit {repo.head[:12]}"


def test_validate_counts_a_resource_with_two_refusals_once(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.write("manifests/good.yaml", GOOD)
    spec = "  image: local/busybox:1\n  privileged: true\n  capAdd: [cap_sys_module]"
    repo.write("manifests/fuzz.yaml", FILE.format(kind="Container", name="t", label="x", spec=spec))
    repo.commit()
    result = CliRunner().invoke(
        cli, ["validate", "--repo", str(repo.path), "--root", str(tmp_path / "root")]
    )
    lines = result.output.splitlines()
    assert [line.split(": ")[1] for line in lines[:2]] == ["spec.privileged", "spec.capAdd[0]"]
    assert lines[2] == f"2 error(s); 1 valid resource(s) at commit {repo.head[:12]}"
