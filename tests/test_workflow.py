"""The Snakemake workflow itself: lint-clean, snakefmt-formatted, and its DAG resolves every paper target."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed (scripts/setup.sh installs it)")
    return found


def _run(args: list[str], cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_snakemake_lint_is_clean() -> None:
    result = _run([_tool("snakemake"), "--lint"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition" in result.stdout + result.stderr


def test_snakefmt_leaves_the_workflow_unchanged() -> None:
    result = _run([_tool("snakefmt"), "--check", "Snakefile", "rules/"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_dry_run_of_every_paper_target_from_scratch(tmp_path: Path) -> None:
    """From an empty results folder the DAG reaches every table and figure through the checkpoint."""
    work = tmp_path / "wf"
    work.mkdir()
    for name in ("Snakefile", "rules", "workflow", "config", "envs"):
        src = REPO / name
        (work / name).symlink_to(src, target_is_directory=src.is_dir())
    result = _run([_tool("snakemake"), "-n", "--quiet", "rules", "--cores", "1"], cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout + result.stderr
    for rule in ("demo_data", "manifest", "stats", "table4"):
        assert rule in out, f"rule {rule} missing from the dry run:\n{out}"


def test_unknown_config_key_is_refused_at_parse_time(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "config" / "config.yaml").read_text() + "\nnot_a_key: 1\n")
    result = _run([_tool("snakemake"), "-n", "--configfile", str(bad), "--cores", "1"])
    assert result.returncode != 0
    assert "not_a_key" in result.stdout + result.stderr
