"""Real-MedASL Table 7 (2 translators x 2 tasks x 3 strategies, fold 0) through the unchanged workflow, and its summary.

    .venv/bin/python bench/medasl_table7.py [--workdir ../medasl_run] [--data ../medasl_full] [--cores 2]
        [--configfile config/examples/medasl.yaml config/examples/medasl_cpu.yaml] [--summary-only | --dry-run] [--out PATH]

Run mode creates the work directory (outside the repository) with symlinks to the repository's ``Snakefile``,
``rules``, ``workflow``, ``config`` and ``envs``, so ``results/``, ``logs/``, ``benchmarks/`` and ``resume/`` land
there and the config's ``root: ../medasl_full`` resolves beside it, then runs

    snakemake results/table7.csv --cores N --configfile <files>

in it (output streamed to ``<workdir>/snakemake.log``, wall time measured). ``--summary-only`` runs nothing;
``--dry-run`` passes ``--dry-run`` to snakemake (the jobs still to do, in the log; nothing is computed).

Both modes then summarise what the work directory holds, print it and write it to ``<workdir>/summary.json``
(or ``--out``), with the provenance of the resolved config ``results/config/medasl.yaml``:

1. wall time and peak memory (max_rss) of every job from Snakemake's benchmark files, grouped by rule;
2. per training run: epochs, best epoch and metric, stop reason, HATL release timeline, training seconds;
3. Table 7 as written (our rows beside the paper's, read from ``results/table7.csv``), plus the no-LM-fusion
   scores of each run where its ``scores.json`` has them;
4. the trend check: per translator x task, which strategy has the best test BLEU-4 / ROUGE, against the paper
   (where HATL is best in every cell);
5. data facts that explain the numbers: sentences per role in the fold, and how much of the dev/test text
   (whole sentences, word 1/2/4-grams) occurs in the fold's training text.

A run still in progress is summarised as far as it got: absent pieces are reported as missing.
The real data: ``git clone https://github.com/INDUCE-Lab/MedASL ../medasl_full`` beside the project
(never inside it; the repository has no licence file).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from hatl.config import training_seeds
from hatl.experiment import RUN_KEYS, seed_folder

ROOT = Path(__file__).resolve().parents[1]
DATASET = "medasl"
TARGET = "results/table7.csv"
LINKS = ("Snakefile", "rules", "workflow", "config", "envs")
DEFAULT_CONFIGFILES = ("config/examples/medasl.yaml", "config/examples/medasl_cpu.yaml")
DEFAULT_GRID = {"models": ["transformer", "adat"], "tasks": ["sign2gloss2text", "sign2text"],
                "strategies": ["classical", "full", "hatl"], "folds": ["fold0"], "seeds": [seed_folder(1234)]}
STRATEGIES = ("classical", "full", "hatl")
METRICS = ("bleu1", "bleu2", "bleu3", "bleu4", "rouge")
LABELS = {"bleu1": "BLEU-1", "bleu2": "BLEU-2", "bleu3": "BLEU-3", "bleu4": "BLEU-4", "rouge": "ROUGE"}
NGRAM_ORDERS = (1, 2, 4)
# Snakemake's progress line, e.g. "18 of 51 steps (35%) done"
PROGRESS_RE = re.compile(r"^(\d+) of (\d+) steps \((\d+)%\) done")
GET_DATA = ("get the public release beside the project (never inside it): "
            "git clone https://github.com/INDUCE-Lab/MedASL {path}")


# ------------------------------------------------------------------------------------------ small readers
def _read_json(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(content, None), or (None, 'missing' / 'unreadable: ...'): a summary must not crash on a half-done run."""
    if not path.exists():
        return None, "missing"
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except (OSError, json.JSONDecodeError) as err:
        return None, f"unreadable: {err}"


