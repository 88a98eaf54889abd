"""PHOENIX14T Gloss2Text on the real annotations, the whole chain on CPU, timed stage by stage (issue 7, item 1).

    .venv/bin/python bench/phoenix_gloss2text.py [--config config/examples/phoenix14t_gloss2text.yaml]
        [--results ../phoenix_results] [--threads 1] [--seeds N] [--from-stage train] [--to-stage table]

Runs ``hatl manifest -> vocab -> lm`` once, then ``hatl train --seed S -> decode -> score`` for each of the
first N training seeds of the config (``training.seeds``; all of them without ``--seeds``) into the workflow's
run folders ``runs/phoenix14t/transformer/gloss2text/full/main/seed<S>``, then ``hatl table --table 5`` over
every seed, exactly as a user would (each stage is the ``hatl`` command in a subprocess, from the project
root), into a results folder outside the repository. It prints each seed's dev/test BLEU-1..4 and ROUGE-L
with and without KenLM fusion, their mean ± sd over seeds (sample sd, as the tables) and the wall time of
each stage. The reference is VL-Transfer's from-scratch Gloss2Text transformer: test BLEU-4 22.57.

With ``training.average_checkpoints`` (the example config averages the last epochs) ``best.pt`` holds the averaged
weights and each seed's line names the averaged epochs and their greedy dev BLEU-4. Beside the scores it prints
each seed's floor: the constant-output baseline (the dev reference with the best dev BLEU-4, emitted for every
test sentence) and how many distinct sentences the decoder emitted, and each split's reference words by how often
they occur in the training text with the share of them the decoder wrote (``hatl.evaluate.word_recall``).

Stages whose outputs exist are run again unless ``--from-stage`` says where to start (a finished training run
is also reused by ``hatl train`` itself through its resume state). A benchmark, not a test: the training run
takes tens of minutes per seed on two CPU cores.

``--train-budget-min M`` caps each seed's training by wall time on a shared machine: after M minutes the trainer gets
SIGTERM (it saves its resume state at the next step and exits), and the best dev checkpoint so far (the
trainer keeps it in the resume state) is exported as ``best.pt`` in the format ``hatl train`` writes, with
``budget_stop.json`` beside it saying so (with checkpoint averaging on: the mean of the epochs averaged so far). Later stages then run on that checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from hatl.experiment import RUNS, run_dir, seed_folder

ROOT = Path(__file__).resolve().parents[1]
HATL = [sys.executable, "-m", "hatl.cli"]
STAGES = ("manifest", "vocab", "lm", "train", "decode", "score", "table")
SHARED_STAGES = ("manifest", "vocab", "lm")  # once for all seeds
SEED_STAGES = ("train", "decode", "score")  # once per seed; then one table over every seed
DATASET = "phoenix14t"
REFERENCE = {"name": "VL-Transfer Table 4, mBART from scratch", "test_bleu4": 22.57, "dev_bleu4": 22.71}
METRICS = ("bleu1", "bleu2", "bleu3", "bleu4", "rouge")


def run_folder(res: Path, seed: int) -> Path:
    """The run folder of one seed, in the workflow's layout (hatl.experiment.run_dir)."""
    return run_dir(res / RUNS, DATASET, "transformer", "gloss2text", "full", "main", seed)


def resume_folder(res: Path, seed: int) -> Path:
    return res / "resume" / DATASET / "transformer" / "gloss2text" / "full" / "main" / seed_folder(seed)


