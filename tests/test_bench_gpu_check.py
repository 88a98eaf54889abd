"""bench/gpu_check.py's pieces on the CPU: report parsing, the quick-mode manifest subset, the skips and the
budget stop (nothing is timed; the CPU fallback end to end is run by hand, see docs/validation.md)."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import load_bench

REPO = Path(__file__).resolve().parents[1]


bench = load_bench("gpu_check")


def test_parse_junit_counts_outcomes_and_keeps_printed_figures(tmp_path):
    xml = tmp_path / "r.xml"
    xml.write_text(textwrap.dedent("""\
        <?xml version="1.0" encoding="utf-8"?>
        <testsuites><testsuite name="pytest" tests="3">
          <testcase classname="tests.test_gpu" name="test_a" time="1.25"><system-out>bf16 vs fp32: {"loss_rel_first": 0.001}
        </system-out></testcase>
          <testcase classname="tests.test_gpu" name="test_b" time="0.01"><skipped message="needs CUDA: no GPU"/></testcase>
          <testcase classname="tests.test_gpu" name="test_c" time="2"><failure message="assert 0.5 &gt; 0.9">tb</failure></testcase>
        </testsuite></testsuites>
        """), encoding="utf-8")
    parsed = bench.parse_junit(xml)
    assert parsed["counts"] == {"passed": 1, "failed": 1, "error": 0, "skipped": 1}
    a, b, c = parsed["tests"]
    assert a["test"] == "tests.test_gpu::test_a" and a["time_s"] == 1.25
    assert a["printed"] == ['bf16 vs fp32: {"loss_rel_first": 0.001}']
    assert b["detail"] == "needs CUDA: no GPU" and c["detail"] == "assert 0.5 > 0.9"


def test_snakemake_progress_takes_the_last_progress_line():
    log = "Building DAG\n3 of 51 steps (6%) done\nlocalrule x:\n18 of 51 steps (35%) done\nerror elsewhere\n"
    assert bench.snakemake_progress(log) == {"done": 18, "total": 51}
    assert bench.snakemake_progress("nothing yet") is None


def test_subset_manifest_keeps_the_first_rows_of_the_named_splits(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "manifest.parquet"
    table = pa.table({"sample_id": [f"s{i}" for i in range(9)], "split": ["dev"] * 3 + ["test"] * 2 + ["train"] * 4})
    pq.write_table(table.replace_schema_metadata({b"hatl": b"kept"}), path)
    counts = bench.subset_manifest(path, {"train": 2, "dev": 1})
    assert counts == {"dev": 1, "test": 2, "train": 2}
    kept = pq.read_table(path)
    assert kept.column("sample_id").to_pylist() == ["s0", "s3", "s4", "s5", "s6"]
    assert kept.schema.metadata == {b"hatl": b"kept"}  # the manifest's own metadata survives


def test_one_epoch_config_merges_changes_over_the_example(tmp_path):
    import yaml

    out = bench.one_epoch_config(REPO / "config" / "examples" / "phoenix14t_gloss2text.yaml", tmp_path / "c.yaml",
                                 {"training": {"max_epochs": 1}, "datasets": {"phoenix14t": {"root": "/data/p"}}})
    cfg = yaml.safe_load(out.read_text())
    assert cfg["training"]["max_epochs"] == 1 and cfg["training"]["batch_size"] == 16  # the rest kept
    assert cfg["datasets"]["phoenix14t"]["root"] == "/data/p" and cfg["datasets"]["phoenix14t"]["annotations"] == "manual"
    assert cfg["model"]["transformer"]["hidden"] == 512  # the paper's sizes


def test_data_parts_skip_with_the_reason_when_data_is_absent(tmp_path):
    phoenix = bench.phoenix_epoch(tmp_path / "nodata", tmp_path / "work", quick=True)
    assert phoenix["status"] == "skipped" and "PHOENIX14T annotations not found" in phoenix["reason"]
    medasl = bench.medasl_epoch(tmp_path / "medasl_full", tmp_path / "work", budget_s=1)
    assert medasl["status"] == "skipped" and "git clone https://github.com/INDUCE-Lab/MedASL" in medasl["reason"]
    (tmp_path / "partial" / "Annotations").mkdir(parents=True)
    for i in range(3):
        (tmp_path / "partial" / "Videos" / str(i)).mkdir(parents=True)
    assert "holds 3 sentence folders" in bench.medasl_problem(tmp_path / "partial")


def test_run_logged_stops_a_command_at_its_budget_and_reports_it(tmp_path):
    done = bench.run_logged([sys.executable, "-c", "print('hi', flush=True); import time; time.sleep(60)"],
                            tmp_path / "x.log", timeout_s=2)
    assert done["stopped_by_budget"] and done["returncode"] != 0 and done["wall_s"] < 30
    assert "hi" in (tmp_path / "x.log").read_text()
    ok = bench.run_logged([sys.executable, "-c", "pass"], tmp_path / "y.log", timeout_s=30)
    assert ok == {**ok, "returncode": 0, "stopped_by_budget": False}


def test_a_failing_part_is_reported_and_the_report_is_valid_json(tmp_path):
    def boom():
        raise RuntimeError("no device")

    part = bench.run_part("x", boom)
    assert part["status"] == "failed" and part["error"] == "RuntimeError: no device"
    bench.write_report(tmp_path / "r.json", {"parts": {"x": part}})
    assert json.loads((tmp_path / "r.json").read_text())["parts"]["x"]["status"] == "failed"


@pytest.mark.parametrize("mode", ["quick"])
def test_main_refuses_a_workdir_inside_the_repository(mode, tmp_path):
    with pytest.raises(SystemExit, match="inside the repository"):
        bench.main(["--out", str(tmp_path / "r.json"), "--mode", mode, "--parts", "environment", "--workdir", str(REPO / "x")])


def test_stgcnpp_part_builds_the_paper_backbone_and_reports_cpu_as_fp32_only(monkeypatch):
    import torch

    monkeypatch.setattr(bench, "QUICK_STGCN", {"batch": 1, "frames": 8, "warmup": 0, "repeats": 1})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the CPU path, also on a GPU machine
    result = bench.stgcnpp(quick=True)
    assert (result["joints"], result["base_channels"]) == (135, 64)  # the default groups and the released width
    assert result["device"] == "cpu" and "bf16" not in result and "fp32 only" in result["note"]
    assert result["fp32"]["ms_per_batch"] > 0 and result["fp32"]["samples_per_s"] > 0
