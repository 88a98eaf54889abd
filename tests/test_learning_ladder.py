"""bench/learning_ladder.py on tiny settings: every rung runs through the package's own stages and prints its
number against its goal (the goals themselves are checked by running the bench at demo size, not here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers import load_bench

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ladder():
    return load_bench("learning_ladder")


def test_rung_line_shows_value_goal_and_verdict(ladder):
    line = ladder.Rung("overfit", "sign2text adat: train BLEU-4", 93.25, "> 90", True).line()
    assert line.startswith("PASS") and "93.2" in line and "goal > 90" in line
    assert ladder.Rung("continuous", "WER", None, "<= 20", False).line().startswith("FAIL")


def test_ladder_config_points_at_the_work_folder_and_scales_the_demo(ladder, tmp_path):
    settings = ladder.Settings(dataset="medasl", train=30, dev=8, test=8, extra={"training": {"max_epochs": 3}})
    cfg = ladder.ladder_config(settings, tmp_path / "demo")
    assert list(cfg["datasets"]) == ["medasl"] and cfg["datasets"]["medasl"]["root"] == str(tmp_path / "demo")
    assert cfg["demo"]["samples"] == {"medasl": {"train": 30, "dev": 8, "test": 8}}
    assert cfg["demo"]["clips_per_dataset"] == 0
    assert cfg["demo"]["overrides"]["training"]["max_epochs"] == 3
    assert cfg["demo"]["overrides"]["training"]["early_stopping"]["patience"] == 5  # merged, not replaced


def test_tiny_ladder_prints_every_rung_against_its_goal(ladder, tmp_path, capsys):
    out_json = tmp_path / "rungs.json"
    code = ladder.main(["--train", "24", "--dev", "6", "--test", "6", "--overfit-samples", "4", "--overfit-epochs", "2",
                        "--isolated-signs", "3", "--isolated-reps", "1", "--isolated-epochs", "1", "--epochs", "2",
                        "--kinect-epochs", "1", "--work", str(tmp_path / "work"), "--json", str(out_json)])
    printed = capsys.readouterr().out
    assert code in (0, 1)  # tiny settings are not expected to pass the goals
    rungs = json.loads(out_json.read_text(encoding="utf-8"))
    assert [r["rung"] for r in rungs] == ["overfit"] * 6 + ["isolated", "continuous", "translation", "translation"]
    lines = [line for line in printed.splitlines() if re.match(r"^(PASS|FAIL) ", line)]
    assert len(lines) == len(rungs) and all("goal " in line for line in lines)
    assert "first failing rung:" in printed
    for r in rungs:
        assert r["value"] is None or 0.0 <= r["value"] <= 200.0  # WER can exceed 100, BLEU/accuracy cannot
    isolated = next(r for r in rungs if r["rung"] == "isolated")
    assert isolated["detail"]["signs"] == 3 and isolated["detail"]["chance"] == pytest.approx(100 / 3)
    assert isolated["detail"]["test_clips"] > 0 and isolated["detail"]["train_clips"] > 0
    translation = [r for r in rungs if r["rung"] == "translation"]
    assert all(r["detail"]["floor"]["test_bleu4"] > 0 and "/" in r["detail"]["distinct"] for r in translation)


@pytest.mark.real_data
def test_isl_kinect_rung_reports_accuracy_against_chance(ladder, tmp_path):
    from conftest import real_data_path

    settings = ladder.Settings(kinect_root=real_data_path("isl_kinect"), kinect_held_out=1, kinect_epochs=1)
    rung = ladder.isl_kinect_rung(settings, tmp_path)
    assert rung.rung == "isl_kinect" and rung.goal == "> 95" and 0.0 <= rung.value <= 100.0
    assert rung.detail["signs"] == 30 and rung.detail["chance"] == pytest.approx(100 / 30)
    (row,) = rung.detail["held_out"]
    assert row["test_samples"] == 30 and row["train_samples"] == 270  # one take of each sign per signer
    assert "chance 3.3" in rung.line() and rung.line().startswith(("PASS", "FAIL"))


def _backbone_commands(ladder, tmp_path: Path, kinect_root: Path, extra=None) -> list[list[str]]:
    settings = ladder.Settings(kinect_root=kinect_root, extra=extra or {})
    config_path = tmp_path / "config.yaml"
    config_path.write_text(ladder.yaml.safe_dump(ladder.ladder_config(settings, tmp_path / "demo")), encoding="utf-8")
    commands: list[list[str]] = []
    ladder.pretrain_backbone(config_path, settings.dataset, tmp_path, commands.append)
    return commands


def test_ladder_backbone_follows_the_shipped_two_stage_method(ladder, tmp_path):
    """The shipped default (two_stage): isl_kinect data, the supervised first stage at the demo's width, then the
    demo windows starting from it, as the workflow's rules run them."""
    root = tmp_path / "isl_kinect"
    root.mkdir()
    data, supervised, demo = _backbone_commands(ladder, tmp_path, root)
    assert data[:1] == ["pretrain-data"] and data[data.index("--source") + 1] == "isl_kinect"
    assert supervised[:1] == ["pretrain-supervised"] and supervised[-1].endswith("stgcnpp_isl_kinect.pth")
    config, ds = supervised[supervised.index("--config") + 1], supervised[supervised.index("--dataset") + 1]
    assert ds == "phoenix14t"  # the demo dataset's view: its width, so stage 2 can start from it
    assert ladder.effective_config(ladder.load_config(config), ds)["backbone"]["base_channels"] == 8
    assert demo[0] == "pretrain-demo" and demo[demo.index("--init") + 1].endswith("stgcnpp_isl_kinect.pth")
    assert "--fallback-note" not in demo


def test_ladder_backbone_falls_back_loudly_or_follows_method_demo(ladder, tmp_path):
    [fallback] = _backbone_commands(ladder, tmp_path, tmp_path / "absent")
    assert fallback[0] == "pretrain-demo" and "--init" not in fallback
    note = fallback[fallback.index("--fallback-note") + 1]
    assert note.startswith("FALLBACK: backbone.pretrain.method two_stage") and str(tmp_path / "absent") in note
    [demo] = _backbone_commands(ladder, tmp_path, tmp_path, {"backbone": {"pretrain": {"method": "demo"}}})
    assert demo[0] == "pretrain-demo" and "--init" not in demo and "--fallback-note" not in demo