def _number(value: Any) -> float | None:
    """A float, or None for NA / '-' / NaN (Snakemake writes NA when a job was too short to sample)."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


# ------------------------------------------------------------------------------------------ run mode
def ensure_workdir(workdir: Path, root: Path = ROOT) -> list[str]:
    """Create ``workdir`` with symlinks to the repository's workflow files; returns what it did or found odd.

    Existing entries are left alone (a work directory may be resumed): a link pointing elsewhere is reported.
    """
    notes = []
    workdir.mkdir(parents=True, exist_ok=True)
    for name in LINKS:
        link, target = workdir / name, root / name
        if link.is_symlink():
            if link.resolve() != target.resolve():
                notes.append(f"{link} points to {os.readlink(link)}, not {target} (left as is)")
        elif link.exists():
            notes.append(f"{link} exists and is not a link to {target} (left as is)")
        else:
            link.symlink_to(target)
            notes.append(f"linked {link} -> {target}")
    return notes


def data_problem(data: Path) -> str | None:
    """Why ``data`` is not a MedASL checkout (None when it looks like one), with how to get it."""
    if not data.is_dir():
        return f"MedASL data folder {data} does not exist; " + GET_DATA.format(path=data)
    missing = [p for p in ("Annotations", "Videos") if not (data / p).is_dir()]
    if missing:
        return f"{data} lacks {', '.join(missing)}: not a MedASL checkout; " + GET_DATA.format(path=data)
    return None


def configfile_path(name: str, workdir: Path) -> Path:
    """Where snakemake (run in workdir) finds a --configfile; before workdir's links exist, the repository's file."""
    path = Path(name)
    if path.is_absolute():
        return path
    return workdir / path if (workdir / path).exists() else ROOT / path


def configured_root(configfiles: Sequence[str], workdir: Path) -> Path | None:
    """``datasets.medasl.root`` of the last configfile that sets it, resolved as the workflow resolves it (from workdir)."""
    root = None
    for name in configfiles:
        path = configfile_path(name, workdir)
        try:
            cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        value = ((cfg.get("datasets") or {}).get(DATASET) or {}).get("root")
        if value:
            root = value
    return None if root is None else (workdir / root).resolve()


def snakemake_command(configfiles: Sequence[str], cores: int, dry_run: bool = False) -> list[str]:
    """The target comes before --configfile: that option takes every following value as a file."""
    return [sys.executable, "-m", "snakemake", TARGET, "--cores", str(cores), *(["--dry-run"] if dry_run else []),
            "--configfile", *configfiles]


def run_snakemake(workdir: Path, command: list[str]) -> dict[str, Any]:
    """Run the workflow in ``workdir``, output to ``workdir/snakemake.log`` (progress lines echoed); wall time."""
    log_path = workdir / "snakemake.log"
    # The rules call `hatl`: the interpreter's own bin folder (the venv) must come first on PATH.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONUNBUFFERED": "1"}
    print(f"[{time.strftime('%H:%M:%S')}] in {workdir}: {' '.join(command[2:])}", flush=True)
    start = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(command, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            log.flush()
            if PROGRESS_RE.match(line) or "Error" in line or line.startswith("localrule "):
                print(f"    [{time.strftime('%H:%M:%S')}] {line.rstrip()}", flush=True)
        rc = proc.wait()
    wall = time.perf_counter() - start
    print(f"    snakemake exit {rc} after {wall:.1f} s (log {log_path})", flush=True)
    return {"command": command[2:], "workdir": str(workdir), "log": str(log_path), "returncode": rc, "wall_s": round(wall, 1)}


# ------------------------------------------------------------------------------------------ 0. config, progress
def load_view(workdir: Path, configfiles: Sequence[str]) -> tuple[dict[str, Any] | None, str]:
    """The config the runs used: the resolved results/config/medasl.yaml, else config.yaml + configfiles merged."""
    from hatl.config import ConfigError, deep_merge, effective_config, load_config, validate_config

    resolved = workdir / "results" / "config" / f"{DATASET}.yaml"
    try:
        if resolved.exists():
            return load_config(resolved), str(resolved)
        merged: dict[str, Any] = {}
        names = ["config/config.yaml", *configfiles]
        for name in names:
            path = configfile_path(name, workdir)
            merged = deep_merge(merged, yaml.safe_load(path.read_text(encoding="utf-8")) or {})
        return effective_config(validate_config(merged), DATASET), "merged " + " + ".join(names) + " (no resolved config yet)"
    except (ConfigError, OSError, yaml.YAMLError) as err:
        return None, f"no usable config: {err}"


def grid(cfg: dict[str, Any] | None) -> dict[str, list[str]]:
    """Models x tasks x strategies x folds x seeds the workflow trains for MedASL (the default Table 7 grid without a config)."""
    if cfg is None:
        return dict(DEFAULT_GRID)
    ds = cfg.get("datasets", {}).get(DATASET, {})
    cv = ds.get("cross_validation") or {}
    folds = [f"fold{k}" for k in (cv.get("run_folds") or range(int(cv.get("folds", 1))))] if cv else ["main"]
    exp = cfg.get("experiments", {})
    return {"models": list(exp.get("models", DEFAULT_GRID["models"])), "tasks": list(ds.get("tasks", DEFAULT_GRID["tasks"])),
            "strategies": list(exp.get("strategies", DEFAULT_GRID["strategies"])), "folds": folds,
            "seeds": [seed_folder(s) for s in training_seeds(cfg)]}


def progress(workdir: Path) -> list[dict[str, Any]]:
    """The last 'N of M steps done' line of each snakemake*.log in workdir (how far a run got)."""
    out = []
    for path in sorted(workdir.glob("snakemake*.log")):
        last = None
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                match = PROGRESS_RE.match(line)
                if match:
                    last = match
        out.append({"log": path.name, "done": int(last.group(1)) if last else 0, "of": int(last.group(2)) if last else None})
    return out


# ------------------------------------------------------------------------------------------ 1. benchmarks
def read_benchmark(path: Path) -> dict[str, Any]:
    """Seconds and peak RSS (MB) of one benchmark TSV; repeated measurements: mean seconds, max RSS."""
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    seconds = [v for v in (_number(r.get("s")) for r in rows) if v is not None]
    rss = [v for v in (_number(r.get("max_rss")) for r in rows) if v is not None]
    return {"s": sum(seconds) / len(seconds) if seconds else None, "max_rss_mb": max(rss) if rss else None,
            "repeats": len(rows)}


def benchmark_jobs(bench_dir: Path) -> list[dict[str, Any]]:
    """One entry per benchmark file: ``job`` (its path under benchmarks/ without .tsv) and ``rule``.

    The rule is the first folder (``train/medasl/adat/...``), or the file name for top-level files
    (``pretrain_demo.tsv``); run-level rules (train/decode/score) also get the run's model/task/strategy/fold/seed.
    """
    jobs = []
    for path in sorted(bench_dir.rglob("*.tsv")):
        rel = path.relative_to(bench_dir).with_suffix("")
        parts = rel.parts
        job: dict[str, Any] = {"job": rel.as_posix(), "rule": parts[0] if len(parts) > 1 else re.sub(r"\d+$", "", parts[0])}
        if len(parts) == 7 and parts[0] in ("train", "decode", "score"):
            job.update(zip(RUN_KEYS, parts[1:]))
        try:
            job.update(read_benchmark(path))
        except (OSError, csv.Error) as err:
            job.update({"s": None, "max_rss_mb": None, "problem": f"unreadable: {err}"})
        jobs.append(job)
    return jobs


def group_jobs(jobs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Per rule: job count, summed and longest seconds, peak RSS; and the same over all jobs.

    Summed seconds are CPU-slot time: with --cores 2 two jobs may run at once, so the sum can exceed the wall time.
    """
    rules: dict[str, dict[str, Any]] = {}
    everything = {"jobs": 0, "total_s": 0.0, "max_s": None, "peak_rss_mb": None}
    for job in jobs:
        for acc in (rules.setdefault(job["rule"], {"jobs": 0, "total_s": 0.0, "max_s": None, "peak_rss_mb": None}), everything):
            acc["jobs"] += 1
            if job.get("s") is not None:
                acc["total_s"] += job["s"]
                acc["max_s"] = job["s"] if acc["max_s"] is None else max(acc["max_s"], job["s"])
            if job.get("max_rss_mb") is not None:
                acc["peak_rss_mb"] = job["max_rss_mb"] if acc["peak_rss_mb"] is None else max(acc["peak_rss_mb"], job["max_rss_mb"])
    return {"rules": rules, "total": everything}


