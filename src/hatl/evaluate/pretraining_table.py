"""The pretraining table (``hatl table-pretraining``): one downstream run per backbone source.

Rows: each backbone source (``none`` = random initialisation, ``demo`` = pretrain-demo's in-domain windows,
``isl_kinect`` = supervised isolated signs, ``masked`` = masked-keypoint reconstruction, ``two_stage`` = the
supervised isl_kinect checkpoint then the demo windows, ``pyskl`` = a configured checkpoint) trained on the same dataset x model x task x strategy x fold, then the constant-output floor of that
run's references. Columns: dev/test BLEU-4 and gloss WER (from each run's scores.json), distinct test outputs
against distinct test references, the backbone's provenance label as the run recorded it, and what the source's own pretraining measured (LOSO accuracy, held-out
reconstruction error against copy-last-frame, final training accuracy) where its report is given.

Output: CSV, Markdown and a bar figure (test BLEU-4 and test WER per source), plus a JSON sidecar with the
runs, metric signatures and provenance.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from hatl.config import load_config
from hatl.errors import InputError
from hatl.evaluate.collapse import constant_floor
from hatl.evaluate.score import read_decoded
from hatl.evaluate.tables import backbone_of, load_scored_run
from hatl.io import atomic_path, read_json, write_json
from hatl.metrics import BleuSettings, distinct_outputs, wer
from hatl.provenance import provenance

log = logging.getLogger(__name__)

SOURCES = ("none", "demo", "isl_kinect", "masked", "two_stage", "pyskl")
SOURCE_NAMES = {
    "none": "none (random initialisation)",
    "demo": "in-domain demo windows (pretrain-demo)",
    "isl_kinect": "isl_kinect supervised (pretrain-supervised)",
    "masked": "masked keypoints (pretrain-masked)",
    "two_stage": "isl_kinect supervised, then in-domain demo windows (pretrain-demo --init)",
    "pyskl": "pyskl checkpoint (backbone.checkpoint)",
}
FLOOR = "constant output (floor)"
COLUMNS = ("source", "name", "dataset", "model", "task", "strategy", "fold", "dev_bleu4", "test_bleu4", "dev_wer",
           "test_wer", "test_distinct", "test_distinct_refs", "backbone", "pretraining")


def pairs(values: list[str], what: str) -> dict[str, Path]:
    """``source=path`` arguments as a dict; an unknown source or a repeated one is refused."""
    out: dict[str, Path] = {}
    for value in values:
        source, sep, path = value.partition("=")
        if not sep or not path:
            raise InputError(Path(value), what, "expected SOURCE=PATH")
        if source not in SOURCES:
            raise InputError(Path(path), what, f"unknown backbone source {source!r}; known: {', '.join(SOURCES)}")
        if source in out:
            raise InputError(Path(path), what, f"source {source!r} given twice")
        out[source] = Path(path)
    return out


def pretraining_summary(report: Path) -> str:
    """One line on what a source's pretraining itself measured: its report JSON, or the summary a pyskl-format
    checkpoint written by hatl carries under ``meta.hatl`` (a foreign checkpoint has none: empty)."""
    if report.suffix == ".json":
        data = read_json(report)
    else:
        import torch

        blob = torch.load(report, map_location="cpu", weights_only=False)
        data = (blob.get("meta") or {}).get("hatl") or {} if isinstance(blob, dict) else {}
    loso = data.get("loso")
    if loso:
        mean = loso[-1]
        return (f"LOSO accuracy {mean['accuracy']:.3f} over {len(loso) - 1} signers (chance {mean['chance']:.3f}), "
                f"{data.get('samples')} samples")
    held = data.get("held_out")
    if held and held.get("windows"):
        interpolation = (f", linear interpolation {held['interpolation_mse']:.4f}"
                         if held.get("interpolation_mse") is not None else "")
        return (f"held-out masked MSE {held['model_mse']:.4f} vs copy-last-frame {held['copy_last_frame_mse']:.4f}"
                f"{interpolation}, {data.get('train_windows')} windows")
    if "final_train_accuracy" in data:
        return (f"all-signer model, last-epoch train accuracy {data['final_train_accuracy']:.3f} "
                f"({len(data.get('classes', []))} signs, {data.get('samples')} samples)")
    history = data.get("history")
    if history:
        last = history[-1]
        return f"last-epoch train accuracy {last['accuracy']:.3f} ({len(data.get('classes', []))} classes)"
    if data.get("source_format") == "random initialisation":
        return "none"
    return ""


def split_metric(scores: dict[str, Any], split: str, metric: str) -> float | None:
    return (scores["splits"].get(split) or {}).get(metric)


def floor_row(scores_path: Path, settings: BleuSettings) -> dict[str, Any]:
    """Constant output of one run's references: the dev sentence with the best dev BLEU-4, and the dev gloss
    sequence with the lowest dev WER, each emitted for every input of dev and test. A recognition run (sign2gloss)
    has no text references: its floor is the gloss one only."""
    run_dir = scores_path.parent
    dev, test = read_decoded(run_dir / "decoded.dev.jsonl"), read_decoded(run_dir / "decoded.test.jsonl")
    row: dict[str, Any] = {"source": "floor", "name": FLOOR, "test_distinct": 1, "pretraining": ""}
    if dev and all(isinstance(r.get("ref"), str) for r in dev + test):
        floor = constant_floor([r["ref"] for r in dev], {"dev": [r["ref"] for r in dev],
                                                         "test": [r["ref"] for r in test]}, settings)
        row.update(dev_bleu4=floor.scores["dev"]["bleu4"], test_bleu4=floor.scores.get("test", {}).get("bleu4"),
                   pretraining=f"text: {floor.sentence!r}")
    if dev and all(isinstance(r.get("gloss_ref"), str) for r in dev + test):
        dev_refs = [r["gloss_ref"] for r in dev]
        best = min(sorted(set(dev_refs)), key=lambda g: wer([g] * len(dev_refs), dev_refs)["wer"] or 0.0)
        row["dev_wer"] = wer([best] * len(dev_refs), dev_refs)["wer"]
        row["test_wer"] = wer([best] * len(test), [r["gloss_ref"] for r in test])["wer"] if test else None
        row["pretraining"] = "; ".join(x for x in (row["pretraining"], f"glosses: {best!r}") if x)
    return row


def outputs_of(rows: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(hypotheses, references) a run is judged on: the text, or the glosses of a recognition run (no text)."""
    if rows and all(r.get("ref") is None for r in rows):
        return [r.get("gloss_hyp") or "" for r in rows], [r.get("gloss_ref") or "" for r in rows]
    return [r["hyp"] for r in rows], [r["ref"] for r in rows]


