"""``hatl figure``: the paper's Figures 2-10 and learning curves from finished run folders.

    hatl figure --config config/config.yaml --figure 2 --dataset phoenix14t \
        --runs results/runs/phoenix14t/*/*/*/*/* --out results/figures/figure2.png

writes the PNG and a PDF beside it (same name, ``.pdf``). A run folder holds ``summary.json`` and
``log.jsonl`` (written by ``hatl train``); its dataset/model/task/strategy/fold come from the summary or the
path. Without ``--runs`` the folders under ``<runs-root>/<dataset>/`` are used.

* 2-4 (``training-time``): training time per strategy, grouped by model and task (mean over folds, sd bars).
* 5-7 (``time-vs-layers``): HATL runs, cumulative training time when each number of unfrozen layers was
  reached, Transformer vs ADAT, one panel per task.
* 8-10 (``timeline``): HATL unfreezing timelines, the epoch each backbone layer was released and how long it
  trained, per model, one panel per task.
* ``curves``: dev metric and training loss per epoch for each run, release epochs marked.

The figure number only fixes the kind (2/3/4, 5/6/7, 8/9/10 are the same plot for PHOENIX14T, Isharah,
MedASL); ``--dataset`` picks the runs. Colours are fixed per strategy and per model across every figure.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hatl.config import effective_config, load_config
from hatl.errors import InputError
from hatl.experiment import DATASET_NAMES, FIGURE_TABLE, RUN_KEYS, STRATEGY_NAMES, TABLE_DATASET, TASK_NAMES, TASK_ORDER
from hatl.experiment import STRATEGIES as STRATEGY_ORDER
from hatl.experiment import TRANSLATOR_NAMES as MODEL_NAMES
from hatl.experiment import TRANSLATORS as MODEL_ORDER
from hatl.experiment import parse_run_dir, run_glob
from hatl.io import atomic_path, read_json, write_json
from hatl.provenance import provenance

log = logging.getLogger(__name__)

KINDS = {2: "training-time", 3: "training-time", 4: "training-time",
         5: "time-vs-layers", 6: "time-vs-layers", 7: "time-vs-layers",
         8: "timeline", 9: "timeline", 10: "timeline"}
# Colour-blind-safe (Okabe-Ito) and the same everywhere: strategies in bar charts, models in line charts.
STRATEGY_COLOURS = {"classical": "#0072B2", "full": "#E69F00", "hatl": "#009E73"}
MODEL_COLOURS = {"transformer": "#CC79A7", "adat": "#56B4E9"}
MODEL_MARKERS = {"transformer": "o", "adat": "s"}
METRIC_LABELS = {"bleu4": "BLEU-4", "ctc_loss": "CTC loss", "wer": "WER"}


@dataclass
class RunLog:
    path: Path
    run: dict[str, str]
    summary: dict[str, Any]
    epochs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def label(self) -> str:
        r = self.run
        return f"{MODEL_NAMES.get(r['model'], r['model'])} / {TASK_NAMES.get(r['task'], r['task'])} / " \
               f"{STRATEGY_NAMES.get(r['strategy'], r['strategy'])} / {r['fold']}" + (f" / {r['seed']}" if "seed" in r else "")

    def train_seconds(self) -> float:
        if self.summary.get("train_time_s") is not None:
            return float(self.summary["train_time_s"])
        if self.summary.get("total_hours") is not None:
            return float(self.summary["total_hours"]) * 3600.0
        return float(sum(e.get("epoch_time_s") or 0.0 for e in self.epochs))

    def cumulative_seconds(self) -> list[float]:
        """Wall time at the end of each logged epoch (the log's own clock, else the sum of epoch times)."""
        out, total = [], 0.0
        for e in self.epochs:
            total += float(e.get("epoch_time_s") or 0.0)
            out.append(float(e["wall_time_s"]) if e.get("wall_time_s") is not None else total)
        return out

    def release_epochs(self) -> dict[int, int]:
        rel = {int(k): int(v) for k, v in (self.summary.get("release_epochs") or {}).items()}
        if rel:
            return rel
        for e in self.epochs:  # fall back to the per-epoch events
            for ev in e.get("events") or []:
                if ev.get("type") == "release" and "layer" in ev:
                    rel.setdefault(int(ev["layer"]), int(e["epoch"]))
        return rel


def load_run_log(run_dir: str | Path) -> RunLog:
    run_dir = Path(run_dir)
    summary_path, log_path = run_dir / "summary.json", run_dir / "log.jsonl"
    if not summary_path.exists():
        raise InputError(summary_path, None, "run has no summary.json (is it finished?)")
    try:
        summary = read_json(summary_path)
    except json.JSONDecodeError as err:
        raise InputError(summary_path, None, f"not valid JSON: {err}") from err
    run = {k: summary[k] for k in RUN_KEYS if k in summary}
    if len(run) < len(RUN_KEYS):
        run = parse_run_dir(run_dir) or {}
    if len(run) < len(RUN_KEYS):
        raise InputError(summary_path, None, "cannot tell the run: no identity in summary.json and not a runs/<ds>/<model>/<task>/<strategy>/<fold>/seed<N> path")
    epochs = []
    if log_path.exists():
        with open(log_path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    epochs.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise InputError(log_path, f"line {lineno}", f"not valid JSON: {err}") from err
    return RunLog(run_dir, {k: str(run[k]) for k in RUN_KEYS}, summary, epochs)


def find_runs(runs_root: str | Path, dataset: str) -> list[Path]:
    return sorted(p.parent for p in Path(runs_root).glob(run_glob(dataset, "summary.json")))


# ------------------------------------------------------------------------------------------ plotting
def _plt(font_size: float):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    logging.getLogger("fontTools").setLevel(logging.WARNING)  # PDF font subsetting logs every glyph at INFO

    plt.rcParams.update({
        "font.size": font_size, "axes.titlesize": font_size + 1, "axes.labelsize": font_size,
        "legend.fontsize": font_size - 1, "xtick.labelsize": font_size - 1, "ytick.labelsize": font_size - 1,
        "axes.spines.top": False, "axes.spines.right": False, "figure.titlesize": font_size + 2,
        "pdf.fonttype": 42,  # embed TrueType so the PDF text stays selectable/editable
    })
    return plt


def time_unit(max_seconds: float) -> tuple[str, float]:
    """Hours as in the paper; short demo runs switch to minutes or seconds so bars are not all ~0."""
    if max_seconds >= 1800:
        return "hours", 3600.0
    if max_seconds >= 60:
        return "minutes", 60.0
    return "seconds", 1.0


def _tasks(runs: list[RunLog]) -> list[str]:
    present = {r.run["task"] for r in runs}
    return [t for t in TASK_ORDER if t in present] + sorted(present - set(TASK_ORDER))


def plot_training_time(runs: list[RunLog], title: str, font_size: float):
    plt = _plt(font_size)
    groups = [(m, t) for t in _tasks(runs) for m in MODEL_ORDER if any(r.run["model"] == m and r.run["task"] == t for r in runs)]
    strategies = [s for s in STRATEGY_ORDER if any(r.run["strategy"] == s for r in runs)]
    values: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for r in runs:
        values[(r.run["model"], r.run["task"], r.run["strategy"])].append(r.train_seconds())
    unit, scale = time_unit(max((max(v) for v in values.values()), default=0.0))
    fig, ax = plt.subplots(figsize=(max(6.5, 1.9 * len(groups) + 2), 4.6))
    width = 0.8 / max(1, len(strategies))
    x = np.arange(len(groups))
    for k, strategy in enumerate(strategies):
        means, sds = [], []
        for model, task in groups:
            v = np.asarray(values.get((model, task, strategy), []), dtype=float) / scale
            means.append(v.mean() if v.size else np.nan)
            sds.append(v.std(ddof=1) if v.size > 1 else 0.0)
        pos = x - 0.4 + width * (k + 0.5)
        yerr = sds if any(sds) else None  # error bars only where there are several folds
        bars = ax.bar(pos, means, width, yerr=yerr, capsize=3, color=STRATEGY_COLOURS.get(strategy),
                      label=STRATEGY_NAMES.get(strategy, strategy), edgecolor="white", linewidth=0.6)
        for bar, mean in zip(bars, means):
            if not np.isnan(mean):
                ax.annotate(f"{mean:.3g}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            xytext=(0, 2), textcoords="offset points", ha="center", va="bottom", fontsize=font_size - 2)
    ax.set_xticks(x, [f"{MODEL_NAMES.get(m, m)}\n{TASK_NAMES.get(t, t)}" for m, t in groups])
    ax.set_ylabel(f"Training time ({unit})")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(title="Fine-tuning", frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def _panels(plt, n: int, font_size: float, height: float = 4.2):
    fig, axes = plt.subplots(1, n, figsize=(max(6.0, 5.2 * n), height), squeeze=False)
    return fig, list(axes[0])


def plot_time_vs_layers(runs: list[RunLog], title: str, font_size: float):
    plt = _plt(font_size)
    hatl = [r for r in runs if r.run["strategy"] == "hatl"]
    tasks = _tasks(hatl)
    max_s = max((max(r.cumulative_seconds(), default=0.0) for r in hatl), default=0.0)
    unit, scale = time_unit(max_s)
    fig, axes = _panels(plt, max(1, len(tasks)), font_size)
    for ax, task in zip(axes, tasks):
        for model in MODEL_ORDER:
            for r in (r for r in hatl if r.run["task"] == task and r.run["model"] == model):
                reached: dict[int, float] = {}
                for e, t in zip(r.epochs, r.cumulative_seconds()):
                    reached[int(e.get("n_trainable_layers") or 0)] = t / scale  # time at the last epoch with n layers
                if not reached:
                    continue
                xs = sorted(reached)
                per_epoch = r.train_seconds() / max(1, len(r.epochs)) / scale
                fold = _fold_seed(r, hatl)
                ax.plot(xs, [reached[n] for n in xs], marker=MODEL_MARKERS[model], color=MODEL_COLOURS[model],
                        label=f"{MODEL_NAMES[model]}{fold} ({per_epoch:.2g} {unit}/epoch)", linewidth=2)
        ax.set_title(TASK_NAMES.get(task, task))
        ax.set_xlabel("Unfrozen backbone layers")
        ax.set_ylabel(f"Cumulative training time ({unit})")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(frameon=False)
    if not tasks:
        axes[0].text(0.5, 0.5, "no HATL runs", ha="center", va="center", transform=axes[0].transAxes)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _fold_seed(run: RunLog, runs: list[RunLog]) -> str:
    """" fold2 seed7": the run's fold unless it is "main", and its seed when the runs have several."""
    fold = "" if run.run["fold"] == "main" else f" {run.run['fold']}"
    several = len({r.run.get("seed") for r in runs}) > 1
    return fold + (f" {run.run['seed']}" if several and run.run.get("seed") else "")


def plot_timeline(runs: list[RunLog], title: str, font_size: float):
    plt = _plt(font_size)
    hatl = [r for r in runs if r.run["strategy"] == "hatl"]
    tasks = _tasks(hatl)
    fig, axes = _panels(plt, max(1, len(tasks)), font_size, height=4.8)
    for ax, task in zip(axes, tasks):
        members = [r for m in MODEL_ORDER for r in hatl if r.run["task"] == task and r.run["model"] == m]
        n_layers = max([int(r.summary.get("n_backbone_layers") or 0) for r in members]
                       + [max(r.release_epochs(), default=0) for r in members] + [1])
        offsets = np.linspace(-0.2, 0.2, len(members)) if len(members) > 1 else [0.0]
        last = max([int(r.summary.get("epochs_run") or len(r.epochs) or 0) for r in members] + [1])
        ax.set_xlim(0, last + 1)  # the whole run, from the start of training
        for off, r in zip(offsets, members):
            model = r.run["model"]
            end = int(r.summary.get("epochs_run") or len(r.epochs) or 0)
            rel = r.release_epochs()
            fold = _fold_seed(r, hatl)
            label = f"{MODEL_NAMES.get(model, model)}{fold} ({len(rel)} released, {end} epochs)"
            for i, (layer, epoch) in enumerate(sorted(rel.items(), key=lambda kv: kv[1])):
                ax.plot([epoch, end], [layer + off, layer + off], color=MODEL_COLOURS[model], linewidth=4, alpha=0.35,
                        solid_capstyle="butt")
                ax.plot([epoch], [layer + off], marker=MODEL_MARKERS[model], color=MODEL_COLOURS[model], markersize=8,
                        linestyle="none", label=label if i == 0 else None)
            if not rel:
                ax.plot([], [], marker=MODEL_MARKERS[model], color=MODEL_COLOURS[model], linestyle="none", label=label)
            ax.axvline(end, color=MODEL_COLOURS[model], linestyle=":", linewidth=1.2)
        ax.set_yticks(range(1, n_layers + 1), [f"L{i}" for i in range(1, n_layers + 1)])
        ax.set_ylim(0.4, n_layers + 0.6)
        ax.set_xlabel("Epoch (marker: layer released; dotted: end of training)")
        ax.set_ylabel("Backbone layer (L1 = nearest the input)")
        ax.set_title(TASK_NAMES.get(task, task))
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(axis="x", alpha=0.3)
        ax.legend(frameon=False, loc="lower right")
    if not tasks:
        axes[0].text(0.5, 0.5, "no HATL runs", ha="center", va="center", transform=axes[0].transAxes)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _dev_metric(entry: dict[str, Any], name: str) -> float | None:
    for key in (f"dev_{name}", name):
        if entry.get(key) is not None:
            return float(entry[key])
    dev = entry.get("dev") or {}
    return float(dev[name]) if dev.get(name) is not None else None


def plot_curves(runs: list[RunLog], title: str, font_size: float):
    plt = _plt(font_size)
    fig, axes = plt.subplots(len(runs), 2, figsize=(11, 3.2 * len(runs) + 0.8), squeeze=False)
    for row, r in zip(axes, runs):
        metric = r.summary.get("metric_name") or (r.epochs[0].get("metric_name") if r.epochs else None) or "bleu4"
        epochs = [int(e["epoch"]) for e in r.epochs]
        colour = STRATEGY_COLOURS.get(r.run["strategy"], "#444444")
        dev = [_dev_metric(e, metric) for e in r.epochs]
        pts = [(x, y) for x, y in zip(epochs, dev) if y is not None]
        ax_m, ax_l = row
        handles = []
        if pts:
            handles += ax_m.plot(*zip(*pts), marker="o", markersize=3, color=colour, linewidth=2,
                                 label=f"dev {METRIC_LABELS.get(metric, metric)}")
        if metric != "bleu4" and any(_dev_metric(e, "bleu4") is not None for e in r.epochs):  # show BLEU too
            bleu = [(x, _dev_metric(e, "bleu4")) for x, e in zip(epochs, r.epochs) if _dev_metric(e, "bleu4") is not None]
            twin = ax_m.twinx()
            handles += twin.plot(*zip(*bleu), color="#555555", linestyle="--", linewidth=1.2, label="dev BLEU-4")
            twin.set_ylabel("dev BLEU-4")
            twin.spines["right"].set_visible(True)
        losses = {k: [e.get(k) for e in r.epochs] for k in ("loss_total", "loss_ce", "loss_ctc")}
        styles = {"loss_total": "-", "loss_ce": "--", "loss_ctc": ":"}
        for k, vals in losses.items():
            pts = [(x, y) for x, y in zip(epochs, vals) if y is not None]
            if pts and any(y for _, y in pts):
                ax_l.plot(*zip(*pts), linestyle=styles[k], color=colour, linewidth=1.8, label=k.replace("loss_", "train "))
        for ax in (ax_m, ax_l):
            for layer, epoch in sorted(r.release_epochs().items()):
                ax.axvline(epoch, color="#999999", linestyle="--", linewidth=0.9)
                if ax is ax_m:  # name the released layer just inside the top of the panel
                    ax.annotate(f" L{layer}", (epoch, 0.98), xycoords=("data", "axes fraction"), fontsize=font_size - 3,
                                ha="left", va="top", color="#555555")
            ax.set_xlabel("Epoch")
            ax.grid(alpha=0.3)
            ax.xaxis.get_major_locator().set_params(integer=True)
        ax_m.set_ylabel(f"dev {METRIC_LABELS.get(metric, metric)}")
        ax_l.set_ylabel("training loss (mean per batch)")
        ax_m.set_title(r.label, loc="left", fontsize=font_size, pad=8)
        if handles:
            ax_m.legend(handles=handles, frameon=False, loc="center right")
        ax_l.legend(frameon=False, loc="best", framealpha=0.8)
    fig.suptitle(title + " (dashed verticals: layer releases)")
    fig.tight_layout()
    return fig


def draw(kind: str, runs: list[RunLog], title: str, font_size: float):
    if kind == "training-time":
        return plot_training_time(runs, title, font_size)
    if kind == "time-vs-layers":
        return plot_time_vs_layers(runs, title, font_size)
    if kind == "timeline":
        return plot_timeline(runs, title, font_size)
    if kind == "curves":
        return plot_curves(runs, title, font_size)
    raise ValueError(f"unknown figure kind {kind!r}")


def figure_title(figure: str, dataset: str, data_kind: str) -> str:
    shown = f"{dataset} ({data_kind} data)"
    if figure == "curves":
        return f"Learning curves, {shown}"
    n = int(figure)
    what = {"training-time": "Training time per fine-tuning approach",
            "time-vs-layers": "HATL: training time vs unfrozen layers",
            "timeline": "HATL: hierarchical unfreezing timeline"}[KINDS[n]]
    return f"Figure {n}. {what}, {shown}"


def save_figure(fig: Any, out: Path, dpi: int) -> list[Path]:
    """PNG at ``out`` and PDF beside it, each written atomically."""
    paths = [out, out.with_suffix(".pdf")]
    for path in paths:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix.lstrip("."))
    return paths


# ------------------------------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="pipeline config (evaluation.figures)")
    parser.add_argument("--figure", required=True, choices=[str(n) for n in KINDS] + ["curves"])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--runs", nargs="*", type=Path, default=None, help="run folders (default: all under --runs-root/<dataset>)")
    parser.add_argument("--runs-root", type=Path, default=Path("results/runs"))
    parser.add_argument("--out", required=True, type=Path, help="figureN.png (a .pdf is written beside it)")


def run(args: argparse.Namespace) -> int:
    from hatl.config import is_demo

    config = load_config(args.config)
    eff = effective_config(config, args.dataset)
    fig_cfg = eff.get("evaluation", {}).get("figures", {})
    dirs = list(args.runs) if args.runs is not None else find_runs(args.runs_root, args.dataset)
    runs = [load_run_log(d) for d in dirs]
    for r in runs:
        if r.run["dataset"] != args.dataset:
            raise InputError(r.path, "dataset", f"run belongs to dataset '{r.run['dataset']}', not '{args.dataset}'")
    kind = "curves" if args.figure == "curves" else KINDS[int(args.figure)]
    if not runs:
        raise InputError(args.runs_root / args.dataset, None, "no finished run (summary.json) to plot")
    data_kind = "demo" if is_demo(config, args.dataset) else "real"
    fig = draw(kind, runs, figure_title(args.figure, args.dataset, data_kind), fig_cfg.get("font_size", 11))
    paths = save_figure(fig, args.out, fig_cfg.get("dpi", 150))
    write_json(args.out.with_suffix(".json"), {
        "figure": args.figure, "kind": kind, "dataset": args.dataset, "data": data_kind,
        "paper_dataset": DATASET_NAMES[TABLE_DATASET[FIGURE_TABLE[int(args.figure)]]] if args.figure != "curves" else None,
        "runs": [str(r.path) for r in runs], "files": [str(p) for p in paths], "provenance": provenance(eff),
    })
    log.info("wrote %s (+ .pdf) from %d run(s)", args.out, len(runs))
    return 0
