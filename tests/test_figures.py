"""hatl figure on small finished runs (summary.json + log.jsonl) built in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hatl.cli import main
from hatl.config import REPO_ROOT
from hatl.evaluate.figures import load_run_log, time_unit

CONFIG = str(REPO_ROOT / "config" / "config.yaml")
PER_EPOCH_S = {"transformer": 50.0, "adat": 40.0}  # ADAT: cheaper epochs, as the paper observes
RELEASES = {"transformer": {10: 3, 9: 7}, "adat": {10: 3, 9: 6, 8: 9, 7: 12}}


def make_run(root: Path, dataset: str, model: str, task: str, strategy: str, fold: str = "main") -> Path:
    run = root / "runs" / dataset / model / task / strategy / fold / "seed1234"
    run.mkdir(parents=True)
    releases = RELEASES[model] if strategy == "hatl" else {}
    n_epochs = (max(releases.values()) + 5) if releases else 8
    lines, wall = [], 0.0
    for epoch in range(1, n_epochs + 1):
        wall += PER_EPOCH_S[model] * (1.5 if strategy == "full" else 1.0)
        layers = sorted(layer for layer, e in releases.items() if e <= epoch)
        if strategy == "full":
            layers = list(range(1, 11))
        events = [{"type": "release", "layer": layer} for layer, e in releases.items() if e == epoch]
        lines.append({
            "epoch": epoch, "wall_time_s": wall, "epoch_time_s": PER_EPOCH_S[model], "loss_total": 5.0 / epoch,
            "loss_ce": 4.0 / epoch, "loss_ctc": 1.0 / epoch if task == "sign2gloss2text" else 0.0,
            "dev_bleu4": 2.0 * epoch, "dev_ctc_loss": 3.0 / epoch if task == "sign2gloss2text" else None,
            "metric_name": "ctc_loss" if task == "sign2gloss2text" else "bleu4",
            "trainable_layers": layers, "n_trainable_layers": len(layers), "events": events,
        })
    (run / "log.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    summary = {"dataset": dataset, "model": model, "task": task, "strategy": strategy, "fold": fold,
               "best_epoch": n_epochs - 2, "metric_name": lines[0]["metric_name"], "epochs_run": n_epochs,
               "total_hours": wall / 3600, "train_time_s": wall, "n_backbone_layers": 10,
               "release_epochs": {str(k): v for k, v in releases.items()}, "stop_reason": "early_stopping"}
    (run / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("figs")
    return [make_run(root, "phoenix14t", m, t, s)
            for m in ("transformer", "adat") for t in ("sign2gloss2text", "sign2text") for s in ("classical", "full", "hatl")]


@pytest.mark.parametrize("figure", ["2", "5", "8", "curves"])
def test_figure_files_are_written(tmp_path, runs, figure):
    out = tmp_path / f"figure{figure}.png"
    selected = runs if figure != "curves" else [r for r in runs if "hatl" in r.parts][:2]
    assert main(["figure", "--config", CONFIG, "--figure", figure, "--dataset", "phoenix14t",
                 "--runs", *map(str, selected), "--out", str(out)]) == 0
    png, pdf = out.read_bytes(), out.with_suffix(".pdf").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert pdf[:5] == b"%PDF-"
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["runs"] and "provenance" in meta


def test_run_log_reading(runs):
    hatl = load_run_log(next(r for r in runs if r.parts[-5:] == ("adat", "sign2text", "hatl", "main", "seed1234")))
    assert hatl.release_epochs() == {10: 3, 9: 6, 8: 9, 7: 12}
    assert hatl.train_seconds() == pytest.approx(40.0 * 17)
    assert hatl.cumulative_seconds()[-1] == pytest.approx(40.0 * 17)
    assert time_unit(7200) == ("hours", 3600.0) and time_unit(120)[0] == "minutes" and time_unit(5)[0] == "seconds"


def test_release_epochs_fall_back_to_events(tmp_path):
    run = make_run(tmp_path, "isharah", "transformer", "sign2text", "hatl")
    summary = json.loads((run / "summary.json").read_text())
    del summary["release_epochs"]
    (run / "summary.json").write_text(json.dumps(summary))
    assert load_run_log(run).release_epochs() == {10: 3, 9: 7}


def test_figure_rejects_unfinished_run(tmp_path):
    run = tmp_path / "runs" / "phoenix14t" / "adat" / "sign2text" / "hatl" / "main"
    run.mkdir(parents=True)
    out = tmp_path / "figure2.png"
    assert main(["figure", "--config", CONFIG, "--figure", "2", "--dataset", "phoenix14t", "--runs", str(run),
                 "--out", str(out)]) == 2
    assert not out.exists()
