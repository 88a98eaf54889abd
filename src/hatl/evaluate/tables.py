"""``hatl table``: the paper's Table 4 (hyperparameters) and Tables 5-7 (translation quality) from scored runs.

    hatl table --config config/config.yaml --table 5 --dataset phoenix14t \
        --scores results/runs/phoenix14t/*/*/*/*/*/scores.json --out results/table5.csv

writes ``table5.csv``, ``table5.md`` and ``table5.json`` (sidecar: ROUGE variant, sacrebleu signature,
bootstrap settings, the runs used, anything skipped, provenance). Without ``--scores`` the command globs
``<runs-root>/<dataset>/*/*/*/*/*/scores.json``. A run's dataset/model/task/strategy/fold/seed is read from its path
(``.../runs/<dataset>/<model>/<task>/<strategy>/<fold>/seed<N>/scores.json``) or from the ``run`` block of scores.json.

Rows per task group (Sign2Gloss2Text: the cascade of a sign2gloss and a gloss2text run, with the recogniser's
gloss WER beside it; Sign2Text; then the joint Sign2Text + CTC ablation and Gloss2Text when such runs exist): the paper's
literature rows and its own rows (``source=reported``, ``data=real``), then ours (``source=measured``,
``data=demo`` or ``real`` from the dataset's adapter). Measured values are means over every run of the row
(folds x training seeds) with the sample standard deviation over those runs in ``*_sd`` columns (MedASL: 5 folds on the held-out test; a note under the table says
how many of the folds the rows average). ``p_<metric>`` is the one-sided paired-bootstrap p-value that the
row's own model/task HATL run beats this baseline on test. ``backbone`` is each measured row's backbone
provenance (from its runs' summary.json, :mod:`hatl.models.backbone_source`); a real dataset's row whose
backbone saw only synthetic data is flagged (``backbone_synthetic_only``, a note under the table), and a
full fine-tuning row trained with the layer-decay ablation is named "..., layer decay".
``n_folds`` and ``n_seeds`` count a row's runs, and the JSON sidecar's ``members`` holds each run's values and
each seed's mean over folds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hatl.config import effective_config, is_demo, load_config
from hatl.errors import ConfigError, InputError
from hatl.evaluate.bootstrap import paired_bootstrap, sentence_stats
from hatl.evaluate.collapse import COLLAPSE_RATIO, constant_floor, distinct_outputs
from hatl.evaluate.paper_numbers import METRICS, PAPER_TABLE4, rows_for
from hatl.evaluate.score import read_decoded
from hatl.experiment import DATASET_NAMES, RUN_KEYS, STRATEGY_NAMES, TABLE_DATASET, TASK_NAMES, TASK_ORDER
from hatl.experiment import STRATEGIES as STRATEGY_ORDER
from hatl.experiment import TRANSLATOR_NAMES as MODEL_NAMES
from hatl.experiment import TRANSLATORS as MODEL_ORDER
from hatl.experiment import CASCADES, parse_run_dir, run_glob, seed_of
from hatl.experiment import run_dir as run_folder
from hatl.folds import fold_plan
from hatl.io import read_json, write_json, write_text
from hatl.metrics import ROUGE_VARIANT, BleuSettings
from hatl.models.backbone_source import BackboneSource
from hatl.models.backbone_source import unknown as unknown_source
from hatl.provenance import provenance

log = logging.getLogger(__name__)

SPLITS = ("dev", "test")
VALUE_COLUMNS = [f"{s}_{m}" for s in SPLITS for m in METRICS]
METRIC_LABELS = {"bleu1": "BLEU-1", "bleu2": "BLEU-2", "bleu3": "BLEU-3", "bleu4": "BLEU-4", "rouge": "ROUGE"}
COLUMNS = (
    ["table", "dataset", "task", "name", "model", "strategy", "source", "data", "backbone", "n_folds", "n_seeds"]
    + VALUE_COLUMNS
    + [f"{c}_sd" for c in VALUE_COLUMNS]
    + ["dev_wer", "test_wer", "p_bleu4", "p_rouge", "test_distinct", "test_distinct_refs", "test_distinct_ratio",
       "collapsed", "backbone_synthetic_only", "runs"]
)
FULL_DECAY = ", layer decay"  # name suffix of full fine-tuning runs with the LLRD ablation (training.lr.full_layer_decay)
SYNTHETIC_MARK = " ⚠ synthetic-only backbone"
AGGREGATION = ("mean over every run of a row (folds x seeds); *_sd = sample standard deviation (ddof=1) over those "
               "runs when there are >= 2; 'members' lists each run's values and each seed's mean over folds")
FLOOR_SOURCE = "floor"
FLOOR_NAME = "Constant output (best dev reference)"


def datasets_for_table(config: dict[str, Any], table: int) -> list[str]:
    """Configured datasets that can fill a results table: named after its release, read by its adapter, or a
    demo with that profile."""
    wanted = TABLE_DATASET[table]
    return [name for name, ds in (config.get("datasets") or {}).items()
            if ds and (name == wanted or ds.get("adapter") == wanted or ds.get("demo_profile") == wanted)]


def check_table_dataset(config: dict[str, Any], table: int, dataset: str) -> None:
    """Table N compares with the paper's rows for one release: refuse a dataset that is not that release
    (its measured rows would sit under another corpus's reported numbers) or a config that has none."""
    if table not in TABLE_DATASET:
        return
    fits = datasets_for_table(config, table)
    wanted = TABLE_DATASET[table]
    paper = DATASET_NAMES[wanted]
    if not fits:
        raise ConfigError(
            f"table {table} reports {paper}, and the config has no {wanted} dataset (adapter '{wanted}', or a demo "
            f"with demo_profile '{wanted}'): add one under 'datasets:', or build only the tables of the datasets "
            f"you have ({', '.join(sorted(config.get('datasets') or {})) or 'none configured'})")
    if dataset not in fits:
        raise ConfigError(f"table {table} reports {paper}, but dataset '{dataset}' is not of that release (adapter or "
                          f"demo_profile '{wanted}'); use --dataset {' or '.join(fits)}")


# ------------------------------------------------------------------------------------------ run loading
@dataclasses.dataclass
class ScoredRun:
    path: Path  # scores.json
    run: dict[str, str]
    scores: dict[str, Any]

    @property
    def run_dir(self) -> Path:
        return self.path.parent

    def decoded_path(self, split: str) -> Path:
        return self.run_dir / f"decoded.{split}.jsonl"


def load_scored_run(path: str | Path) -> ScoredRun:
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, "scores file does not exist")
    try:
        scores = read_json(path)
    except json.JSONDecodeError as err:
        raise InputError(path, None, f"not valid JSON: {err}") from err
    run = scores.get("run") or parse_run_dir(path.parent)
    if run and "seed" not in run:  # scored before the seed level existed: the path may still say
        run = {**run, **{k: v for k, v in (parse_run_dir(path.parent) or {}).items() if k == "seed"}}
    if not run or any(k not in run for k in RUN_KEYS):
        raise InputError(path, "run", "cannot tell the run (expected .../runs/<ds>/<model>/<task>/<strategy>/<fold>/seed<N>/scores.json)")
    if "splits" not in scores:
        raise InputError(path, "splits", "scores.json has no 'splits' block")
    return ScoredRun(path, {k: str(run[k]) for k in RUN_KEYS}, scores)