def table_rows(scores: dict[str, Path], reports: dict[str, Path], settings: BleuSettings) -> list[dict[str, Any]]:
    rows = []
    identity = None
    for source in SOURCES:
        if source not in scores:
            continue
        run = load_scored_run(scores[source])
        key = {k: run.run[k] for k in ("dataset", "model", "task", "strategy", "fold")}
        if identity is None:
            identity = key
        elif key != identity:
            raise InputError(scores[source], "run", f"source {source} was trained as {key}, the others as {identity}: "
                             "the rows must differ in the backbone only")
        test = read_decoded(run.decoded_path("test"))
        distinct = distinct_outputs(*outputs_of(test))
        rows.append({
            "source": source, "name": SOURCE_NAMES[source], **key,
            "dev_bleu4": split_metric(run.scores, "dev", "bleu4"), "test_bleu4": split_metric(run.scores, "test", "bleu4"),
            "dev_wer": split_metric(run.scores, "dev", "wer"), "test_wer": split_metric(run.scores, "test", "wer"),
            "test_distinct": distinct.outputs, "test_distinct_refs": distinct.references,
            "backbone": backbone_of([run])[0],  # what the run's summary.json says its weights saw
            "pretraining": pretraining_summary(reports[source]) if source in reports else "",
        })
    if not rows:
        raise InputError(Path("."), "--scores", "no scored runs given")
    rows.append({**identity, **floor_row(scores[rows[0]["source"]], settings)})
    return rows


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    first = rows[0]
    lines = [
        "# Backbone pretraining sources, measured downstream",
        "",
        f"One run per source: dataset {first['dataset']}, {first['model']}, {first['task']}, strategy "
        f"{first['strategy']}, fold {first['fold']} (same config and seed; only the backbone's starting weights differ).",
        "",
        "| backbone source | dev BLEU-4 | test BLEU-4 | dev WER | test WER | distinct test outputs | backbone label "
        "(the run's record) | pretraining measured |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        distinct = _fmt(r.get("test_distinct"))
        if r.get("test_distinct_refs") is not None:
            distinct += f" / {r['test_distinct_refs']}"
        lines.append(f"| {r['name']} | {_fmt(r.get('dev_bleu4'))} | {_fmt(r.get('test_bleu4'))} | {_fmt(r.get('dev_wer'))} "
                     f"| {_fmt(r.get('test_wer'))} | {distinct} | {r.get('backbone') or ''} | {r.get('pretraining') or ''} |")
    signature = meta["bleu_signature"]
    signature = signature.get("bleu4", signature) if isinstance(signature, dict) else signature
    bleu = f"BLEU-4: {signature}." if signature else "BLEU-4: none (a recognition task: glosses, no text)."
    lines += ["", f"{bleu} WER: gloss word error rate x100 (lower is better).",
              f"Code version: {meta['code_version']}.", ""]
    return "\n".join(lines)


def draw(rows: list[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["source"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, metric, label in ((axes[0], "test_bleu4", "test BLEU-4 (higher is better)"),
                              (axes[1], "test_wer", "test gloss WER (lower is better)")):
        values = [r.get(metric) if r.get(metric) is not None else 0.0 for r in rows]
        colours = ["0.6" if n == "floor" else "C0" for n in names]
        ax.bar(range(len(rows)), values, color=colours)
        ax.set_xticks(range(len(rows)), names, rotation=30, ha="right")
        ax.set_title(label)
    fig.suptitle(f"Backbone source -> {rows[0]['dataset']} {rows[0]['task']} ({rows[0]['model']}, {rows[0]['strategy']})")
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=120, format=out.suffix.lstrip(".") or "png")
    plt.close(fig)


# -------------------------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="pipeline config (evaluation.bleu settings)")
    parser.add_argument("--scores", nargs="+", required=True, help="SOURCE=scores.json of each source's downstream run")
    parser.add_argument("--reports", nargs="*", default=[], help="SOURCE=report JSON of each source's pretraining (optional)")
    parser.add_argument("--out", required=True, type=Path, help="results/table_pretraining.csv (.md and .json beside it)")
    parser.add_argument("--figure", required=True, type=Path, help="bar figure, e.g. results/figures/pretraining.png")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    settings = BleuSettings.from_config(config.get("evaluation", {}))
    scores, reports = pairs(args.scores, "--scores"), pairs(args.reports, "--reports")
    rows = table_rows(scores, reports, settings)
    first = load_scored_run(next(iter(scores.values())))
    prov = provenance(config)
    meta = {"bleu_signature": first.scores.get("bleu_signature"), "wer_definition": first.scores.get("wer_definition"),
            "code_version": prov["code_version"],
            "runs": {s: str(p) for s, p in scores.items()}, "reports": {s: str(p) for s, p in reports.items()}}
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    with atomic_path(args.out) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.4f")
    md = args.out.with_suffix(".md")
    with atomic_path(md) as tmp:
        Path(tmp).write_text(markdown(rows, meta), encoding="utf-8")
    write_json(args.out.with_suffix(".json"), {"rows": rows, **meta, "provenance": prov})
    draw(rows, args.figure)
    for r in rows:
        log.info("%-12s dev/test BLEU-4 %s/%s, dev/test WER %s/%s", r["source"], _fmt(r.get("dev_bleu4")),
                 _fmt(r.get("test_bleu4")), _fmt(r.get("dev_wer")), _fmt(r.get("test_wer")))
    log.info("wrote %s, %s, %s", args.out, md, args.figure)
    return 0
