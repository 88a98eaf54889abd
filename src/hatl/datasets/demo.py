"""Demo adapter: manifest rows for an embedded synthetic demo dataset written by ``hatl demo-data``.

The demo folder is ``results/<dataset>/demo`` under the current directory (where Snakemake runs), or
``datasets.<name>.root`` when that is set. Keypoint samples become ``demo`` rows whose source is the
absolute path of ``keypoints.parquet``; rendered clips become ``video`` rows whose source is the absolute
path of the ``.mp4``. A cross-validated dataset (``cross_validation`` set, the MedASL stand-in) gets its
trainval/test split and folds from the same seeded assignment the generator used, so the manifest stays
the authority on splits.

Fatal: a missing demo folder or annotation file, a wrong header, a malformed row, a duplicate id.
Counted skips: a clip file that is missing, a keypoint sample absent from ``keypoints.parquet``.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from hatl.datasets import base
from hatl.errors import InputError

ANNOTATIONS = "annotations.tsv"
KEYPOINTS = "keypoints.parquet"
COLUMNS: tuple[str, ...] = ("id", "split", "fold", "signer", "gloss", "text", "kind", "source", "fps", "n_frames")
KIND_TO_SOURCE_KIND = {"demo": "demo", "video": "video"}


def demo_dir(dataset: str, ds_cfg: dict[str, Any]) -> Path:
    root = ds_cfg.get("root")
    path = Path(root).expanduser() if root else Path("results") / dataset / "demo"
    return path.absolute()


def read_annotations(path: Path) -> list[dict[str, Any]]:
    """Parse ``annotations.tsv``; every problem names the file and the line."""
    if not path.is_file():
        raise InputError(path, None, "demo annotation file does not exist (run `hatl demo-data` first)")
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader, None)
        if header is None or tuple(header) != COLUMNS:
            raise InputError(path, "line 1",
                             f"header must be the tab-separated columns {list(COLUMNS)}, got {header!r}")
        rows = []
        seen: dict[str, int] = {}
        for number, fields in enumerate(reader, start=2):
            record = f"line {number}"
            if not fields:
                continue
            if len(fields) != len(COLUMNS):
                raise InputError(path, record, f"expected {len(COLUMNS)} tab-separated fields, got {len(fields)}")
            row = dict(zip(COLUMNS, fields))
            sid = row["id"].strip()
            if not sid:
                raise InputError(path, record, "empty id")
            if sid in seen:
                raise InputError(path, f"{record} ({sid})", f"duplicate id (first on line {seen[sid]})")
            seen[sid] = number
            if row["kind"] not in KIND_TO_SOURCE_KIND:
                raise InputError(path, f"{record} ({sid})", f"kind must be demo or video, got {row['kind']!r}")
            try:
                fold, fps, n_frames = int(row["fold"]), float(row["fps"]), int(row["n_frames"])
            except ValueError as err:
                raise InputError(path, f"{record} ({sid})", f"fold/fps/n_frames are not numbers: {err}") from err
            if not math.isfinite(fps) or fps <= 0 or n_frames <= 0:
                raise InputError(path, f"{record} ({sid})", f"fps {fps} and n_frames {n_frames} must be positive")
            rows.append({**row, "id": sid, "fold": fold, "fps": fps, "n_frames": n_frames, "record": record})
    return rows


def _keypoint_ids(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    return set(pq.read_table(path, columns=["sample_id"]).column("sample_id").to_pylist())


def build_rows(dataset: str, ds_cfg: dict[str, Any], config: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    folder = demo_dir(dataset, ds_cfg)
    if not folder.is_dir():
        raise InputError(folder, f"dataset {dataset}", "demo folder does not exist (run `hatl demo-data` first)")
    ann_path = folder / ANNOTATIONS
    parsed = read_annotations(ann_path)
    keypoints = folder / KEYPOINTS
    stored = _keypoint_ids(keypoints)
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for item in parsed:
        record = f"{ANNOTATIONS} {item['record']} ({item['id']})"
        if item["kind"] == "video":
            source = (folder / item["source"]).absolute()
            if not source.is_file():
                skipped.append(base.skip(record, "missing video", str(source)))
                continue
        else:
            source = keypoints.absolute()
            if item["id"] not in stored:
                skipped.append(base.skip(record, "not in keypoint file", str(source)))
                continue
        rows.append(base.make_row(item["id"], item["split"], item["signer"], item["gloss"], item["text"],
                                  str(source), KIND_TO_SOURCE_KIND[item["kind"]], item["fps"], item["n_frames"],
                                  item["fold"]))
    if ds_cfg.get("cross_validation"):
        # over every annotated keypoint sample, present or not, so a skip never moves another sample's split
        pool = [item["id"] for item in parsed if item["kind"] == "demo"]
        _apply_cross_validation(rows, pool, dataset, ds_cfg, config)
    else:
        bad = [r for r in rows if r["split"] not in base.PREDEFINED_SPLITS]
        if bad:
            raise InputError(ann_path, bad[0]["sample_id"], f"split {bad[0]['split']!r} is not train/dev/test; the "
                             "demo was generated for cross-validation, regenerate it with this config")
    return rows, skipped


def _apply_cross_validation(rows: list[dict[str, Any]], pool: list[str], dataset: str, ds_cfg: dict[str, Any],
                            config: dict[str, Any]) -> None:
    """The generator's assignment, recomputed from the config: keypoint samples by the adapters' seeded
    split, clips (training data) dealt into the trainval folds."""
    folds, test_fraction = base.cv_settings(dataset, ds_cfg)
    assignment = base.assign_cross_validation(pool, folds, test_fraction, int(config.get("seed", 0)))
    clips = sorted(r["sample_id"] for r in rows if r["source_kind"] == "video")
    for k, sid in enumerate(clips):
        assignment[sid] = ("trainval", k % folds)
    for row in rows:
        row["split"], row["fold"] = assignment[row["sample_id"]]