def find_scores(runs_root: str | Path, dataset: str) -> list[Path]:
    return sorted(Path(runs_root).glob(run_glob(dataset, "scores.json")))


# ------------------------------------------------------------------------------------------ measured rows
def _mean_sd(values: list[float | None]) -> tuple[float | None, float | None]:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return None, None
    mean = float(np.mean(vals))
    sd = float(np.std(vals, ddof=1)) if len(vals) > 1 else None
    return mean, sd


def _split_value(run: ScoredRun, split: str, metric: str) -> float | None:
    block = run.scores["splits"].get(split)
    return None if block is None else block.get(metric)


def _aligned_rows(a: ScoredRun, b: ScoredRun, split: str) -> tuple[list[dict], list[dict]]:
    pa, pb = a.decoded_path(split), b.decoded_path(split)
    ra, rb = read_decoded(pa), read_decoded(pb)
    ids_a, by_b = [r["id"] for r in ra], {r["id"]: r for r in rb}
    if set(ids_a) != set(by_b):
        raise InputError(pb, None, f"sample ids differ from {pa}: the paired bootstrap needs the same sentences")
    return ra, [by_b[i] for i in ids_a]


def _by_fold(runs: list[ScoredRun]) -> dict[str, list[ScoredRun]]:
    """fold -> that fold's runs, one per training seed, in seed order."""
    out: dict[str, list[ScoredRun]] = defaultdict(list)
    for run in sorted(runs, key=_run_order):
        out[run.run["fold"]].append(run)
    return out


def significance(
    hatl: list[ScoredRun], baseline: list[ScoredRun], settings: BleuSettings, boot: dict[str, Any]
) -> dict[str, float]:
    """p-values (test split) for each configured metric; folds are paired by name, and within a fold every
    seed of either system is scored on the same resample and the seeds averaged (hatl.evaluate.bootstrap)."""
    h_by, b_by = _by_fold(hatl), _by_fold(baseline)
    folds = sorted(set(h_by) & set(b_by))
    if not folds:
        raise ValueError("no fold in common")
    h_stats, b_stats = [], []
    for fold in folds:
        anchor = h_by[fold][0]  # every run of the fold is aligned to this run's sentence order
        refs = [r["ref"] for r in read_decoded(anchor.decoded_path("test"))]
        h_stats.append([sentence_stats([r["hyp"] for r in _aligned_rows(anchor, m, "test")[1]], refs, settings) for m in h_by[fold]])
        b_stats.append([sentence_stats([r["hyp"] for r in _aligned_rows(anchor, m, "test")[1]], refs, settings) for m in b_by[fold]])
    out = {}
    for metric in boot.get("metrics", ["bleu4", "rouge"]):
        res = paired_bootstrap(h_stats, b_stats, metric, boot.get("samples", 1000), boot.get("seed", 1234), settings)
        out[f"p_{metric}"] = res["p_value"]
    return out