def stage_commands(config: Path, res: Path, threads: int, seed: int) -> dict[str, list[str]]:
    """The hatl command line of every stage (what the Snakemake rules run for this dataset) for one training seed."""
    ds = res / DATASET
    run, resume = run_folder(res, seed), resume_folder(res, seed)
    manifest, vocab, lm = ds / "manifest.parquet", ds / "vocab" / "main", ds / "lm" / "main" / "text.4gram.bin"
    common = ["--config", str(config)]
    return {
        "manifest": ["manifest", *common, "--dataset", DATASET, "--out", str(manifest), "--splits-out", str(ds / "splits.tsv")],
        "vocab": ["vocab", *common, "--dataset", DATASET, "--manifest", str(manifest), "--fold", "main", "--out-dir", str(vocab)],
        "lm": ["lm", *common, "--dataset", DATASET, "--manifest", str(manifest), "--fold", "main", "--out-arpa", str(ds / "lm" / "main" / "text.4gram.arpa"),
               "--out-binary", str(lm)],
        "train": ["train", *common, "--dataset", DATASET, "--model", "transformer", "--task", "gloss2text", "--strategy", "full",
                  "--manifest", str(manifest), "--vocab-dir", str(vocab), "--out-dir", str(run), "--resume-dir", str(resume),
                  "--threads", str(threads), "--seed", str(seed)],
        "decode": ["decode", *common, "--run-dir", str(run), "--manifest", str(manifest), "--vocab-dir", str(vocab),
                   "--lm", str(lm), "--out-dir", str(run), "--threads", str(threads)],
        "score": ["score", *common, "--decoded", str(run / "decoded.dev.jsonl"), str(run / "decoded.test.jsonl"),
                  "--out", str(run / "scores.json")],
        "table": ["table", *common, "--table", "5", "--dataset", DATASET, "--out", str(res / "table5.csv")],
    }


