"""Dataset statistics (the paper's Table 3) and the keypoint quality report (``hatl stats``).

Table 3 is measured from each dataset's manifest over all its splits (the paper describes whole
datasets): hours = sum of n_frames / fps, signers = distinct signer ids, videos = samples, vocabulary
sizes = distinct normalised gloss / text tokens (the same normalisation as the vocabulary stage),
average length = mean tokens per sample, CV = population standard deviation / mean of those lengths.
Samples without a gloss (or text) are left out of that column's statistics and counted in the log.
Each measured row is followed by the paper's reported row for the same corpus (``source`` column), and
``data`` says whether the measured row comes from the embedded demo stand-in or the real release.

The keypoint quality report reads the normalised Parquet files (their masks are the detector's, unchanged):
per dataset, split and landmark group, the share of frames in which the group was detected, and the
number of samples in which it was never detected. The pseudo-group ``person`` is "any group detected";
its never-detected count is the number of samples with no person detected at all.
"""

from __future__ import annotations

import argparse
import logging
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from hatl.config import dataset_config, load_config
from hatl.datasets.manifest import read_manifest
from hatl.errors import InputError
from hatl.io import atomic_path, write_json, write_text
from hatl.keypoint_store import read_meta
from hatl.landmarks import layout_from_dict
from hatl.provenance import provenance
from hatl.text import normalise_gloss
from hatl.vocab import TextNormalisation

log = logging.getLogger(__name__)

TABLE3_COLUMNS = [
    "dataset", "source", "data", "language", "domain", "hours", "signers", "videos",
    "gloss_vocab", "text_vocab", "gloss_avg_len", "text_avg_len", "gloss_cv", "text_cv",
]
QUALITY_COLUMNS = [
    "dataset", "data", "split", "group", "samples", "frames", "detected_frames", "detection_rate", "samples_never_detected",
]
PERSON = "person"
SPLIT_ORDER = ("train", "trainval", "dev", "test")


def _split_key(split: str) -> tuple[int, str]:
    return (SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER), split)

# HATL paper, Table 3 (../shared/papers/hatl.txt): the corpus each dataset adapter reads.
REPORTED: dict[str, dict[str, Any]] = {
    "phoenix14t": {"language": "German", "domain": "Weather", "hours": 10.53, "signers": 9, "videos": 8257,
                   "gloss_vocab": 1115, "text_vocab": 3000, "gloss_avg_len": 7.66, "text_avg_len": 13.77,
                   "gloss_cv": 0.49, "text_cv": 1.06},
    "isharah": {"language": "Arabic", "domain": "Multiple", "hours": 10.14, "signers": 15, "videos": 7500,
                "gloss_vocab": 388, "text_vocab": 758, "gloss_avg_len": 4.19, "text_avg_len": 3.88,
                "gloss_cv": 0.06, "text_cv": 0.04},
    "medasl": {"language": "American", "domain": "Medical", "hours": 5.56, "signers": 1, "videos": 2000,
               "gloss_vocab": 1142, "text_vocab": 1682, "gloss_avg_len": 5.35, "text_avg_len": 8.60,
               "gloss_cv": 0.12, "text_cv": 0.0},
}


# --------------------------------------------------------------------------------------------- Table 3


@dataclass(frozen=True)
class LengthStats:
    vocab: int
    avg_len: float
    cv: float
    samples: int  # samples with a non-empty sequence (the others are left out)


def length_stats(sequences: Sequence[str]) -> LengthStats:
    """Vocabulary size, mean length and coefficient of variation (population std / mean) of token sequences."""
    toks = [s.split() for s in sequences]
    toks = [t for t in toks if t]
    if not toks:
        return LengthStats(0, float("nan"), float("nan"), 0)
    lengths = np.array([len(t) for t in toks], dtype=np.float64)
    mean = float(lengths.mean())
    return LengthStats(len({w for t in toks for w in t}), mean, float(lengths.std() / mean), len(toks))


def text_statistics(manifest: pd.DataFrame, norm: TextNormalisation) -> dict[str, LengthStats]:
    """Gloss and text statistics over every sample, with the vocabulary stage's normalisation."""
    return {
        "gloss": length_stats([normalise_gloss(g) for g in manifest["gloss"]]),
        "text": length_stats([norm.apply(t) for t in manifest["text"]]),
    }