def measured_name(model: str, task: str, strategy: str, layer_decay: bool = False) -> str:
    """Display name of a measured row. Gloss2Text has no backbone, so "fine-tuning" strategies do not apply:
    every such run trains the translator from scratch on the gloss/text pairs. A full fine-tuning run with
    HATL's layer-wise decay (the ablation switch) is named so: the paper's full baseline has none."""
    if task == "gloss2text":
        return f"{MODEL_NAMES.get(model, model)} (from scratch)"
    suffix = FULL_DECAY if strategy == "full" and layer_decay else ""
    return f"{MODEL_NAMES.get(model, model)} ({STRATEGY_NAMES.get(strategy, strategy)}{suffix})"


def run_summary(run: ScoredRun) -> dict[str, Any] | None:
    """The training summary.json of the run that holds the row's backbone (provenance, the α applied): the run's
    own, or for a cascade (Sign2Gloss2Text) its recognition run's, the sibling folder of the same model,
    strategy, fold and seed (``.../<model>/sign2gloss/<strategy>/<fold>/seed<N>``); None when there is none."""
    run_dir = run.run_dir
    if run.run["task"] in CASCADES:
        runs_root = run_dir.parents[len(RUN_KEYS) - 1]
        ids = {**run.run, "task": CASCADES[run.run["task"]][0], "seed": seed_of(run.run["seed"])}
        run_dir = run_folder(runs_root, **ids)
    path = run_dir / "summary.json"
    return read_json(path) if path.exists() else None


def has_layer_decay(run: ScoredRun) -> bool:
    """A full fine-tuning run trained with layer-wise decay (summary.json's ``layer_decay`` below 1)."""
    summary = run_summary(run) or {}
    return run.run["strategy"] == "full" and float(summary.get("layer_decay", 1.0)) < 1.0


def backbone_of(members: list[ScoredRun]) -> tuple[str, bool]:
    """The backbone provenance label of a row (its runs' labels, ``; ``-joined if they differ) and whether
    every run's backbone saw only synthetic data."""
    sources = []
    for member in members:
        summary = run_summary(member)
        sources.append(BackboneSource.from_dict(summary.get("backbone")) if summary is not None
                       else unknown_source("no summary.json beside the scores"))
    labels = list(dict.fromkeys(src.label for src in sources))
    return "; ".join(labels), bool(sources) and all(src.synthetic_only for src in sources)


def nolm_row(row: dict[str, Any], members: list[ScoredRun]) -> dict[str, Any] | None:
    """The same runs scored on the beam without KenLM fusion (``hyp_nolm``), or None when a run lacks it.

    Only Gloss2Text gets this row: it is the real-data check of LM fusion, where the effect can be compared
    with the literature without any sign-recognition error in between.
    """
    out = {k: v for k, v in row.items() if not k.startswith(("dev_", "test_", "p_"))}
    out["name"] = row["name"] + ", no LM fusion"
    out["collapsed"] = None  # the distinct-output count is the fused beam's
    for split in SPLITS:
        blocks = [m.scores["splits"].get(split) or {} for m in members]
        if any(not isinstance(b.get("nolm"), dict) for b in blocks):
            return None
        for metric in METRICS:
            mean, sd = _mean_sd([b["nolm"].get(metric) for b in blocks])
            out[f"{split}_{metric}"], out[f"{split}_{metric}_sd"] = mean, sd
    return out


def _run_order(run: ScoredRun) -> tuple:
    """Folds in name order, seeds in numeric order within a fold."""
    return (run.run["fold"], seed_of(run.run["seed"]))


def run_values(run: ScoredRun) -> dict[str, Any]:
    """One run's identity (fold, seed) and its dev/test metrics, with and without LM fusion: a sidecar entry."""
    out: dict[str, Any] = {"fold": run.run["fold"], "seed": seed_of(run.run["seed"]), "run": str(run.run_dir)}
    for split in SPLITS:
        for metric in [*METRICS, "wer"]:
            value = _split_value(run, split, metric)
            if value is not None:
                out[f"{split}_{metric}"] = value
        nolm = (run.scores["splits"].get(split) or {}).get("nolm")
        if isinstance(nolm, dict):
            for metric in METRICS:
                if nolm.get(metric) is not None:
                    out[f"{split}_{metric}_nolm"] = nolm[metric]
    return out


def per_seed_means(members: list[ScoredRun]) -> dict[int, dict[str, float]]:
    """seed -> its metrics averaged over the folds it ran on (the per-seed values of a row, for the sidecar)."""
    by_seed: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for member in members:
        by_seed[seed_of(member.run["seed"])].append(run_values(member))
    out = {}
    for seed, values in sorted(by_seed.items()):
        keys = sorted({k for v in values for k in v if k not in ("fold", "seed", "run")})
        out[seed] = {k: float(np.mean([v[k] for v in values if k in v])) for k in keys}
    return out