def run_stage(name: str, argv: list[str], log_dir: Path, budget_s: float = 0.0) -> tuple[float, bool]:
    """Run one stage, its output teed to log_dir/<name>.log: (wall time in seconds, stopped by the budget).

    With ``budget_s`` > 0 the stage gets SIGTERM once that much wall time has passed (``hatl train`` then
    saves its resume state at the next step and exits non-zero: that exit is expected, not a failure).
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"[{time.strftime('%H:%M:%S')}] {name}: hatl {' '.join(argv)}", flush=True)
    start = time.perf_counter()
    stopped = threading.Event()
    with open(log_dir / f"{name}.log", "w", encoding="utf-8") as log:
        proc = subprocess.Popen([*HATL, *argv], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})

        def stop() -> None:
            if proc.poll() is None:
                stopped.set()
                print(f"    [{time.strftime('%H:%M:%S')}] {name}: wall-time budget of {budget_s / 60:.0f} min reached, "
                      "sending SIGTERM", flush=True)
                proc.send_signal(signal.SIGTERM)

        timer = threading.Timer(budget_s, stop) if budget_s > 0 else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            log.flush()
            if " INFO " in line or " WARNING " in line or " ERROR " in line:
                print("    " + line.rstrip(), flush=True)
        rc = proc.wait()
        if timer is not None:
            timer.cancel()
    seconds = time.perf_counter() - start
    if rc != 0 and not stopped.is_set():
        raise SystemExit(f"stage {name} failed (exit {rc}); see {log_dir / (name + '.log')}")
    print(f"    {name}: {seconds:.1f} s{' (stopped by the wall-time budget)' if stopped.is_set() else ''}", flush=True)
    return seconds, stopped.is_set()


def export_best_from_resume(config: Path, res: Path, seed: int) -> dict:
    """Write best.pt (the format ``hatl train`` writes at the end) from the best dev state kept in the resume state.

    Used only after a budget stop: the trainer keeps its best dev weights in the resume state, so nothing is
    lost by stopping early except the epochs not run. ``budget_stop.json`` records what was exported.
    """
    import torch

    from hatl.config import effective_config, load_config
    from hatl.io import atomic_path, write_json
    from hatl.provenance import provenance
    from hatl.models.trained import BEST_FORMAT
    from hatl.vocab import Vocabulary

    cfg = {**effective_config(load_config(config), DATASET), "seed": seed}  # as hatl train --seed sees it
    ds = res / DATASET
    run, resume = run_folder(res, seed), resume_folder(res, seed)
    state = torch.load(resume / "state.pt", map_location="cpu", weights_only=False)
    if state.get("best_state") is None:
        raise SystemExit(f"{resume / 'state.pt'}: no evaluated epoch yet, nothing to export (raise --train-budget-min)")
    log_lines = state.get("log") or []
    best = max(log_lines, key=lambda line: line.get("metric") or float("-inf")) if log_lines else {}
    weights, averaged = state["best_state"], averaged_so_far(cfg, state, resume)
    identity = {"dataset": DATASET, "model": "transformer", "task": "gloss2text", "strategy": "full", "fold": "main",
                "seed": seed_folder(seed)}
    blob = {
        "format": BEST_FORMAT,
        "model_state": weights if averaged is None else averaged[0],
        "model_args": {"task": "gloss2text", "translator": "transformer",
                       "gloss_vocab_size": len(Vocabulary.load(ds / "vocab" / "main" / "gloss.json")),
                       "text_vocab_size": len(Vocabulary.load(ds / "vocab" / "main" / "text.json")),
                       "model_config": cfg.get("model", {}), "backbone": None},
        "vocab": {"gloss": str(ds / "vocab" / "main" / "gloss.json"), "text": str(ds / "vocab" / "main" / "text.json")},
        "run": identity, "best_epoch": best.get("epoch"), "best_metric": best.get("metric"), "metric_name": "bleu4",
        "config": cfg, "provenance": provenance(cfg, run=identity),
        "averaged_epochs": None if averaged is None else averaged[1],
    }
    run.mkdir(parents=True, exist_ok=True)
    with atomic_path(run / "best.pt") as tmp:
        torch.save(blob, tmp)
    note = {"reason": "wall-time budget reached; best dev checkpoint exported from the resume state",
            "epochs_completed": len(log_lines), "stopped_at": {"epoch": state.get("epoch"), "step_in_epoch": state.get("step_in_epoch")},
            "best_epoch": best.get("epoch"), "best_dev_greedy_bleu4": best.get("metric"),
            "averaged_epochs": None if averaged is None else averaged[1],
            "log": log_lines, "provenance": provenance(cfg, run=identity)}
    write_json(run / "budget_stop.json", note)
    what = f"the mean of epochs {averaged[1]}" if averaged is not None else f"epoch {best.get('epoch')}"
    print(f"    exported best.pt: {what} (best dev greedy BLEU-4 {best.get('metric')} at epoch {best.get('epoch')}); "
          f"{len(log_lines)} epoch(s) completed", flush=True)
    return note


def averaged_so_far(cfg: dict, state: dict, resume: Path):
    """With ``training.average_checkpoints`` on: (mean weights, epochs) of the epochs the pool holds so far, as
    ``hatl train`` would average them at its end (fewer epochs if it stopped early); otherwise None."""
    from hatl.train.averaging import POOL_DIR, AveragingConfig, CheckpointPool

    averaging = AveragingConfig.from_config(cfg.get("training", {}).get("average_checkpoints"))
    if averaging is None or not (state.get("averaging") or {}).get("entries"):
        return None
    pool = CheckpointPool(averaging, resume / POOL_DIR, "max")
    pool.load(state["averaging"])
    return pool.average(), pool.epochs()


def floor_and_distinct(res: Path, seed: int) -> list[str]:
    """The constant-output floor (the dev reference with the best dev BLEU-4, emitted for every sentence) and
    how many distinct sentences the seed's decoder emitted: what its scores must be read against."""
    from hatl.evaluate.collapse import constant_floor

    run = run_folder(res, seed)
    rows = {}
    for split in ("dev", "test"):
        path = run / f"decoded.{split}.jsonl"
        if not path.exists():
            return []
        rows[split] = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    floor = constant_floor([r["ref"] for r in rows["dev"]], {k: [r["ref"] for r in v] for k, v in rows.items()})
    test = floor.scores["test"]
    distinct = {k: (len({r["hyp_nolm"] or r["hyp"] for r in v}), len({r["ref"] for r in v})) for k, v in rows.items()}
    return [f"seed {seed} floor: constant output {floor.sentence!r} scores test BLEU-1 {test['bleu1']:.2f}, "
            f"BLEU-4 {test['bleu4']:.2f}, ROUGE-L {test['rouge']:.2f}; distinct outputs (no LM) "
            + ", ".join(f"{k} {d} for {r} distinct references" for k, (d, r) in distinct.items())]