def hours(manifest: pd.DataFrame, path: str | Path | None = None) -> float:
    fps = manifest["fps"].astype(float)
    bad = manifest.loc[~(fps > 0), "sample_id"]
    if len(bad):
        raise InputError(path, str(bad.iloc[0]), f"fps must be positive to compute durations ({len(bad)} such)")
    return float((manifest["n_frames"].astype(float) / fps).sum() / 3600.0)


def reported_key(ds_cfg: dict[str, Any]) -> str | None:
    """Which paper row a dataset corresponds to: its adapter, or a demo's profile; None for generic data."""
    key = ds_cfg.get("demo_profile") if ds_cfg["adapter"] == "demo" else ds_cfg["adapter"]
    return key if key in REPORTED else None


def measured_row(name: str, manifest: pd.DataFrame, ds_cfg: dict[str, Any], path: str | Path | None = None) -> dict[str, Any]:
    st = text_statistics(manifest, TextNormalisation.from_dataset(ds_cfg))
    for kind, s in st.items():
        if s.samples < len(manifest):
            log.info("%s: %d of %d samples have no %s; left out of the %s statistics",
                     name, len(manifest) - s.samples, len(manifest), kind, kind)
    signers = {s for s in manifest["signer"] if s}
    return {
        "dataset": name, "source": "measured", "data": "demo" if ds_cfg["adapter"] == "demo" else "real",
        "language": ds_cfg.get("language", ""), "domain": ds_cfg.get("domain", ""),
        "hours": hours(manifest, path), "signers": len(signers), "videos": len(manifest),
        "gloss_vocab": st["gloss"].vocab, "text_vocab": st["text"].vocab,
        "gloss_avg_len": st["gloss"].avg_len, "text_avg_len": st["text"].avg_len,
        "gloss_cv": st["gloss"].cv, "text_cv": st["text"].cv,
    }


def reported_row(name: str, key: str) -> dict[str, Any]:
    return {"dataset": name, "source": "reported", "data": "paper", **REPORTED[key]}


def table3(names: Sequence[str], manifests: Sequence[pd.DataFrame], ds_cfgs: Sequence[dict[str, Any]],
           paths: Sequence[str | Path | None] | None = None) -> pd.DataFrame:
    rows = []
    paths = paths or [None] * len(names)
    for name, manifest, ds_cfg, path in zip(names, manifests, ds_cfgs, paths):
        rows.append(measured_row(name, manifest, ds_cfg, path))
        key = reported_key(ds_cfg)
        if key:
            rows.append(reported_row(name, key))
    return pd.DataFrame(rows, columns=TABLE3_COLUMNS)


def _fmt(value: Any, column: str) -> str:
    if isinstance(value, float):
        if np.isnan(value):
            return "-"
        if column in ("signers", "videos", "gloss_vocab", "text_vocab"):
            return f"{int(round(value)):,}"
        if column == "hours" and 0 < value < 0.1:
            return f"{value:.4f}"  # demo data lasts minutes: keep it visible
        return f"{value:.2f}"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    return str(value)