def measured_rows(
    runs: list[ScoredRun], table: int, dataset: str, data_kind: str, settings: BleuSettings, boot: dict[str, Any],
    skipped: list[dict[str, str]], members_out: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """One row per task x model x strategy: the mean over its runs (every fold x seed) and the sample sd.

    ``members_out``, when given, receives one entry per row with the per-run and per-seed values (the sidecar's).
    """
    groups: dict[tuple[str, str, str, bool], list[ScoredRun]] = defaultdict(list)
    for run in runs:
        groups[(run.run["task"], run.run["model"], run.run["strategy"], has_layer_decay(run))].append(run)
    rows = []
    for (task, model, strategy, decay), members in groups.items():
        members.sort(key=_run_order)
        backbone, synthetic_only = backbone_of(members)
        flagged = synthetic_only and data_kind == "real"  # a real dataset read through a synthetic-only backbone
        row: dict[str, Any] = {
            "table": table, "dataset": dataset, "task": task,
            "name": measured_name(model, task, strategy, decay) + (SYNTHETIC_MARK if flagged else ""),
            "model": model, "strategy": strategy, "source": "measured", "data": data_kind, "backbone": backbone,
            "n_folds": len({m.run["fold"] for m in members}), "n_seeds": len({m.run["seed"] for m in members}), "backbone_synthetic_only": flagged,
            "runs": ";".join(str(m.run_dir) for m in members),
        }
        for split in SPLITS:
            for metric in [*METRICS, "wer"]:
                mean, sd = _mean_sd([_split_value(m, split, metric) for m in members])
                row[f"{split}_{metric}"] = mean
                if metric != "wer":
                    row[f"{split}_{metric}_sd"] = sd
        row.update(distinct_columns(members, skipped, row["name"] + f" [{task}]"))
        hatl = groups.get((task, model, "hatl", False))
        if strategy != "hatl" and hatl:
            try:
                row.update(significance(hatl, members, settings, boot))
            except (ValueError, InputError) as err:
                skipped.append({"record": row["name"] + f" [{task}]", "reason": f"no p-value: {err}"})
                log.warning("no p-value for %s [%s]: %s", row["name"], task, err)
        rows.append(row)
        if members_out is not None:
            members_out.append({"task": task, "model": model, "strategy": strategy, "name": row["name"],
                                "n_folds": row["n_folds"], "n_seeds": row["n_seeds"],
                                "runs": [run_values(m) for m in members], "per_seed": per_seed_means(members)})
        extra = nolm_row(row, members) if task == "gloss2text" else None
        if extra is not None:
            rows.append(extra)
    return rows


def distinct_columns(members: list[ScoredRun], skipped: list[dict[str, str]], record: str) -> dict[str, Any]:
    """Distinct test outputs vs distinct test references (mean over folds) and the collapse flag.

    A fold without its decoded test file is listed in ``skipped``; with none left the columns stay empty.
    """
    counts = []
    for member in members:
        path = member.decoded_path("test")
        if not path.exists():
            skipped.append({"record": record, "reason": f"no distinct-output count: {path} does not exist"})
            continue
        rows = read_decoded(path)
        counts.append(distinct_outputs([r["hyp"] for r in rows], [r["ref"] for r in rows]))
    if not counts:
        return {"test_distinct": None, "test_distinct_refs": None, "test_distinct_ratio": None, "collapsed": None}
    ratio = float(np.mean([c.ratio for c in counts]))
    return {
        "test_distinct": float(np.mean([c.outputs for c in counts])),
        "test_distinct_refs": float(np.mean([c.references for c in counts])),
        "test_distinct_ratio": ratio,
        "collapsed": ratio < COLLAPSE_RATIO,
    }


def _fold_refs(members: list[ScoredRun], split: str) -> dict[str, list[str]]:
    """fold -> the references of ``split`` (by sample id, over every run of the fold that has the file)."""
    by_fold: dict[str, dict[str, str]] = defaultdict(dict)
    for member in members:
        path = member.decoded_path(split)
        if path.exists():
            for row in read_decoded(path):
                by_fold[member.run["fold"]].setdefault(row["id"], row["ref"])
    return {fold: [refs[i] for i in sorted(refs)] for fold, refs in by_fold.items()}


def floor_rows(runs: list[ScoredRun], table: int, dataset: str, data_kind: str, settings: BleuSettings,
               skipped: list[dict[str, str]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One constant-output row per task group: per fold, the dev reference with the best dev BLEU-4,
    emitted for every input and scored on dev and test (mean ± sd over folds, like the measured rows).
    Also returns what was chosen (task -> fold -> sentence and its dev BLEU-4) for the sidecar."""
    by_task: dict[str, list[ScoredRun]] = defaultdict(list)
    for run in runs:
        by_task[run.run["task"]].append(run)
    rows, chosen = [], {}
    for task, members in by_task.items():
        dev, test = _fold_refs(members, "dev"), _fold_refs(members, "test")
        folds = sorted(dev)
        if not folds:
            skipped.append({"record": f"{FLOOR_NAME} [{task}]", "reason": "no decoded dev file: no constant-output floor"})
            continue
        floors = {f: constant_floor(dev[f], {"dev": dev[f], "test": test.get(f, [])}, settings) for f in folds}
        chosen[task] = {f: {"sentence": fl.sentence, "dev_bleu4": fl.dev_bleu4} for f, fl in floors.items()}
        row: dict[str, Any] = {
            "table": table, "dataset": dataset, "task": task, "name": FLOOR_NAME, "model": "", "strategy": "",
            "source": FLOOR_SOURCE, "data": data_kind, "n_folds": len(folds), "runs": "",
        }
        for split in SPLITS:
            for metric in METRICS:
                mean, sd = _mean_sd([fl.scores.get(split, {}).get(metric) for fl in floors.values()])
                row[f"{split}_{metric}"], row[f"{split}_{metric}_sd"] = mean, sd
        rows.append(row)
    return rows, chosen


def reported_rows(table: int, dataset: str) -> list[dict[str, Any]]:
    rows = []
    for paper in rows_for(table):
        row: dict[str, Any] = {
            "table": table, "dataset": dataset, "task": paper.task, "name": paper.name,
            "model": paper.model or "", "strategy": paper.strategy or "",
            "source": "reported" if paper.model else "reported (literature)", "data": "real", "n_folds": None,
            "runs": "",
        }
        for split, values in (("dev", paper.dev), ("test", paper.test)):
            for metric, value in zip(METRICS, values):
                row[f"{split}_{metric}"] = value
        rows.append(row)
    return rows


def _sort_key(row: dict[str, Any]) -> tuple:
    literature = row["source"] == "reported (literature)"
    source_rank = {"reported (literature)": 0, "reported": 1, FLOOR_SOURCE: 2}.get(row["source"], 3)
    return (
        TASK_ORDER.index(row["task"]) if row["task"] in TASK_ORDER else len(TASK_ORDER),
        source_rank,
        0 if literature else MODEL_ORDER.index(row["model"]) if row["model"] in MODEL_ORDER else 9,
        0 if literature else STRATEGY_ORDER.index(row["strategy"]) if row["strategy"] in STRATEGY_ORDER else 9,
    )


def results_table(
    table: int, dataset: str, runs: list[ScoredRun], data_kind: str, settings: BleuSettings, boot: dict[str, Any],
    floors: dict[str, Any] | None = None, members: list[dict[str, Any]] | None = None,
) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """Rows of Table 5/6/7 (reported, constant-output floor, measured) in the paper's order, and the list of
    skipped items. ``floors``, when given, receives the floor sentences chosen per task and fold; ``members``
    the per-run and per-seed values behind each measured row."""
    for run in runs:
        if run.run["dataset"] != dataset:
            raise InputError(run.path, "run.dataset", f"run belongs to dataset '{run.run['dataset']}', not '{dataset}'")
    skipped: list[dict[str, str]] = []
    floor, chosen = floor_rows(runs, table, dataset, data_kind, settings, skipped)
    if floors is not None:
        floors.update(chosen)
    rows = (reported_rows(table, dataset) + floor
            + measured_rows(runs, table, dataset, data_kind, settings, boot, skipped, members))
    measured_tasks = {r.run["task"] for r in runs}
    # The paper has no Gloss2Text rows (its literature rows for it come from VL-Transfer): the group appears
    # only when we have such runs.
    rows = [r for r in rows if r["task"] != "gloss2text" or r["task"] in measured_tasks]
    rows.sort(key=_sort_key)
    frame = pd.DataFrame(rows)
    for col in COLUMNS:
        if col not in frame:
            frame[col] = None
    return frame[COLUMNS], skipped


# ------------------------------------------------------------------------------------------ table 4
def _get(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return _model_default(config, dotted)
        node = node[part]
    return node


def _model_default(config: dict[str, Any], dotted: str) -> Any:
    """Model sizes the config leaves out resolve to hatl.models' defaults (what training actually builds)."""
    if not dotted.startswith("model."):
        return None
    try:
        from hatl.models.slt import model_config

        node: Any = model_config(config)
        for part in dotted.split(".")[1:]:
            node = getattr(node, part)
        return node
    except (ImportError, AttributeError, ValueError):
        return None


def _fmt(value: Any) -> str:
    if value is None:
        return "(not in config)"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    return str(value)


def table4_rows(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Paper value vs the value resolved from the (effective) config, one row per Table 4 line."""
    g = lambda key: _get(config, key)  # noqa: E731 - a short local alias keeps the table readable
    per_model = lambda key: {m: g(f"model.{m}.{key}") for m in MODEL_ORDER}  # noqa: E731
    spec: list[tuple[str, str, Any, str]] = [
        ("HATL: warmup epochs", "training.hatl.warmup_epochs", g("training.hatl.warmup_epochs"), "2"),
        ("HATL: warmup scheduler", "training.lr.warmup_min_steps, training.lr.warmup_fraction",
         f"max({_fmt(g('training.lr.warmup_min_steps'))}, {_fmt(g('training.lr.warmup_fraction'))} x training steps)", None),
        ("HATL: patience for unfreezing the first layer", "training.hatl.patience_first", g("training.hatl.patience_first"), "4"),
        ("HATL: moving average window", "training.hatl.window", g("training.hatl.window"), "3"),
        ("HATL: unfreeze threshold (CTC)", "training.hatl.thresholds.ctc_loss", g("training.hatl.thresholds.ctc_loss"), "0.003"),
        ("HATL: unfreeze threshold (BLEU-4)", "training.hatl.thresholds.bleu4", g("training.hatl.thresholds.bleu4"), "0.002"),
        ("HATL: unfreeze threshold decay", "training.hatl.delta_decay, training.hatl.delta_decay_every",
         f"x{_fmt(g('training.hatl.delta_decay'))} every {_fmt(g('training.hatl.delta_decay_every'))} epochs", None),
        ("HATL: cooldown after unfreeze", "training.hatl.cooldown_epochs", g("training.hatl.cooldown_epochs"), "3"),
        ("HATL: early stopping", "training.early_stopping.patience", g("training.early_stopping.patience"), "5"),
        ("HATL: optimizer", "training.optimizer",
         f"AdamW, {_fmt(g('training.optimizer.betas'))}, eps={_fmt(g('training.optimizer.eps'))}", None),
        ("HATL: backbone learning rate", "training.lr.backbone", g("training.lr.backbone"), "1e-5"),
        ("HATL: layer-wise learning rate decay", "training.lr.layer_decay",
         f"backbone lr x {_fmt(g('training.lr.layer_decay'))}^(n-m)", None),
        ("Translation: encoder layers", "model.{transformer,adat}.encoder_layers", per_model("encoder_layers"), "3"),
        ("Translation: decoder layers", "model.{transformer,adat}.decoder_layers", per_model("decoder_layers"), "1"),
        ("Translation: hidden size", "model.{transformer,adat}.hidden", per_model("hidden"), "512"),
        ("Translation: attention heads", "model.{transformer,adat}.heads", per_model("heads"), "8"),
        ("Translation: dropout rate", "model.{transformer,adat}.dropout", per_model("dropout"), "0.1"),
        ("Translation: optimizer", "training.optimizer",
         f"AdamW, {_fmt(g('training.optimizer.betas'))}, eps={_fmt(g('training.optimizer.eps'))}", None),
        ("Translation: encoder learning rate", "training.lr.encoder", g("training.lr.encoder"), "5e-5"),
        ("Translation: decoder learning rate", "training.lr.decoder", g("training.lr.decoder"), "1e-4"),
        ("Translation: CTC gloss alignment", "model.loss.w_ctc",
         f"w_CTC = {_fmt(g('model.loss.w_ctc'))} in Sign2Gloss2Text, 0 in Sign2Text", None),
        ("Decoding: CTC blank bias (Sign2Gloss2Text)", "decoding.ctc.blank_bias", g("decoding.ctc.blank_bias"), "0.4"),
        ("Decoding: CTC temperature (Sign2Gloss2Text)", "decoding.ctc.temperature", g("decoding.ctc.temperature"), "0.9"),
        ("Decoding: beam width", "decoding.beam_width", g("decoding.beam_width"), "8"),
        ("Decoding: KenLM language model", "lm.order", f"{_fmt(g('lm.order'))}-gram", None),
        ("Decoding: KenLM weight", "decoding.lm_weight", g("decoding.lm_weight"), "0.7"),
    ]
    rows = []
    for name, key, value, paper_number in spec:
        values = list(value.values()) if isinstance(value, dict) else [value]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        if paper_number is not None and numeric:
            same = all(math.isclose(float(v), float(paper_number), rel_tol=1e-9) for v in values)
            matches = "yes" if same else "no"
        elif paper_number is not None and any(v is None for v in values):
            matches = "not configured"
        else:
            matches = "see values"  # composite values: compare the text
        shown = "; ".join(f"{m}: {_fmt(v)}" for m, v in value.items()) if isinstance(value, dict) else _fmt(value)
        rows.append({"hyperparameter": name, "paper": PAPER_TABLE4[name], "configured": shown,
                     "config_key": key, "matches": matches})
    return rows


# ------------------------------------------------------------------------------------------ rendering
def _cell(row: pd.Series, col: str) -> str:
    value = row.get(col)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    sd = row.get(f"{col}_sd")
    if sd is not None and not (isinstance(sd, float) and math.isnan(sd)):
        return f"{value:.1f} ± {sd:.1f}"
    return f"{value:.1f}"


def _signature_text(signature: Any) -> str:
    """One signature when BLEU-1..4 share it (they differ only in max order, which the name says)."""
    if isinstance(signature, dict) and len(set(signature.values())) == 1:
        return next(iter(signature.values()))
    return json.dumps(signature)


def _p(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.3f}"


def _distinct_cell(row: pd.Series) -> str:
    value, refs = row.get("test_distinct"), row.get("test_distinct_refs")
    if value is None or refs is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    text = f"{value:.0f}/{refs:.0f}" if float(value).is_integer() and float(refs).is_integer() else f"{value:.1f}/{refs:.1f}"
    return text + (" ⚠" if _is_collapsed(row) else "")


def _wer_cell(row: pd.Series) -> str:
    """Gloss WER beside a row whose runs recognised glosses (the cascade): "dev / test", else "-"."""
    values = [row.get(f"{split}_wer") for split in SPLITS]
    if all(v is None or (isinstance(v, float) and math.isnan(v)) for v in values):
        return "-"
    return " / ".join("-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1f}" for v in values)


def _flag(row: pd.Series, column: str) -> bool:
    """A boolean column that may be None / NaN (rows without the flag) read as a plain bool."""
    value = row.get(column)
    return bool(value) and not (isinstance(value, float) and math.isnan(value))


def _is_collapsed(row: pd.Series) -> bool:
    return _flag(row, "collapsed")


def collapsed_names(frame: pd.DataFrame) -> list[str]:
    """Measured rows flagged as collapsed, as "Name [Task]"."""
    return [f"{row['name']} [{TASK_NAMES.get(row['task'], row['task'])}]" for _, row in frame.iterrows() if _is_collapsed(row)]


def synthetic_backbone_names(frame: pd.DataFrame) -> list[str]:
    """Measured rows of real data whose backbone saw only synthetic data, as "Name [Task]"."""
    if "backbone_synthetic_only" not in frame:
        return []
    return [f"{row['name']} [{TASK_NAMES.get(row['task'], row['task'])}]" for _, row in frame.iterrows()
            if _flag(row, "backbone_synthetic_only")]


def synthetic_backbone_note(frame: pd.DataFrame) -> str | None:
    """The sentence under a table (and in the report) naming real-data rows read through a synthetic-only backbone."""
    names = synthetic_backbone_names(frame)
    if not names:
        return None
    return (f"⚠ SYNTHETIC-ONLY BACKBONE: {len(names)} measured row(s) of real data use a backbone pretrained only on "
            "synthetic demo data, so they do not measure transfer from real signing (set backbone.checkpoint, or "
            "pretrain on real data): " + "; ".join(names) + ".")


def collapse_note(frame: pd.DataFrame) -> str:
    """The sentence under a table (and in the report) that says which runs are collapsed."""
    names = collapsed_names(frame)
    measured = int((frame["source"] == "measured").sum())
    if not names:
        return f"No measured run is collapsed (every one has >= {COLLAPSE_RATIO:.0%} distinct test outputs)."
    return (f"⚠ COLLAPSED: {len(names)} of {measured} measured runs decode fewer than {COLLAPSE_RATIO:.0%} distinct "
            "test sentences (against distinct references); their scores are what a few fixed sentences score, "
            "compare the constant-output row: " + "; ".join(names) + ".")


def folds_note(config: dict[str, Any], dataset: str, runs: list[ScoredRun]) -> str | None:
    """The sentence under a cross-validated table saying over how many of the dataset's folds its measured
    rows average (the paper: 5-fold cross-validation on MedASL's 80% split); None without cross-validation."""
    _, total = fold_plan(config, dataset)
    if not total:
        return None
    folds = sorted({r.run["fold"] for r in runs}, key=lambda f: (len(f), f))
    if len(folds) == total:
        return f"Measured rows: mean ± sd over all {total} cross-validation folds, as the paper."
    which = ", ".join(folds) or "none"
    return (f"Measured rows: {len(folds)} of {total} cross-validation folds ({which}; the paper averages all {total})"
            f"{', so no sd' if len(folds) == 1 else ''}: this config trains only these (cross_validation.run_folds, "
            "or demo.run_folds for a demo dataset).")


def results_markdown(frame: pd.DataFrame, table: int, meta: dict[str, Any]) -> str:
    lines = [
        f"<!-- Table {table}: {DATASET_NAMES[TABLE_DATASET[table]]} ({meta['dataset']}). ROUGE: {meta['rouge_variant']}. "
        f"BLEU-1..4 sacrebleu signature: {_signature_text(meta['bleu_signature'])}. code {meta['code_version']}. -->",
        "",
        f"**Table {table}.** Translation quality on {DATASET_NAMES[TABLE_DATASET[table]]} (dataset `{meta['dataset']}`, our data: "
        f"{meta['data']}). Reported rows are the paper's; measured rows are ours (mean ± sd over folds and training "
        "seeds where there are several). p = one-sided paired bootstrap p-value that HATL beats that baseline on test. "
        f"*{FLOOR_NAME}*: the dev reference with the best dev BLEU-4, emitted for every input (the floor a model "
        "must beat). Test distinct: distinct test outputs / distinct test references; ⚠ marks a collapsed run "
        f"(< {COLLAPSE_RATIO:.0%}). Gloss WER: the recognised glosses Sign2Gloss2Text's translator read (the cascade's "
        "sign2gloss run, CTC decoding of Table 4), dev / test.",
        "",
        "| Model | Source | Data | Backbone | " + " | ".join(f"Dev {METRIC_LABELS[m]}" for m in METRICS) + " | "
        + " | ".join(f"Test {METRIC_LABELS[m]}" for m in METRICS) + " | p (BLEU-4) | p (ROUGE) | Test distinct | Gloss WER |",
        "|" + "---|" * (4 + 2 * len(METRICS) + 4),
    ]
    current = None
    for _, row in frame.iterrows():
        if row["task"] != current:
            current = row["task"]
            lines.append(f"| **{TASK_NAMES.get(current, current)}** |" + " |" * (3 + 2 * len(METRICS) + 4))
        name = row["name"] + (" ⚠ collapsed" if _is_collapsed(row) else "")
        backbone = row.get("backbone")
        backbone = backbone if isinstance(backbone, str) and backbone else "-"
        cells = [name, row["source"], row["data"], backbone] + [_cell(row, c) for c in VALUE_COLUMNS]
        cells += [_p(row.get("p_bleu4")), _p(row.get("p_rouge")), _distinct_cell(row), _wer_cell(row)]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines.append("")
    if meta.get("folds_note"):
        lines.append(meta["folds_note"])
        lines.append("")
    lines.append(collapse_note(frame))
    lines.append("")
    if (note := synthetic_backbone_note(frame)) is not None:
        lines.append(note)
        lines.append("")
    lines.append("Backbone: where the ST-GCN++ weights come from (`pyskl checkpoint <name>`, `pretrained on <dataset> "
                 "(real|synthetic)`, or `none`).")
    lines.append("")
    lines.append("BLEU-1..4 are cumulative sacrebleu scores; " + meta["rouge_variant"] + ".")
    return "\n".join(lines) + "\n"


def table4_markdown(rows: list[dict[str, Any]], dataset: str, code_version: str) -> str:
    lines = [
        f"<!-- Table 4 as resolved from the config for dataset '{dataset}'. code {code_version}. -->",
        "",
        f"**Table 4.** Hyperparameters: the paper's values beside those resolved from the config (dataset `{dataset}`).",
        "",
        "| Hyperparameter | Paper | Configured | Config key | Matches |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {r['hyperparameter']} | {r['paper']} | {r['configured']} | `{r['config_key']}` | {r['matches']} |" for r in rows]
    return "\n".join(lines) + "\n"


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    from hatl.io import atomic_path

    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.4f")


# ------------------------------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="pipeline config")
    parser.add_argument("--table", required=True, type=int, choices=[4, 5, 6, 7])
    parser.add_argument("--dataset", required=True, help="dataset name in the config (its runs fill the measured rows)")
    parser.add_argument("--scores", nargs="*", type=Path, default=None,
                        help="scores.json files of the runs (default: glob <runs-root>/<dataset>/*/*/*/*/*/scores.json)")
    parser.add_argument("--runs-root", type=Path, default=Path("results/runs"))
    parser.add_argument("--out", required=True, type=Path, help="tableN.csv (tableN.md and tableN.json are written beside)")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    check_table_dataset(config, args.table, args.dataset)
    eff = effective_config(config, args.dataset)
    data_kind = "demo" if is_demo(config, args.dataset) else "real"
    prov = provenance(eff, dataset=args.dataset, table=args.table)
    md_path, json_path = args.out.with_suffix(".md"), args.out.with_suffix(".json")
    if args.table == 4:
        rows = table4_rows(eff)
        _write_csv(args.out, pd.DataFrame(rows))
        write_text(md_path, table4_markdown(rows, args.dataset, prov["code_version"]))
        write_json(json_path, {"table": 4, "dataset": args.dataset, "data": data_kind, "rows": rows, "provenance": prov})
        log.info("wrote %s (%d hyperparameters)", args.out, len(rows))
        return 0
    paths = list(args.scores) if args.scores is not None else find_scores(args.runs_root, args.dataset)
    runs = [load_scored_run(p) for p in paths]
    settings = BleuSettings.from_config(eff.get("evaluation", {}))
    boot = eff.get("evaluation", {}).get("bootstrap", {})
    floors: dict[str, Any] = {}
    members: list[dict[str, Any]] = []
    frame, skipped = results_table(args.table, args.dataset, runs, data_kind, settings, boot, floors, members)
    # the signatures the runs were scored with (normally one; several would mean mixed scoring settings)
    signatures = [json.loads(s) for s in sorted({json.dumps(r.scores.get("bleu_signature"), sort_keys=True) for r in runs})]
    meta = {
        "dataset": args.dataset, "data": data_kind, "rouge_variant": ROUGE_VARIANT,
        "bleu_signature": signatures[0] if len(signatures) == 1 else signatures,
        "code_version": prov["code_version"], "folds_note": folds_note(eff, args.dataset, runs),
    }
    _write_csv(args.out, frame)
    write_text(md_path, results_markdown(frame, args.table, meta))
    write_json(json_path, {
        "table": args.table, "dataset": args.dataset, "paper_dataset": DATASET_NAMES[TABLE_DATASET[args.table]], "data": data_kind,
        "rouge_variant": ROUGE_VARIANT, "bleu_signature": meta["bleu_signature"], "bleu_settings": dataclasses.asdict(settings),
        "bootstrap": boot, "p_value": "one-sided paired bootstrap on test: (1 + #{baseline >= HATL}) / (1 + samples); "
        "within a fold every seed of a system is scored on the same resample and the seeds averaged (per-seed outputs, not pooled)",
        "aggregation": AGGREGATION, "members": members,
        "folds_note": meta["folds_note"],
        "constant_output": floors, "collapse_ratio": COLLAPSE_RATIO, "collapsed": collapsed_names(frame),
        "collapse_note": collapse_note(frame),
        "synthetic_backbone": synthetic_backbone_names(frame), "synthetic_backbone_note": synthetic_backbone_note(frame),
        "scores": [str(p) for p in paths], "skipped": skipped, "provenance": prov,
    })
    for name in collapsed_names(frame):
        log.warning("collapsed run (< %.0f%% distinct test outputs): %s", 100 * COLLAPSE_RATIO, name)
    if (note := synthetic_backbone_note(frame)) is not None:
        log.warning("%s", note)
    log.info("wrote %s: %d measured run(s), %d row(s), %d skipped", args.out, len(runs), len(frame), len(skipped))
    return 0