def word_recall_lines(res: Path, seed: int) -> list[str]:
    """Each split's reference words by their count in the training text: how many of them the seed's decoder
    wrote (no LM), so a recipe that only writes frequent words shows it (hatl.evaluate.word_recall)."""
    import pyarrow.parquet as pq

    from hatl.evaluate.word_recall import format_recall, recall_by_frequency, training_counts
    from hatl.vocab import Vocabulary

    ds = res / DATASET
    manifest, text_vocab = ds / "manifest.parquet", ds / "vocab" / "main" / "text.json"
    if not (manifest.exists() and text_vocab.exists()):
        return []
    vocab = Vocabulary.load(text_vocab)
    table = pq.read_table(manifest, columns=["split", "text"]).to_pylist()
    counts = training_counts(vocab.normalise(row["text"] or "") for row in table if row["split"] == "train")
    lines = []
    for split in ("dev", "test"):
        path = run_folder(res, seed) / f"decoded.{split}.jsonl"
        if not path.exists():
            continue
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        bands = recall_by_frequency([r["hyp_nolm"] or r["hyp"] for r in rows], [r["ref"] for r in rows], counts)
        lines.append(f"seed {seed} {split} reference words by training count (no LM): {format_recall(bands)}")
    return lines


def seed_values(scores: dict) -> dict[str, dict[str, float]]:
    """``{"<split> <decoding>": {metric: value}}`` of one seed's scores.json (decoding: "lm" or "nolm")."""
    out = {}
    for split in ("dev", "test"):
        block = scores["splits"][split]
        out[f"{split} lm"] = {m: block[m] for m in METRICS}
        if isinstance(block.get("nolm"), dict):
            out[f"{split} nolm"] = {m: block["nolm"][m] for m in METRICS}
    return out