def table3_markdown(table: pd.DataFrame, code_version: str) -> str:
    header = ["Dataset", "Source", "Data", "Sign language", "Domain", "Hours", "Signers", "Videos",
              "Vocab gloss", "Vocab text", "Avg len gloss", "Avg len text", "CV gloss", "CV text"]
    lines = [
        "# Table 3: dataset characteristics",
        "",
        "`measured` rows are computed from this pipeline's manifests (all splits); `reported` rows are the HATL paper's Table 3.",
        "Lengths are tokens per sample after the vocabulary stage's normalisation; CV = population std / mean.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * 5 + ["---:"] * 9) + "|",
    ]
    for row in table.to_dict("records"):
        lines.append("| " + " | ".join(_fmt(row[c], c) for c in TABLE3_COLUMNS) + " |")
    lines += ["", f"Generated by `hatl stats`, code version {code_version}.", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- keypoint quality


def _split_quality(masks: Sequence[np.ndarray], groups: Sequence[str]) -> list[dict[str, Any]]:
    """Rows for one split: per group (and 'person'), frames detected and samples never detected."""
    frames = sum(m.shape[0] for m in masks)
    rows = []
    for gi, group in enumerate([*groups, PERSON]):
        if group == PERSON:
            per_sample = [m.any(axis=1) if m.size else np.zeros(m.shape[0], bool) for m in masks]
        else:
            per_sample = [m[:, gi] for m in masks]
        detected = int(sum(int(p.sum()) for p in per_sample))
        rows.append({
            "group": group, "samples": len(masks), "frames": int(frames), "detected_frames": detected,
            "detection_rate": detected / frames if frames else float("nan"),
            "samples_never_detected": int(sum(1 for p in per_sample if not p.any())),
        })
    return rows


def quality_rows(name: str, data: str, normalised_dir: str | Path) -> list[dict[str, Any]]:
    """Detection rates per split and group from a normalised folder (plus an 'all' split)."""
    folder = Path(normalised_dir)
    files = sorted(folder.glob("*.parquet"))
    if not folder.is_dir() or not files:
        raise InputError(folder, None, "no normalised split files (*.parquet) here; run `hatl normalise` first")
    groups: list[str] | None = None
    by_split: dict[str, list[np.ndarray]] = {}
    for path in files:
        meta = read_meta(path)
        file_groups = list(layout_from_dict(meta["layout"]).groups)
        if groups is None:
            groups = file_groups
        elif file_groups != groups:
            raise InputError(path, "layout", f"landmark groups {file_groups} differ from {files[0].name}'s {groups}")
        table = pq.read_table(path, columns=["sample_id", "split", "n_frames", "mask"])
        g = len(file_groups)
        for sid, split, t, mask in zip(*(table.column(c).to_pylist() for c in ("sample_id", "split", "n_frames", "mask"))):
            arr = np.asarray(mask, dtype=bool)
            if arr.size != t * g:
                raise InputError(path, sid, f"mask has {arr.size} values, expected n_frames*groups = {t}*{g}")
            by_split.setdefault(split, []).append(arr.reshape(t, g))
    assert groups is not None
    rows = []
    for split in [*sorted(by_split, key=_split_key), "all"]:
        masks = [m for ms in by_split.values() for m in ms] if split == "all" else by_split[split]
        for r in _split_quality(masks, groups):
            rows.append({"dataset": name, "data": data, "split": split, **r})
    return rows


QUALITY_TITLE = "Keypoint detection rate per landmark group (MediaPipe Holistic)"


def figure_title(text: str, width_in: float) -> str:
    """``text`` wrapped to a figure ``width_in`` inches wide: one panel (a single dataset, e.g. real MedASL)
    is narrower than the title, which tight_layout does not shrink, so it was cut off at both edges."""
    chars = max(20, int(width_in * 8.5))  # ~8.5 characters per inch at matplotlib's default title size
    return "\n".join(textwrap.wrap(text, chars)) or text


def quality_figure(quality: pd.DataFrame, png: str | Path, pdf: str | Path) -> None:
    """Grouped bars (one bar per split within each landmark group), one panel per dataset; PNG and PDF."""
    import matplotlib.pyplot as plt

    fig = draw_quality_figure(quality)
    for out in (png, pdf):
        with atomic_path(out) as tmp:
            fig.savefig(tmp, dpi=150)
    plt.close(fig)


def draw_quality_figure(quality: pd.DataFrame) -> Any:
    """The quality figure (a matplotlib Figure, Agg backend), not yet saved."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(quality["dataset"]))
    n = max(len(datasets), 1)
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 4.0), squeeze=False, sharey=True)
    for ax, ds in zip(axes[0], datasets):
        sub = quality[(quality["dataset"] == ds) & (quality["split"] != "all")]
        groups = list(dict.fromkeys(sub["group"]))
        splits = list(dict.fromkeys(sub["split"]))
        width = 0.8 / max(len(splits), 1)
        x = np.arange(len(groups))
        for i, split in enumerate(splits):
            rates = [float(sub[(sub["group"] == g) & (sub["split"] == split)]["detection_rate"].iloc[0]) for g in groups]
            ax.bar(x + (i - (len(splits) - 1) / 2) * width, rates, width, label=split)
        person = sub[sub["group"] == PERSON]
        no_person = int(person["samples_never_detected"].sum())
        data = sub["data"].iloc[0] if len(sub) else ""
        ax.set_title(f"{ds} ({data}); samples with no person: {no_person}", fontsize=10)
        ax.set_xticks(x)
        labels = ["person\n(any group)" if g == PERSON else g.replace("_", " ") for g in groups]
        ax.set_xticklabels(labels, rotation=30, ha="right")
        ax.set_ylim(0, 1.2)  # headroom so the legend never covers a bar at 100%
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.grid(axis="y", alpha=0.3)
        ax.legend(loc="upper center", ncol=max(len(splits), 1), fontsize=8, frameon=False)
    if not datasets:  # every dataset is text-only: say so rather than draw empty axes
        axes[0][0].text(0.5, 0.5, "no keypoint data (text-only datasets)", ha="center", va="center")
        axes[0][0].set_axis_off()
    axes[0][0].set_ylabel("frames with the group detected")
    fig.suptitle(figure_title(QUALITY_TITLE, fig.get_figwidth()))
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------- CLI


def _dir_dataset(folder: Path) -> str:
    """The dataset a normalised folder belongs to: its files' metadata, else the parent folder's name."""
    for path in sorted(folder.glob("*.parquet")):
        ds = read_meta(path).get("dataset")
        if ds:
            return str(ds)
    return folder.parent.name


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="pipeline config YAML (all datasets)")
    parser.add_argument("--datasets", required=True, nargs="+", help="dataset names, in table order")
    parser.add_argument("--manifests", required=True, nargs="+", help="one manifest per dataset, same order")
    parser.add_argument(
        "--normalised-dirs", nargs="*", default=[],
        help="normalised folders (results/{ds}/normalised); datasets without keypoints (gloss2text only) may have none",
    )
    parser.add_argument("--out-table", required=True, help="results/table3.csv (table3.md and table3.json are written beside it)")
    parser.add_argument("--out-quality", required=True, help="results/quality/keypoint_quality.csv (+ .json beside it)")
    parser.add_argument("--out-figure", required=True, help="results/figures/keypoint_quality.png (+ .pdf beside it)")


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    if len(args.manifests) != len(args.datasets):
        raise InputError(None, "--manifests", f"{len(args.manifests)} manifests for {len(args.datasets)} datasets")
    ds_cfgs = [dataset_config(cfg, name) for name in args.datasets]
    manifests = [read_manifest(p) for p in args.manifests]
    table = table3(args.datasets, manifests, ds_cfgs, args.manifests)
    prov = provenance(cfg)

    dirs: dict[str, Path] = {}
    for d in map(Path, args.normalised_dirs):
        ds = _dir_dataset(d) if d.is_dir() else d.parent.name
        if ds not in args.datasets:
            raise InputError(d, None, f"normalised folder of dataset {ds!r}, which is not in --datasets")
        if ds in dirs:
            raise InputError(d, None, f"second normalised folder for dataset {ds!r} (first: {dirs[ds]})")
        dirs[ds] = d
    quality: list[dict[str, Any]] = []
    for name, ds_cfg in zip(args.datasets, ds_cfgs):
        if name not in dirs:
            log.info("%s: no normalised keypoints given (text-only tasks?); no quality rows", name)
            continue
        quality += quality_rows(name, "demo" if ds_cfg["adapter"] == "demo" else "real", dirs[name])
    qdf = pd.DataFrame(quality, columns=QUALITY_COLUMNS)

    out_table, out_quality, out_figure = Path(args.out_table), Path(args.out_quality), Path(args.out_figure)
    with atomic_path(out_table) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    write_text(out_table.with_suffix(".md"), table3_markdown(table, prov["code_version"]))
    write_json(out_table.with_suffix(".json"), {"rows": table.to_dict("records"), "provenance": prov})
    with atomic_path(out_quality) as tmp:
        qdf.to_csv(tmp, index=False, float_format="%.4f")
    write_json(out_quality.with_suffix(".json"), {"rows": qdf.to_dict("records"), "provenance": prov})
    quality_figure(qdf, out_figure, out_figure.with_suffix(".pdf"))

    for row in table[table["source"] == "measured"].to_dict("records"):
        log.info("%s (%s): %.2f h, %d signers, %d videos, vocab gloss/text %d/%d, avg len %.2f/%.2f, CV %.2f/%.2f",
                 row["dataset"], row["data"], row["hours"], row["signers"], row["videos"], row["gloss_vocab"],
                 row["text_vocab"], row["gloss_avg_len"], row["text_avg_len"], row["gloss_cv"], row["text_cv"])
    for row in qdf[(qdf["split"] == "all")].to_dict("records"):
        log.info("%s %s: detected in %.1f%% of %d frames; never in %d of %d samples", row["dataset"], row["group"],
                 100 * row["detection_rate"], row["frames"], row["samples_never_detected"], row["samples"])
    log.info("wrote %s, %s, %s", out_table, out_quality, out_figure)
    return 0