# ------------------------------------------------------------------------------------------ 2. training runs
def release_timeline(log_lines: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """(epoch, layer, reason) of every backbone layer release, in order (the controller's 'release' events)."""
    return [{"epoch": line.get("epoch"), "layer": ev.get("layer"), "reason": ev.get("reason")}
            for line in log_lines for ev in line.get("events") or [] if ev.get("type") == "release"]


EPOCH_RE = re.compile(r"\bepoch (\d+) \|")  # the trainer's per-epoch INFO line in the rule's log


def last_epoch(rule_log: Path) -> tuple[int, str] | None:
    """(epoch, line) of the last finished epoch in a training job's log (log.jsonl is written only at the end)."""
    if not rule_log.exists():
        return None
    last = None
    with open(rule_log, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            match = EPOCH_RE.search(line)
            if match:
                last = (int(match.group(1)), line.strip())
    return last


def trained_grid(g: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(trained task, strategies) the configured tasks train: Sign2Gloss2Text is a sign2gloss run per strategy
    plus one gloss2text run (strategy full) that its cascade decode chains (docs/architecture.md)."""
    from hatl.experiment import TEXT_ONLY_TASKS, trained_tasks

    out: list[tuple[str, list[str]]] = []
    for task in g["tasks"]:
        for t in trained_tasks(task):
            if all(t != seen for seen, _ in out):
                out.append((t, ["full"] if t in TEXT_ONLY_TASKS else list(g["strategies"])))
    return out


def run_facts(workdir: Path, model: str, task: str, strategy: str, fold: str, seed: str) -> dict[str, Any]:
    """What one training run's summary.json and log.jsonl say; status 'missing' / 'in progress' when absent."""
    rel = Path(DATASET) / model / task / strategy / fold / seed
    run_dir = workdir / "results" / "runs" / rel
    from hatl.errors import InputError
    from hatl.evaluate.figures import load_run_log

    facts: dict[str, Any] = {"model": model, "task": task, "strategy": strategy, "fold": fold, "seed": seed, "run_dir": str(run_dir)}
    if not (run_dir / "summary.json").exists():
        # hatl train writes summary.json and log.jsonl only at the end: a resume state without them means the
        # trainer is at work (or was stopped), neither means not started yet; the job log has the last epoch
        facts["status"] = "in progress" if (workdir / "resume" / rel).exists() else "missing"
        latest = last_epoch(workdir / "logs" / "train" / rel.with_suffix(".log"))
        if latest is not None:
            facts["last_epoch"], facts["last_epoch_line"] = latest
        return facts
    try:
        run_log = load_run_log(run_dir)  # the figures' reader of summary.json + log.jsonl
    except InputError as err:
        facts["status"] = f"unreadable: {err}"
        return facts
    summary = run_log.summary
    facts.update({
        "status": "done",
        "epochs_run": summary.get("epochs_run"), "best_epoch": summary.get("best_epoch"),
        "metric_name": summary.get("metric_name"), "best_metric": summary.get("best_metric"),
        "best_dev": summary.get("best_dev"), "stop_reason": summary.get("stop_reason"),
        "train_time_s": summary.get("train_time_s"), "n_backbone_layers": summary.get("n_backbone_layers"),
        "release_epochs": summary.get("release_epochs"), "final_trainable_layers": summary.get("final_trainable_layers"),
        "samples": summary.get("samples"),
        "releases": release_timeline(run_log.epochs),
    })
    return facts


# ------------------------------------------------------------------------------------------ 3. Table 7
def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def read_table(path: Path) -> tuple[list[dict[str, Any]], str | None]:
    """Rows of results/table7.csv as written by ``hatl table`` (empty cells are None)."""
    import pandas as pd

    if not path.exists():
        return [], "missing"
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as err:
        return [], f"unreadable: {err}"
    rows = [{k: _clean(v) for k, v in row.items()} for row in frame.to_dict("records")]
    for row in rows:  # literature rows have no model/strategy
        row["model"], row["strategy"] = row.get("model") or "", row.get("strategy") or ""
    return rows, None


def nolm_scores(workdir: Path, runs: str | None) -> dict[str, dict[str, float | None]] | None:
    """Mean no-LM-fusion scores of a measured row's runs (its ``runs`` column), or None when any run lacks them."""
    if not runs:
        return None
    blocks = []
    for run in runs.split(";"):
        scores, _ = _read_json((workdir / run) / "scores.json")  # relative entries are relative to the workdir
        if scores is None:
            return None
        blocks.append(scores.get("splits") or {})
    out: dict[str, dict[str, float | None]] = {}
    for split in ("dev", "test"):
        nolm = [(b.get(split) or {}).get("nolm") for b in blocks]
        if any(not isinstance(n, dict) for n in nolm):
            return None
        out[split] = {}
        for m in METRICS:
            vals = [v for v in (_number(n.get(m)) for n in nolm) if v is not None]
            out[split][m] = sum(vals) / len(vals) if vals else None
    return out


def table_rows(workdir: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The table's rows reduced to what the summary shows; measured rows get their no-LM scores."""
    out = []
    for row in rows:
        entry = {k: row.get(k) for k in ("task", "name", "model", "strategy", "source", "data", "n_folds")}
        entry.update({f"{s}_{m}": _number(row.get(f"{s}_{m}")) for s in ("dev", "test") for m in METRICS})
        if row.get("source") == "measured":
            entry["nolm"] = nolm_scores(workdir, row.get("runs"))
        out.append(entry)
    return out


# ------------------------------------------------------------------------------------------ 4. trend check
def ranking(values: dict[str, float | None]) -> dict[str, Any]:
    """Strategies by value, best first; ``best`` lists every strategy tied at the top; missing values are named."""
    present = {k: v for k, v in values.items() if v is not None}
    order = sorted(present, key=lambda k: (-present[k], STRATEGIES.index(k) if k in STRATEGIES else 9))
    top = max(present.values()) if present else None
    best = [k for k in order if math.isclose(present[k], top, abs_tol=1e-9)] if present else []
    if "hatl" not in present:
        hatl_best = "missing"
    elif best == ["hatl"]:
        hatl_best = "yes"
    elif "hatl" in best:
        hatl_best = "tied"
    else:
        hatl_best = "no"
    return {"order": order, "best": best, "hatl_best": hatl_best, "missing": sorted(set(values) - set(present))}


def trend_check(rows: list[dict[str, Any]], models: Sequence[str], tasks: Sequence[str]) -> list[dict[str, Any]]:
    """Per translator x task: our test BLEU-4 / ROUGE per strategy and their ranking, beside the paper's."""
    out = []
    for model in models:
        for task in tasks:
            cell: dict[str, Any] = {"model": model, "task": task}
            for source in ("measured", "reported"):
                mine = {r["strategy"]: r for r in rows if r["source"] == source and r["model"] == model and r["task"] == task}
                for metric in ("bleu4", "rouge"):
                    values = {s: (mine[s].get(f"test_{metric}") if s in mine else None) for s in STRATEGIES}
                    cell[f"{source}_{metric}"] = {"values": values, **ranking(values)}
            # None until both sides have all three strategies: a partial grid cannot agree or differ yet
            cell["same_best"] = {
                m: (cell[f"measured_{m}"]["best"] == cell[f"reported_{m}"]["best"]
                    if not cell[f"measured_{m}"]["missing"] and not cell[f"reported_{m}"]["missing"] else None)
                for m in ("bleu4", "rouge")
            }
            out.append(cell)
    return out


# ------------------------------------------------------------------------------------------ 5. data facts
def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def exact_overlap(train: Sequence[str], other: Sequence[str]) -> float | None:
    """Share of ``other`` sentences whose (normalised) text is a training sentence; None for no sentences."""
    seen = set(train)
    return sum(s in seen for s in other) / len(other) if other else None


def ngram_coverage(train: Sequence[str], other: Sequence[str], n: int) -> float | None:
    """Share of the word n-gram occurrences of ``other`` that occur anywhere in the training text.

    Occurrences, not types: a frequent n-gram weighs as often as it must be produced. None when ``other``
    has no n-gram of that order (all sentences shorter than n).
    """
    seen = {g for s in train for g in ngrams(s.split(), n)}
    grams = Counter(g for s in other for g in ngrams(s.split(), n))
    total = sum(grams.values())
    return sum(c for g, c in grams.items() if g in seen) / total if total else None


def data_facts(manifest: Path, fold: str, cfg: dict[str, Any] | None) -> dict[str, Any]:
    """Sentences per role in ``fold`` and how much dev/test text (and gloss) the training rows already contain.

    Text is normalised as the vocabulary stage does (the dataset's ``text`` settings), glosses by
    ``hatl.text.normalise_gloss``, so "seen" means what the model's vocabulary and LM could have seen.
    """
    from hatl.errors import InputError
    from hatl.folds import fold_rows
    from hatl.text import normalise_gloss
    from hatl.datasets.manifest import read_manifest
    from hatl.vocab import TextNormalisation

    if not manifest.exists():
        return {"status": "missing", "manifest": str(manifest)}
    try:
        rows = fold_rows(read_manifest(manifest), fold, manifest)
    except InputError as err:
        return {"status": f"unreadable: {err}", "manifest": str(manifest)}
    norm = TextNormalisation.from_dataset(((cfg or {}).get("datasets") or {}).get(DATASET) or {})
    facts: dict[str, Any] = {"status": "done", "manifest": str(manifest), "fold": fold, "roles": rows.description,
                             "sentences": {role: len(rows.role(role)) for role in ("train", "dev", "test")},
                             "normalisation": norm.to_dict()}
    columns = {"text": norm.apply, "gloss": normalise_gloss}
    for column, normalise in columns.items():
        train = [normalise(s) for s in rows.train[column] if s]
        for role in ("dev", "test"):
            other = [normalise(s) for s in rows.role(role)[column] if s]
            facts[f"{column}_{role}"] = {
                "sentences": len(other), "exact_in_train": exact_overlap(train, other),
                **{f"ngram{n}_seen": ngram_coverage(train, other, n) for n in NGRAM_ORDERS},
            }
    return facts


# ------------------------------------------------------------------------------------------ summary
def summarise(workdir: Path, configfiles: Sequence[str], run_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything the work directory says about the Table 7 run (see the module docstring), as one JSON-able dict."""
    from hatl.provenance import provenance

    cfg, cfg_source = load_view(workdir, configfiles)
    g = grid(cfg)
    jobs = benchmark_jobs(workdir / "benchmarks") if (workdir / "benchmarks").is_dir() else []
    runs = [run_facts(workdir, m, t, s, f, seed) for f in g["folds"] for seed in g["seeds"] for m in g["models"]
            for t, strategies in trained_grid(g) for s in strategies]
    table_path = workdir / TARGET
    raw, table_problem = read_table(table_path)
    rows = table_rows(workdir, raw)
    return {
        "workdir": str(workdir), "config": cfg_source, "grid": g, "run": run_info, "progress": progress(workdir),
        "benchmarks": {"jobs": jobs, **group_jobs(jobs)},
        "training": runs,
        "table7": {"path": str(table_path), "status": table_problem or "done", "rows": rows},
        "trend": trend_check(rows, g["models"], g["tasks"]) if rows else [],
        "data": [data_facts(workdir / "results" / DATASET / "manifest.parquet", f, cfg) for f in g["folds"]],
        "provenance": provenance(cfg, config_source=cfg_source),
    }


def _f(value: Any, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as readable text (the JSON holds the same and more)."""
    out = [f"MedASL Table 7 in {summary['workdir']} (config: {summary['config']})"]
    if summary.get("run"):
        r = summary["run"]
        out.append(f"snakemake: exit {r['returncode']}, wall {r['wall_s']} s, log {r['log']}")
    for p in summary["progress"]:
        out.append(f"{p['log']}: {p['done']} of {p['of'] if p['of'] is not None else '?'} steps done")

    bench = summary["benchmarks"]
    out += ["", "1. Jobs (Snakemake benchmarks; summed seconds can exceed wall time when jobs ran side by side)",
            f"   {'rule':18s}{'jobs':>5s}{'total s':>10s}{'max s':>9s}{'peak RSS MB':>13s}"]
    for rule, acc in sorted(bench["rules"].items()):
        out.append(f"   {rule:18s}{acc['jobs']:5d}{_f(acc['total_s']):>10s}{_f(acc['max_s']):>9s}{_f(acc['peak_rss_mb'], 0):>13s}")
    tot = bench["total"]
    out.append(f"   {'total':18s}{tot['jobs']:5d}{_f(tot['total_s']):>10s}{_f(tot['max_s']):>9s}{_f(tot['peak_rss_mb'], 0):>13s}")
    train_jobs = {(j.get("model"), j.get("task"), j.get("strategy"), j.get("fold")): j for j in bench["jobs"] if j["rule"] == "train"}

    out += ["", "2. Training runs",
            f"   {'model/task/strategy/fold':46s}{'status':>12s}{'epochs':>7s}{'best':>5s}  {'metric':20s}{'train s':>9s}"
            f"{'job s':>8s}{'RSS MB':>8s}  stop / releases"]
    for r in summary["training"]:
        name = f"{r['model']}/{r['task']}/{r['strategy']}/{r['fold']}"
        job = train_jobs.get((r["model"], r["task"], r["strategy"], r["fold"]), {})
        if r["status"] != "done":
            out.append(f"   {name:46s}{r['status']:>12s}{'':>7s}{'':>5s}  {'':20s}{'':>9s}{_f(job.get('s')):>8s}"
                       f"{_f(job.get('max_rss_mb'), 0):>8s}  " + (f"at epoch {r['last_epoch']}" if "last_epoch" in r else ""))
            continue
        metric = f"{r['metric_name']} {_f(r['best_metric'], 4)}"
        releases = ", ".join(f"L{e['layer']}@{e['epoch']}" for e in r["releases"]) or "none"
        out.append(f"   {name:46s}{r['status']:>12s}{r['epochs_run'] or 0:7d}{r['best_epoch'] or 0:5d}  {metric:20s}"
                   f"{_f(r['train_time_s']):>9s}{_f(job.get('s')):>8s}{_f(job.get('max_rss_mb'), 0):>8s}  "
                   f"{r['stop_reason']}; releases {releases}")

    table = summary["table7"]
    out += ["", f"3. Table 7 ({table['path']}: {table['status']})"]
    if table["rows"]:
        head = "".join(f"{'d ' + LABELS[m]:>10s}" for m in METRICS) + "".join(f"{'t ' + LABELS[m]:>10s}" for m in METRICS)
        out.append(f"   {'row':44s}{'source':>10s}" + head)
        task = None
        for r in table["rows"]:
            if r["task"] != task:
                task = r["task"]
                out.append(f"   [{task}]")
            cells = "".join(f"{_f(r[f'{s}_{m}']):>10s}" for s in ("dev", "test") for m in METRICS)
            source = "paper" if str(r["source"]).startswith("reported") else "ours"
            out.append(f"   {str(r['name'])[:44]:44s}{source:>10s}" + cells)
            if r.get("nolm"):
                cells = "".join(f"{_f(r['nolm'][s][m]):>10s}" for s in ("dev", "test") for m in METRICS)
                out.append(f"   {'  (same runs, no LM fusion)':44s}{'ours':>10s}" + cells)

    out += ["", "4. Trend check (test split): best strategy per translator x task, ours vs the paper"]
    if not summary["trend"]:
        out.append(f"   needs {TARGET}: {table['status']}")
    for c in summary["trend"]:
        for metric in ("bleu4", "rouge"):
            ours, paper = c[f"measured_{metric}"], c[f"reported_{metric}"]
            vals = ", ".join(f"{s} {_f(v)}" for s, v in ours["values"].items())
            out.append(f"   {c['model']:12s}{c['task']:16s}{LABELS[metric]:7s} ours: {vals}; best {'/'.join(ours['best']) or '-'}"
                       f" (HATL best: {ours['hatl_best']}); paper best {'/'.join(paper['best']) or '-'}"
                       f"{'  <- differs' if c['same_best'][metric] is False else ''}")

    out += ["", "5. Data"]
    for d in summary["data"]:
        if d["status"] != "done":
            out.append(f"   {d['manifest']}: {d['status']}")
            continue
        s = d["sentences"]
        out.append(f"   {d['fold']}: train {s['train']}, dev {s['dev']}, test {s['test']} sentences ({d['roles']})")
        for key in ("text_dev", "text_test", "gloss_dev", "gloss_test"):
            f = d[key]
            grams = ", ".join(f"{n}-grams {_pct(f[f'ngram{n}_seen'])}" for n in NGRAM_ORDERS)
            out.append(f"   {key:11s}{f['sentences']:4d} sentences: exact in train {_pct(f['exact_in_train'])}; seen in train: {grams}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=ROOT.parent / "medasl_run", help="outside the repository (default: beside it)")
    parser.add_argument("--data", type=Path, default=None,
                        help="MedASL checkout, relative to --workdir (default: datasets.medasl.root of the configfiles)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--configfile", nargs="+", default=list(DEFAULT_CONFIGFILES),
                        help="snakemake --configfile values (relative to --workdir, whose config/ links to the repository's)")
    parser.add_argument("--summary-only", action="store_true", help="run nothing; summarise what --workdir holds")
    parser.add_argument("--dry-run", action="store_true", help="snakemake --dry-run: list the jobs still to run, run none")
    parser.add_argument("--out", type=Path, default=None, help="summary JSON (default <workdir>/summary.json)")
    args = parser.parse_args(argv)

    workdir = args.workdir.resolve()
    if workdir.is_relative_to(ROOT):
        raise SystemExit(f"--workdir {workdir} is inside the repository; use a folder outside it")
    run_info = None
    if not args.summary_only:
        root = configured_root(args.configfile, workdir)
        data = (workdir / args.data).resolve() if args.data is not None else (root or (workdir / "../medasl_full").resolve())
        if args.data is not None and root is not None and data != root:
            raise SystemExit(f"--data {data} is not the configfiles' datasets.{DATASET}.root ({root}, resolved from "
                             f"{workdir}): the workflow would read the latter")
        problem = data_problem(data)
        if problem:
            raise SystemExit(problem)
        for note in ensure_workdir(workdir):
            print(note)
        run_info = run_snakemake(workdir, snakemake_command(args.configfile, args.cores, args.dry_run))
    elif not workdir.is_dir():
        raise SystemExit(f"--workdir {workdir} does not exist (run without --summary-only to create and fill it)")

    from hatl.io import write_json

    summary = summarise(workdir, args.configfile, run_info)
    print("\n" + format_summary(summary))
    out = args.out or workdir / "summary.json"
    write_json(out, summary)
    print(f"\nwrote {out}")
    return 0 if run_info is None or run_info["returncode"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