def mean_sd(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (ddof=1; None for one value), as the tables report them."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def seeds_table(per_seed: dict[int, dict[str, dict[str, float]]]) -> list[str]:
    """Per-seed rows and the mean +- sd over seeds, for test (and dev) with and without the LM, printable."""
    header = f"{'':30s}" + "".join(f"{m:>15s}" for m in ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L"))
    lines = [header]
    for key in ("test nolm", "test lm", "dev nolm", "dev lm"):
        have = {seed: v[key] for seed, v in per_seed.items() if key in v}
        if not have:
            continue
        label = key.replace(" lm", " + KenLM").replace(" nolm", ", no LM")
        for seed, values in have.items():
            lines.append(f"{label + f' seed {seed}':30s}" + "".join(f"{values[m]:15.2f}" for m in METRICS))
        cells = []
        for m in METRICS:
            mean, sd = mean_sd([v[m] for v in have.values()])
            cells.append(f"{mean:.2f}" + (f" ± {sd:.2f}" if sd is not None else ""))
        lines.append(f"{label + f' mean ({len(have)} seeds)':30s}" + "".join(f"{c:>15s}" for c in cells))
    return lines


def run_summary_lines(res: Path, seed: int) -> list[str]:
    """What one seed's training and decoding recorded (epochs, best epoch, stop reason, decode times)."""
    run = run_folder(res, seed)
    lines = []
    if (run / "budget_stop.json").exists():
        note = json.loads((run / "budget_stop.json").read_text(encoding="utf-8"))
        lines.append(f"seed {seed} training: stopped by the wall-time budget after {note['epochs_completed']} epoch(s); "
                     f"best epoch {note['best_epoch']} (dev greedy BLEU-4 {note['best_dev_greedy_bleu4']})")
    elif (run / "summary.json").exists():
        summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
        best_dev = (summary.get("best_dev") or {}).get("bleu4")
        best = "no dev BLEU-4" if best_dev is None else f"dev greedy BLEU-4 {best_dev:.2f}"
        lines.append(f"seed {seed} training: {summary.get('epochs_run')} epochs, best epoch {summary.get('best_epoch')} "
                     f"({best}), stop: {summary.get('stop_reason')}, train time {summary.get('train_time_s') or 0:.0f} s")
        if (avg := summary.get("averaged")) is not None:
            lines.append(f"seed {seed} best.pt: the mean of epochs {avg['epochs']} ({avg['selection']} {avg['count']}), "
                         f"dev greedy BLEU-4 {avg['dev']['bleu4']:.2f}")
    if (run / "decoded.summary.json").exists():
        ds = json.loads((run / "decoded.summary.json").read_text(encoding="utf-8"))
        lines.append(f"seed {seed} decoding: " + ", ".join(f"{s} {v['decoded']} sentences in {v['seconds']} s"
                                                          for s, v in ds["splits"].items()) + f"; beam {ds['settings']['beam']}")
    return lines


def chosen_seeds(config: Path, count: int | None) -> list[int]:
    """The first ``count`` of the config's training seeds (all of them without ``--seeds``); more than it lists
    continue after its last one (a seed is just a number: the runs differ only in it)."""
    from hatl.config import load_config, training_seeds

    seeds = training_seeds(load_config(config))
    if count is None:
        return seeds
    if count < 1:
        raise SystemExit("--seeds must be >= 1")
    while len(seeds) < count:
        seeds.append(max(seeds) + 1)
    return seeds[:count]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "examples" / "phoenix14t_gloss2text.yaml")
    parser.add_argument("--results", type=Path, default=ROOT.parent / "phoenix_results", help="outside the repository (default: beside it)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per stage (1 was fastest on a shared 2-core machine)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="train/decode/score this many seeds (the config's training.seeds, in order; default: all of them)")
    parser.add_argument("--from-stage", choices=STAGES, default=STAGES[0])
    parser.add_argument("--to-stage", choices=STAGES, default=STAGES[-1])
    parser.add_argument("--train-budget-min", type=float, default=0.0,
                        help="stop each seed's training after this many minutes and use its best dev checkpoint so far (0 = no cap)")
    args = parser.parse_args(argv)

    res = args.results.resolve()
    if res.is_relative_to(ROOT):
        raise SystemExit(f"--results {res} is inside the repository; use a folder outside it")
    config = args.config.resolve()
    seeds = chosen_seeds(config, args.seeds)
    commands = {seed: stage_commands(config, res, args.threads, seed) for seed in seeds}
    chosen = STAGES[STAGES.index(args.from_stage): STAGES.index(args.to_stage) + 1]
    times: dict[str, float] = {}
    for name in [s for s in chosen if s in SHARED_STAGES]:
        times[name], _ = run_stage(name, commands[seeds[0]][name], res / "logs", 0.0)
    for seed in seeds:
        for name in [s for s in chosen if s in SEED_STAGES]:
            budget = args.train_budget_min * 60 if name == "train" else 0.0
            key = f"{name} seed {seed}"
            times[key], stopped = run_stage(key.replace(" ", "_"), commands[seed][name], res / "logs", budget)
            if stopped:
                export_best_from_resume(config, res, seed)
    if "table" in chosen:
        scored = [str(run_folder(res, seed) / "scores.json") for seed in seeds if (run_folder(res, seed) / "scores.json").exists()]
        times["table"], _ = run_stage("table", [*commands[seeds[0]]["table"], "--scores", *scored], res / "logs", 0.0)

    print("\nwall time per stage (s): " + ", ".join(f"{k} {v:.1f}" for k, v in times.items())
          + f"; total {sum(times.values()):.1f}")
    per_seed: dict[int, dict[str, dict[str, float]]] = {}
    for seed in seeds:
        for line in run_summary_lines(res, seed) + floor_and_distinct(res, seed) + word_recall_lines(res, seed):
            print(line)
        scores_path = run_folder(res, seed) / "scores.json"
        if scores_path.exists():
            per_seed[seed] = seed_values(json.loads(scores_path.read_text(encoding="utf-8")))
    if per_seed:
        print("\n" + "\n".join(seeds_table(per_seed)))
        for key in ("test nolm", "test lm"):
            values = [v[key]["bleu4"] for v in per_seed.values() if key in v]
            if values:
                mean, sd = mean_sd(values)
                verdict = "above" if mean > REFERENCE["test_bleu4"] else "below"
                print(f"{key.replace('nolm', 'no LM').replace(' lm', ' + KenLM')}: mean test BLEU-4 {mean:.2f}"
                      + (f" ± {sd:.2f}" if sd is not None else "") + f" over {len(values)} seed(s), {verdict} "
                      f"{REFERENCE['test_bleu4']} ({REFERENCE['name']})")
        print(json.dumps({"seeds": seeds, "times_s": {k: round(v, 1) for k, v in times.items()},
                          "per_seed": {str(k): v for k, v in per_seed.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
