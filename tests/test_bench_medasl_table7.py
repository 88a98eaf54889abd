"""bench/medasl_table7.py's summary on a tiny fake work directory (nothing is trained or run)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from hatl.evaluate.tables import COLUMNS, reported_rows
from helpers import load_bench

REPO = Path(__file__).resolve().parents[1]
RUN = Path("results/runs/medasl/transformer/sign2text")


bench = load_bench("medasl_table7")


def _measured(strategy: str, test_bleu4: float, test_rouge: float) -> dict:
    row = {"table": 7, "dataset": "medasl", "task": "sign2text", "name": f"Transformer ({strategy})", "model": "transformer",
           "strategy": strategy, "source": "measured", "data": "real", "n_folds": 1, "runs": str(RUN / strategy / "fold0" / "seed1234")}
    for split in ("dev", "test"):
        for metric, value in zip(("bleu1", "bleu2", "bleu3", "bleu4", "rouge"), (30.0, 20.0, 10.0, test_bleu4, test_rouge)):
            row[f"{split}_{metric}"] = value
    return row


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    wd = tmp_path / "run"
    bdir = wd / "benchmarks"
    tsv_head = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    for rel, body in {
        "train/medasl/transformer/sign2text/hatl/fold0/seed1234.tsv": "64.02\t0:01:04\t1780.95\t3662\t1635\t1696\t0\t591\t69\t44\n",
        "keypoints/medasl/shard-0.tsv": "2.0\t0:00:02\t248.0\t1\t1\t1\t0\t0\t0\t1\n",
        "keypoints/medasl/shard-1.tsv": "1.0\t0:00:01\tNA\tNA\tNA\tNA\tNA\tNA\tNA\tNA\n",  # too short to sample memory
        "pretrain_demo.tsv": "18.0\t0:00:18\t766.0\t1\t1\t1\t0\t0\t0\t1\n",
    }.items():
        (bdir / rel).parent.mkdir(parents=True, exist_ok=True)
        (bdir / rel).write_text(tsv_head + body, encoding="utf-8")

    run = wd / RUN / "hatl" / "fold0" / "seed1234"
    run.mkdir(parents=True)
    log = [
        {"epoch": 1, "events": [{"type": "best", "reason": "metric 0.01"}]},
        {"epoch": 2, "events": [{"type": "restore", "reason": "x"}, {"type": "release", "layer": 10, "reason": "plateau"}]},
        {"epoch": 3, "events": [{"type": "release", "layer": 9, "reason": "plateau"}, {"type": "stop", "reason": "early"}]},
    ]
    (run / "log.jsonl").write_text("".join(json.dumps(line) + "\n" for line in log), encoding="utf-8")
    (run / "summary.json").write_text(json.dumps({
        "epochs_run": 3, "best_epoch": 2, "metric_name": "bleu4", "best_metric": 0.02, "stop_reason": "early",
        "train_time_s": 60.5, "release_epochs": {"10": 2, "9": 3}, "n_backbone_layers": 10}), encoding="utf-8")
    nolm = {"bleu1": 25.0, "bleu2": 15.0, "bleu3": 8.0, "bleu4": 4.0, "rouge": 20.0}
    (run / "scores.json").write_text(json.dumps({"splits": {s: {"bleu4": 5.0, "nolm": nolm} for s in ("dev", "test")}}),
                                     encoding="utf-8")
    (wd / "resume" / "medasl" / "transformer" / "sign2text" / "full" / "fold0" / "seed1234").mkdir(parents=True)  # training now
    rule_log = wd / "logs" / "train" / "medasl" / "transformer" / "sign2text" / "full" / "fold0" / "seed1234.log"
    rule_log.parent.mkdir(parents=True)
    rule_log.write_text("08:42:42 INFO hatl.train.trainer: epoch 1 | loss 4.2 | best\n"
                        "08:43:43 INFO hatl.train.trainer: epoch 2 | loss 3.3 | dev bleu4 1.61\n", encoding="utf-8")

    # Table 7 as `hatl table` writes it: the paper's rows from the package, three measured Transformer Sign2Text rows.
    rows = reported_rows(7, "medasl") + [_measured("classical", 2.0, 21.0), _measured("full", 3.0, 20.0),
                                         _measured("hatl", 1.0, 19.0)]
    (wd / "results").mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).reindex(columns=COLUMNS).to_csv(wd / "results" / "table7.csv", index=False, float_format="%.4f")

    manifest = pd.DataFrame({
        "sample_id": [f"s{i}" for i in range(6)],
        "split": ["trainval", "trainval", "trainval", "trainval", "test", "test"],
        "fold": [0, 1, 1, 1, -1, -1],
        "signer": ["a"] * 6,
        "gloss": ["PAIN HAVE", "PAIN WHERE", "DOCTOR COME", "PILL TAKE", "PAIN HAVE YOU", ""],
        "text": ["Where is the pain?", "where does it hurt", "the doctor comes", "take the pill", "Take the pill!",
                 "the pain is new"],
        "source": ["x"] * 6, "source_kind": ["npy"] * 6, "fps": [30.0] * 6, "n_frames": [10] * 6, "shard": [0] * 6,
    })
    (wd / "results" / "medasl").mkdir(parents=True)
    manifest.to_parquet(wd / "results" / "medasl" / "manifest.parquet")
    return wd


def test_benchmarks_grouped_by_rule_with_training_identity(workdir: Path):
    jobs = bench.benchmark_jobs(workdir / "benchmarks")
    train = [j for j in jobs if j["rule"] == "train"]
    assert len(jobs) == 4 and len(train) == 1
    assert train[0]["model"] == "transformer" and train[0]["strategy"] == "hatl" and train[0]["s"] == pytest.approx(64.02)
    grouped = bench.group_jobs(jobs)
    keypoints = grouped["rules"]["keypoints"]
    assert keypoints["jobs"] == 2 and keypoints["total_s"] == pytest.approx(3.0) and keypoints["peak_rss_mb"] == 248.0
    assert grouped["rules"]["pretrain_demo"]["jobs"] == 1
    assert grouped["total"]["total_s"] == pytest.approx(85.02) and grouped["total"]["peak_rss_mb"] == pytest.approx(1780.95)


def test_run_facts_release_timeline_and_missing(workdir: Path):
    done = bench.run_facts(workdir, "transformer", "sign2text", "hatl", "fold0", "seed1234")
    assert done["status"] == "done" and done["epochs_run"] == 3 and done["best_epoch"] == 2
    assert [(r["epoch"], r["layer"]) for r in done["releases"]] == [(2, 10), (3, 9)]
    running = bench.run_facts(workdir, "transformer", "sign2text", "full", "fold0", "seed1234")
    assert running["status"] == "in progress" and running["last_epoch"] == 2
    assert bench.run_facts(workdir, "adat", "sign2text", "full", "fold0", "seed1234")["status"] == "missing"


def test_ranking_ties_and_missing():
    assert bench.ranking({"classical": 1.0, "full": 2.0, "hatl": 3.0})["hatl_best"] == "yes"
    tied = bench.ranking({"classical": 26.0, "full": 51.8, "hatl": 51.8})
    assert tied["best"] == ["full", "hatl"] and tied["hatl_best"] == "tied"
    partial = bench.ranking({"classical": 1.0, "full": None, "hatl": None})
    assert partial["hatl_best"] == "missing" and partial["missing"] == ["full", "hatl"]


def test_overlap_functions():
    train = ["where is the pain", "take the pill"]
    assert bench.exact_overlap(train, ["take the pill", "the pain is new"]) == 0.5
    assert bench.exact_overlap(train, []) is None
    # bigrams of the other text: (the, pain) seen, (pain, is) and (is, new) not
    assert bench.ngram_coverage(train, ["the pain is new"], 2) == pytest.approx(1 / 3)
    assert bench.ngram_coverage(train, ["pain"], 2) is None


def test_summary_of_a_partial_run(workdir: Path, tmp_path: Path):
    summary = bench.summarise(workdir, bench.DEFAULT_CONFIGFILES)
    # Sign2Gloss2Text trains a sign2gloss run per strategy and one gloss2text run per translator: 2 x (3 + 1 + 3)
    assert summary["grid"]["folds"] == ["fold0"] and len(summary["training"]) == 14
    statuses = {(r["model"], r["task"], r["strategy"]): r["status"] for r in summary["training"]}
    assert statuses[("transformer", "sign2text", "hatl")] == "done"
    assert ("adat", "gloss2text", "full") in statuses and ("adat", "sign2gloss", "hatl") in statuses
    assert list(statuses.values()).count("missing") == 12

    rows = summary["table7"]["rows"]
    measured = [r for r in rows if r["source"] == "measured"]
    assert len(measured) == 3 and len(rows) == 15
    hatl = next(r for r in measured if r["strategy"] == "hatl")
    assert hatl["nolm"]["test"]["bleu4"] == 4.0 and hatl["test_bleu4"] == 1.0
    assert next(r for r in measured if r["strategy"] == "full")["nolm"] is None  # its scores.json is missing

    cell = next(c for c in summary["trend"] if c["model"] == "transformer" and c["task"] == "sign2text")
    assert cell["measured_bleu4"]["best"] == ["full"] and cell["measured_bleu4"]["hatl_best"] == "no"
    assert cell["measured_rouge"]["order"] == ["classical", "full", "hatl"]
    assert cell["reported_bleu4"]["hatl_best"] == "yes" and cell["same_best"]["bleu4"] is False
    empty = next(c for c in summary["trend"] if c["model"] == "adat" and c["task"] == "sign2text")
    assert empty["measured_bleu4"]["hatl_best"] == "missing" and empty["same_best"]["bleu4"] is None

    data = summary["data"][0]
    assert data["sentences"] == {"train": 3, "dev": 1, "test": 2}
    assert data["text_test"]["exact_in_train"] == 0.5  # "Take the pill!" normalises to a training sentence
    assert data["gloss_test"]["sentences"] == 1  # the empty gloss is not a sentence
    assert "code_version" in summary["provenance"]

    text = bench.format_summary(summary)
    assert "at epoch 2" in text and "L10@2, L9@3" in text and "no LM fusion" in text
    out = tmp_path / "summary.json"
    assert bench.main(["--workdir", str(workdir), "--summary-only", "--out", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["table7"]["status"] == "done"


def test_summary_of_an_empty_workdir(tmp_path: Path):
    summary = bench.summarise(tmp_path, bench.DEFAULT_CONFIGFILES)
    assert summary["table7"]["status"] == "missing" and summary["data"][0]["status"] == "missing"
    assert summary["benchmarks"]["total"]["jobs"] == 0
    assert "needs results/table7.csv: missing" in bench.format_summary(summary)


def test_data_check_says_how_to_get_medasl(tmp_path: Path):
    problem = bench.data_problem(tmp_path / "medasl_full")
    assert "does not exist" in problem and "git clone https://github.com/INDUCE-Lab/MedASL" in problem
    notes = bench.ensure_workdir(tmp_path / "wd")
    assert len(notes) == len(bench.LINKS) and (tmp_path / "wd" / "Snakefile").resolve() == REPO / "Snakefile"
    assert bench.ensure_workdir(tmp_path / "wd") == []  # a second call leaves the links alone
    assert bench.snakemake_command(["a.yaml", "b.yaml"], 2)[3:] == ["results/table7.csv", "--cores", "2", "--configfile",
                                                                    "a.yaml", "b.yaml"]
