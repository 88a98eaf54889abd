"""hatl score / hatl table on small finished runs built in tmp_path."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest

from hatl.cli import main
from hatl.config import REPO_ROOT
from hatl.evaluate.paper_numbers import PAPER_ROWS, PAPER_TABLE4
from hatl.metrics import BleuSettings
from hatl.evaluate.tables import COLUMNS, table4_rows

CONFIG = str(REPO_ROOT / "config" / "config.yaml")
REFS = [
    "der patient hat seit drei tagen fieber",
    "bitte nehmen sie die tablette nach dem essen",
    "haben sie schmerzen in der brust",
    "morgen gibt es im süden viel sonne",
    "die ärztin kommt gleich zu ihnen",
    "wie lange haben sie schon husten",
    "im norden regnet es am nachmittag",
    "sie müssen viel wasser trinken",
]
QUALITY = {"classical": 0.45, "full": 0.55, "hatl": 0.9}


def _corrupt(ref: str, keep: float, rng: random.Random) -> str:
    words = ref.split()
    return " ".join(w if rng.random() < keep else "xx" for w in words)


def make_run(root: Path, dataset: str, model: str, task: str, strategy: str, fold: str, seed: int = 0) -> Path:
    run = root / "runs" / dataset / model / task / strategy / fold / f"seed{seed}"
    run.mkdir(parents=True)
    rng = random.Random(f"{model}{task}{strategy}{fold}{seed}")
    for split in ("dev", "test"):
        with open(run / f"decoded.{split}.jsonl", "w", encoding="utf-8") as fh:
            for i, ref in enumerate(REFS * 3):
                hyp = _corrupt(ref, QUALITY[strategy], rng)
                row = {"id": f"{split}{i}", "ref": ref, "hyp": hyp, "hyp_nolm": _corrupt(ref, QUALITY[strategy] - 0.1, rng),
                       "gloss_ref": "A B C" if task == "sign2gloss2text" else None,
                       "gloss_hyp": "A C" if task == "sign2gloss2text" else None}
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return run


def score_run(run: Path) -> Path:
    out = run / "scores.json"
    assert main(["score", "--config", CONFIG, "--decoded", str(run / "decoded.dev.jsonl"), str(run / "decoded.test.jsonl"),
                 "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def config():
    from hatl.config import load_config

    return load_config(CONFIG)


def score_in_process(run: Path, config: dict) -> Path:
    """What `hatl score` does, without re-reading the config for each of many runs (the CLI is tested above)."""
    from hatl.evaluate.score import score_files
    from hatl.io import write_json

    out = run / "scores.json"
    write_json(out, score_files([run / "decoded.dev.jsonl", run / "decoded.test.jsonl"], config))
    return out


def test_score_cli_writes_metrics_signature_and_provenance(tmp_path):
    run = make_run(tmp_path, "phoenix14t", "adat", "sign2gloss2text", "hatl", "main")
    scores = json.loads(score_run(run).read_text(encoding="utf-8"))
    assert scores["run"] == {"dataset": "phoenix14t", "model": "adat", "task": "sign2gloss2text", "strategy": "hatl", "fold": "main",
                             "seed": "seed0"}
    test = scores["splits"]["test"]
    assert test["n"] == 24 and 0 < test["bleu4"] <= 100 and 0 < test["rouge"] <= 100
    assert test["bleu1"] >= test["bleu2"] >= test["bleu3"] >= test["bleu4"]
    assert test["wer"] == pytest.approx(100 / 3)  # "A C" vs "A B C": one deletion in three words
    assert test["nolm"]["bleu4"] < test["bleu4"] + 50
    assert "tok:none" in scores["bleu_signature"]["bleu4"]
    assert "2*LCS" in scores["rouge_variant"]
    assert "code_version" in scores["provenance"] and "config" in scores["provenance"]


def test_score_rejects_bad_lines_without_output(tmp_path):
    bad = tmp_path / "decoded.test.jsonl"
    bad.write_text('{"id": "a", "ref": "x", "hyp": "x"}\n{"id": "a", "ref": "y"}\n', encoding="utf-8")
    out = tmp_path / "scores.json"
    assert main(["score", "--config", CONFIG, "--decoded", str(bad), "--out", str(out)]) == 2
    assert not out.exists()


def test_table7_from_cross_validation_runs(tmp_path, config):
    scores = []
    for model in ("transformer", "adat"):
        for task in ("sign2gloss2text", "sign2text"):
            for strategy in ("classical", "full", "hatl"):
                for fold in ("fold0", "fold1"):
                    scores.append(score_in_process(make_run(tmp_path, "medasl", model, task, strategy, fold), config))
    out = tmp_path / "results" / "table7.csv"
    assert main(["table", "--config", CONFIG, "--table", "7", "--dataset", "medasl",
                 "--scores", *map(str, scores), "--out", str(out)]) == 0
    frame = pd.read_csv(out)
    assert list(frame.columns) == COLUMNS
    reported = frame[frame.source == "reported"]
    measured = frame[frame.source == "measured"]
    assert len(reported) == len(PAPER_ROWS[7]) == 12 and len(measured) == 12
    assert set(measured.data) == {"demo"} and set(reported.data) == {"real"}
    assert (measured.n_folds == 2).all()
    assert measured.test_bleu4_sd.notna().all()  # mean ± sd over the folds
    # the paper's reported ADAT HATL Sign2Text test BLEU-4 is carried over verbatim
    paper = reported[(reported.model == "adat") & (reported.strategy == "hatl") & (reported.task == "sign2text")]
    assert paper.test_bleu4.item() == pytest.approx(30.5)
    # baselines have p-values against HATL, HATL rows have none; HATL (90% words kept) clearly wins here
    base = measured[measured.strategy != "hatl"]
    assert base.p_bleu4.notna().all() and (base.p_bleu4 < 0.05).all() and (base.p_rouge < 0.05).all()
    assert measured[measured.strategy == "hatl"].p_bleu4.isna().all()
    # paper order: S2G2T group first, reported rows before measured, classical < full < hatl
    assert list(frame.task[:6]) == ["sign2gloss2text"] * 6
    assert list(measured.strategy[:3]) == ["classical", "full", "hatl"]
    md = out.with_suffix(".md").read_text(encoding="utf-8")
    assert "2*LCS" in md and "**Sign2Gloss2Text**" in md and "±" in md
    # the cascade's gloss WER ("A C" for "A B C": 33.3 %) beside its rows, none beside Sign2Text's
    assert (measured[measured.task == "sign2gloss2text"].test_wer.round(1) == 33.3).all()
    lines = md.splitlines()
    header = next(line for line in lines if line.startswith("| Model |"))
    assert header.rstrip(" |").endswith("Gloss WER")
    s2g2t = [line for line in lines if "Transformer (HATL)" in line and "| measured |" in line]
    assert s2g2t[0].rstrip(" |").endswith("33.3 / 33.3") and s2g2t[1].rstrip(" |").endswith("-")
    # the paper averages 5 folds; these runs cover 2 of them, and the table says so
    assert "Measured rows: 2 of 5 cross-validation folds (fold0, fold1; the paper averages all 5)" in md
    side = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert "tok:none" in side["bleu_signature"]["bleu4"] and side["skipped"] == [] and "provenance" in side
    assert side["folds_note"].startswith("Measured rows: 2 of 5")


def test_table5_literature_rows_and_missing_decoded_is_reported(tmp_path, config):
    hatl = score_in_process(make_run(tmp_path, "phoenix14t", "transformer", "sign2text", "hatl", "main"), config)
    base_run = make_run(tmp_path, "phoenix14t", "transformer", "sign2text", "full", "main")
    base = score_in_process(base_run, config)
    (base_run / "decoded.test.jsonl").unlink()  # no p-value possible: must be listed, not silently blank
    out = tmp_path / "table5.csv"
    assert main(["table", "--config", CONFIG, "--table", "5", "--dataset", "phoenix14t",
                 "--scores", str(hatl), str(base), "--out", str(out)]) == 0
    frame = pd.read_csv(out)
    lit = frame[frame.source == "reported (literature)"]
    assert len(lit) == 20 and "Two Stream-SLT [7]" in set(lit.name)
    side = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    # the missing file costs the p-value and the distinct-output count, each listed
    reasons = sorted(item["reason"] for item in side["skipped"])
    assert len(reasons) == 2 and "no distinct-output count" in reasons[0] and "no p-value" in reasons[1]


def test_table_rejects_run_of_other_dataset(tmp_path, config):
    other = score_in_process(make_run(tmp_path, "isharah", "adat", "sign2text", "hatl", "main"), config)
    out = tmp_path / "table5.csv"
    assert main(["table", "--config", CONFIG, "--table", "5", "--dataset", "phoenix14t", "--scores", str(other),
                 "--out", str(out)]) == 2
    assert not out.exists()


def test_table4_resolves_config(tmp_path):
    out = tmp_path / "table4.csv"
    assert main(["table", "--config", CONFIG, "--table", "4", "--dataset", "phoenix14t", "--out", str(out)]) == 0
    frame = pd.read_csv(out)
    assert len(frame) == len(PAPER_TABLE4)
    beam = frame[frame.hyperparameter == "Decoding: beam width"]
    assert beam.configured.item() == "8" and beam.matches.item() == "yes"
    lm = frame[frame.hyperparameter == "Decoding: KenLM weight"]
    assert lm.configured.item() == "0.7"
    rows = table4_rows({"decoding": {"beam_width": 4}})
    assert next(r for r in rows if r["hyperparameter"] == "Decoding: beam width")["matches"] == "no"
    assert out.with_suffix(".md").exists() and "provenance" in json.loads(out.with_suffix(".json").read_text())


def test_a_results_table_needs_its_release_and_says_so(tmp_path, caplog):
    import yaml

    cfg = yaml.safe_load(Path(CONFIG).read_text(encoding="utf-8"))
    del cfg["datasets"]["isharah"]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    out = tmp_path / "table6.csv"
    for dataset in ("isharah", "medasl"):
        caplog.clear()
        assert main(["table", "--config", str(path), "--table", "6", "--dataset", dataset, "--scores",
                     "--out", str(out)]) == 2
        assert "table 6 reports Isharah, and the config has no isharah dataset" in caplog.text
        assert "medasl, phoenix14t" in caplog.text
        assert not out.exists() and not out.with_suffix(".json").exists()
    caplog.clear()  # with the release configured, another dataset's runs cannot fill its table
    assert main(["table", "--config", CONFIG, "--table", "6", "--dataset", "medasl", "--scores", "--out", str(out)]) == 2
    assert "table 6 reports Isharah, but dataset 'medasl' is not of that release" in caplog.text
    assert "use --dataset isharah" in caplog.text
    assert not out.exists()


def test_bootstrap_pairs_sentences_by_id_not_by_line_order(tmp_path, config):
    """A baseline whose decoded file lists the same sentences in another order must give the same p-values;
    pairing by position would score its hypotheses against other sentences' references."""
    from hatl.evaluate.bootstrap import paired_bootstrap, sentence_stats
    from hatl.evaluate.tables import load_scored_run, significance

    settings = BleuSettings.from_config(config["evaluation"])
    boot = {"samples": 300, "seed": 7, "metrics": ["bleu4", "rouge"]}
    refs = REFS * 3
    rng = random.Random(5)

    def write_run(strategy: str, keep: float, order: list[int]):
        run = tmp_path / strategy / "runs" / "medasl" / "adat" / "sign2text" / strategy / "fold0" / "seed1"
        run.mkdir(parents=True)
        hyps = [_corrupt(ref, keep, rng) for ref in refs]
        for split in ("dev", "test"):
            lines = [json.dumps({"id": f"s{i}", "ref": refs[i], "hyp": hyps[i]}) for i in order]
            (run / f"decoded.{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (run / "scores.json").write_text(json.dumps({"splits": {}}), encoding="utf-8")
        return load_scored_run(run / "scores.json"), hyps

    ids = list(range(len(refs)))
    shuffled = ids[::-1][1::2] + ids[::-1][0::2]
    hatl, hatl_hyps = write_run("hatl", 0.75, ids)
    rng = random.Random(6)
    base, base_hyps = write_run("full", 0.7, ids)
    rng = random.Random(6)  # the same hypotheses, listed in another order
    base_shuffled, same_hyps = write_run("classical", 0.7, shuffled)
    assert same_hyps == base_hyps

    in_order = significance([hatl], [base], settings, boot)
    assert 0.05 < in_order["p_bleu4"] < 0.95 and 0.05 < in_order["p_rouge"] < 0.95  # sensitive to the pairing
    assert significance([hatl], [base_shuffled], settings, boot) == in_order
    # what pairing by line order would have given: the baseline scored against other sentences' references
    by_position = [base_hyps[i] for i in shuffled]
    wrong = paired_bootstrap([sentence_stats(hatl_hyps, refs, settings)], [sentence_stats(by_position, refs, settings)],
                             "rouge", 300, 7, settings)
    assert wrong["p_value"] == pytest.approx(1 / 301) and in_order["p_rouge"] > 10 / 301


def _with_summary(run: Path, backbone: dict, layer_decay: float) -> Path:
    (run / "summary.json").write_text(json.dumps({"backbone": backbone, "layer_decay": layer_decay}), encoding="utf-8")
    return run


def test_backbone_provenance_per_row_and_the_synthetic_only_flag(tmp_path, config):
    from hatl.evaluate.tables import load_scored_run, results_markdown, results_table
    from hatl.models.backbone_source import pretrained_on, pyskl

    synthetic = pretrained_on([("phoenix14t", True)]).to_dict()
    runs = []
    for strategy in ("classical", "full", "hatl"):
        run = make_run(tmp_path, "phoenix14t", "transformer", "sign2text", strategy, "main")
        # the full baseline ran with the LLRD ablation here: its row must say so
        _with_summary(run, synthetic, 0.5 if strategy in ("full", "hatl") else 1.0)
        runs.append(load_scored_run(score_in_process(run, config)))
    other = make_run(tmp_path, "phoenix14t", "adat", "sign2text", "full", "main")
    _with_summary(other, pyskl("x/stgcnpp_ntu120_xsub_hrnet/j.pth").to_dict(), 1.0)
    runs.append(load_scored_run(score_in_process(other, config)))
    bare = make_run(tmp_path, "phoenix14t", "adat", "sign2text", "hatl", "main")  # no summary.json
    runs.append(load_scored_run(score_in_process(bare, config)))
    # a cascade row's backbone is its recognition run's (the sibling sign2gloss folder of the same strategy/fold)
    cascade = make_run(tmp_path, "phoenix14t", "adat", "sign2gloss2text", "hatl", "main")
    recognition = tmp_path / "runs" / "phoenix14t" / "adat" / "sign2gloss" / "hatl" / "main" / "seed0"
    recognition.mkdir(parents=True)
    _with_summary(recognition, pyskl("y/stgcnpp_ntu60_xsub_hrnet/j.pth").to_dict(), 0.5)
    runs.append(load_scored_run(score_in_process(cascade, config)))
    settings = BleuSettings.from_config(config["evaluation"])
    frame, _ = results_table(5, "phoenix14t", runs, "real", settings, {"samples": 50, "seed": 1})
    measured = frame[frame.source == "measured"].set_index("name")
    assert measured.loc["Transformer (Classical Fine-tuning) ⚠ synthetic-only backbone", "backbone"] == \
        "pretrained on phoenix14t (synthetic)"
    assert "Transformer (Full Fine-tuning, layer decay) ⚠ synthetic-only backbone" in measured.index
    assert measured.loc["ADAT (Full Fine-tuning)", "backbone"] == "pyskl checkpoint stgcnpp_ntu120_xsub_hrnet/j.pth"
    assert not measured.loc["ADAT (Full Fine-tuning)", "backbone_synthetic_only"]
    by_task = frame[frame.source == "measured"].set_index(["task", "name"])
    assert by_task.loc[("sign2text", "ADAT (HATL)"), "backbone"].startswith("unknown")
    assert by_task.loc[("sign2gloss2text", "ADAT (HATL)"), "backbone"] == "pyskl checkpoint stgcnpp_ntu60_xsub_hrnet/j.pth"
    assert measured.backbone_synthetic_only.sum() == 3
    md = results_markdown(frame, 5, {"dataset": "phoenix14t", "data": "real", "rouge_variant": "r", "bleu_signature": "s",
                                     "code_version": "v"})
    assert "| Backbone |" in md and "| pretrained on phoenix14t (synthetic) |" in md
    assert "SYNTHETIC-ONLY BACKBONE: 3 measured row(s)" in md
    # the same runs as a demo dataset: the label stays, the flag does not apply
    frame, _ = results_table(5, "phoenix14t", runs, "demo", settings, {"samples": 50, "seed": 1})
    assert not frame[frame.source == "measured"].backbone_synthetic_only.any()


def _fixed_run(root: Path, strategy: str, fold: str, seed: int, test_bleu4: float, hyps: list[str]) -> Path:
    """A run folder whose scores.json says test BLEU-4 ``test_bleu4`` (and its decoded test file ``hyps``)."""
    run = root / "runs" / "medasl" / "transformer" / "sign2text" / strategy / fold / f"seed{seed}"
    run.mkdir(parents=True)
    refs = REFS * 3
    for split in ("dev", "test"):
        lines = [json.dumps({"id": f"s{i}", "ref": ref, "hyp": hyp}) for i, (ref, hyp) in enumerate(zip(refs, hyps))]
        (run / f"decoded.{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    block = {"bleu1": 50.0, "bleu2": 40.0, "bleu3": 30.0, "bleu4": test_bleu4, "rouge": 60.0,
             "nolm": {"bleu1": 49.0, "bleu2": 39.0, "bleu3": 29.0, "bleu4": test_bleu4 - 1, "rouge": 59.0}}
    (run / "scores.json").write_text(json.dumps({"splits": {"dev": block, "test": block}}), encoding="utf-8")
    return run / "scores.json"


def test_rows_are_mean_and_sd_over_folds_and_seeds_with_per_seed_values_in_the_sidecar(tmp_path, config):
    """Two folds x three seeds of HATL: the row is the mean and sample sd of the six runs; the sidecar lists
    every run and each seed's mean over the folds; the baseline (one seed) still gets a p-value."""
    rng = random.Random(3)
    refs = REFS * 3
    values = {("fold0", 1): 20.0, ("fold0", 2): 22.0, ("fold0", 3): 24.0, ("fold1", 1): 30.0, ("fold1", 2): 32.0, ("fold1", 3): 28.0}
    scores = [_fixed_run(tmp_path, "hatl", fold, seed, v, [_corrupt(r, 0.9, rng) for r in refs]) for (fold, seed), v in values.items()]
    scores += [_fixed_run(tmp_path, "full", fold, 1, 10.0, [_corrupt(r, 0.4, rng) for r in refs]) for fold in ("fold0", "fold1")]
    out = tmp_path / "table7.csv"
    assert main(["table", "--config", CONFIG, "--table", "7", "--dataset", "medasl",
                 "--scores", *map(str, scores), "--out", str(out)]) == 0
    frame = pd.read_csv(out)
    hatl = frame[(frame.source == "measured") & (frame.strategy == "hatl")].iloc[0]
    six = list(values.values())
    assert hatl.n_folds == 2 and hatl.n_seeds == 3
    assert hatl.test_bleu4 == pytest.approx(sum(six) / 6)  # 26.0
    mean = sum(six) / 6
    assert hatl.test_bleu4_sd == pytest.approx((sum((v - mean) ** 2 for v in six) / 5) ** 0.5, abs=1e-4)
    assert hatl.dev_bleu1_sd == pytest.approx(0.0)
    full = frame[(frame.source == "measured") & (frame.strategy == "full")].iloc[0]
    assert full.n_folds == 2 and full.n_seeds == 1 and full.test_bleu4 == pytest.approx(10.0)
    assert full.p_bleu4 < 0.05  # seeds averaged within each fold on the same resample, folds paired by name
    side = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    entry = next(m for m in side["members"] if m["strategy"] == "hatl")
    assert [(r["fold"], r["seed"], r["test_bleu4"]) for r in entry["runs"]] == [(f, s, v) for (f, s), v in values.items()]
    assert entry["runs"][0]["test_bleu4_nolm"] == pytest.approx(19.0)
    per_seed = {int(k): v["test_bleu4"] for k, v in entry["per_seed"].items()}
    assert per_seed == {1: pytest.approx(25.0), 2: pytest.approx(27.0), 3: pytest.approx(26.0)}
    assert "folds x seeds" in side["aggregation"]
    assert "mean ± sd over folds and training seeds" in out.with_suffix(".md").read_text(encoding="utf-8")


def test_bootstrap_averages_the_seeds_of_a_fold_on_the_same_resample(config):
    """A fold given as a list of seed runs: one seed is the single-run bootstrap; two copies of a run are that
    run; HATL's seeds are averaged per resample (its observed value is the mean of the seeds' scores)."""
    from hatl.evaluate.bootstrap import paired_bootstrap, sentence_stats

    settings = BleuSettings.from_config(config["evaluation"])
    refs = REFS * 3
    rng = random.Random(9)
    good = sentence_stats([_corrupt(r, 0.8, rng) for r in refs], refs, settings)
    other = sentence_stats([_corrupt(r, 0.6, rng) for r in refs], refs, settings)
    base = sentence_stats([_corrupt(r, 0.5, rng) for r in refs], refs, settings)
    single = paired_bootstrap([good], [base], "bleu4", 200, 4, settings)
    assert paired_bootstrap([[good]], [[base]], "bleu4", 200, 4, settings) == single
    assert paired_bootstrap([[good, good]], [base], "bleu4", 200, 4, settings) == single
    pair = paired_bootstrap([[good, other]], [base], "bleu4", 200, 4, settings)
    alone = paired_bootstrap([other], [base], "bleu4", 200, 4, settings)
    assert pair["hatl"] == pytest.approx((single["hatl"] + alone["hatl"]) / 2)
    assert single["p_value"] <= pair["p_value"] <= alone["p_value"]
    short = sentence_stats(["a"], ["a"], settings)
    with pytest.raises(ValueError, match="same, non-empty sentences"):
        paired_bootstrap([[good, short]], [base], "bleu4", 10, 4, settings)
