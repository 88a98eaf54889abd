"""MedASL adapter (the public INDUCE-Lab/MedASL layout).

Annotations: ``<root>/Annotations/Gloss-Text Annotations.csv`` (``annotations`` overrides the file), comma-separated
with quoting, header ``Text,Gloss,NpyFilesRoot`` (MedASL2000 adds a leading ``#`` column, used as the sample id).
Keypoints: ``<root>/Videos/<folder>/<i>.npy`` (``videos`` overrides the ``Videos`` folder), ONE frame per file,
1662 values (``hatl.landmarks.FLAT1662_*``), 30 fps, one signer.

Folder resolution from ``NpyFilesRoot``: keep the last path component before ``/*.npy`` (some rows carry an
absolute path from the authors' machine) and look it up under ``Videos``; some folder names on disk lack a '?'
the CSV has (or the reverse), so a second lookup compares names with every '?' removed. (In the public 500-row
release all 500 names match exactly, the absolute-path row included; MedASL2000's ``NpyFilesRoot`` values drop
the '?' that its glosses and the folders carry.)

Nested takes: three folders of the public release also hold sub-folders ``1/``, ``2/``, ``3/`` with their own
``<i>.npy`` frames (other recordings of the sentence; the top-level frames are byte-identical to the last
one). ``NpyFilesRoot``'s ``<folder>/*.npy`` names only the top-level files, so those are the sample; each
nested take is listed as a skipped item (reason ``unused nested take``) so that nothing is left out silently.

Sample ids are the data-row number (``0001``...; the ``#`` column when present), so they stay stable when rows
are skipped. Only the first ``.npy`` of each folder is shape-checked here (the manifest needs just the frame
count); the keypoint stage validates every frame when it converts the folder.

MedASL has no official split: rows are split by :func:`hatl.datasets.base.assign_cross_validation` over the
annotated source folders (paraphrases sharing a folder in MedASL2000 stay together), seeded by the config's
``seed``; folders missing on disk take part too, so a sample's split does not depend on what was downloaded.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path
from typing import Any

from hatl.datasets import base
from hatl.errors import InputError

log = logging.getLogger("hatl.datasets.medasl")

HEADER = ("Text", "Gloss", "NpyFilesRoot")
HEADER_2000 = ("#", "Text", "Gloss", "NpyFilesRoot")
DEFAULT_ANNOTATIONS = Path("Annotations") / "Gloss-Text Annotations.csv"
DEFAULT_VIDEOS = Path("Videos")
DEFAULT_FPS = 30.0
SIGNER = "signer01"


def folder_name(npy_root: str) -> str:
    """The sentence folder named by an ``NpyFilesRoot`` value: the last component before ``/*.npy``."""
    value = npy_root.strip().replace("\\", "/")
    if value.endswith("*.npy"):
        value = value[: -len("*.npy")]
    parts = [p for p in value.split("/") if p]
    return parts[-1] if parts else ""


def index_folders(videos: Path) -> tuple[set[str], dict[str, str]]:
    """Folder names under ``Videos``, and the same keyed with every '?' removed (for the fallback lookup)."""
    names = {p.name for p in videos.iterdir() if p.is_dir()} if videos.is_dir() else set()
    stripped: dict[str, str] = {}
    for name in sorted(names):
        stripped.setdefault(name.replace("?", ""), name)
    return names, stripped


def resolve_folder(videos: Path, name: str, names: set[str], stripped: dict[str, str]) -> Path:
    """The folder on disk for ``name`` (exact, else '?'-insensitive); the exact path when neither exists."""
    if name in names:
        return videos / name
    alt = stripped.get(name.replace("?", ""))
    return videos / (alt if alt is not None else name)


def nested_takes(folder: Path) -> list[tuple[Path, int]]:
    """Sub-folders of a sentence folder that hold ``.npy`` frames of their own, with their frame counts.

    Only direct sub-folders are looked at (the release nests one level); sorted by name for stable reports.
    """
    out: list[tuple[Path, int]] = []
    with os.scandir(folder) as entries:
        subdirs = sorted(Path(e.path) for e in entries if e.is_dir())
    for sub in subdirs:
        with os.scandir(sub) as entries:
            n = sum(1 for e in entries if e.is_file() and e.name.lower().endswith(".npy"))
        if n:
            out.append((sub, n))
    return out


def read_annotations(path: Path, tasks: list[str], skipped: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Parse the annotation CSV (quoted fields: glosses contain commas) into partial rows."""
    if not path.is_file():
        raise InputError(path, None, "annotation file does not exist")
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            rows, line_numbers = [], []
            for fields in reader:
                rows.append(fields)
                line_numbers.append(reader.line_num)  # the line a record ends on (quoted fields may span lines)
    except (UnicodeDecodeError, csv.Error) as err:
        raise InputError(path, None, f"cannot read CSV: {err}") from err
    if not rows:
        raise InputError(path, "line 1", "file is empty (expected a header line)")
    header = tuple(h.strip() for h in rows[0])
    if header not in (HEADER, HEADER_2000):
        raise InputError(path, "line 1", f"unexpected header {','.join(header)!r}; expected {','.join(HEADER)!r}")
    has_number = header == HEADER_2000
    out: list[dict[str, Any]] = []
    dups = base.DuplicateCheck()
    for row_no, fields in enumerate(rows[1:], start=1):
        line = line_numbers[row_no]
        if not any(f.strip() for f in fields):
            skipped.append(base.skip(f"{path.name}:{line}", "blank line"))
            continue
        if len(fields) != len(header):
            raise InputError(path, f"line {line}", f"{len(fields)} fields, expected {len(header)} ({','.join(header)})")
        fields = [f.strip() for f in fields]
        number, text, gloss, npy_root = fields if has_number else (str(row_no), *fields)
        sample_id = number.zfill(4)
        record = f"line {line} (sample {sample_id})"
        dups.add(path, record, sample_id)
        base.check_labels(path, record, gloss, text, tasks)
        name = folder_name(npy_root)
        if not name:
            raise InputError(path, record, f"NpyFilesRoot {npy_root!r} names no folder")
        out.append({"id": sample_id, "text": text, "gloss": gloss, "folder": name, "record": record})
    return out


def npy_folder_frames(folder: Path, record: str, policy: str, skipped: list[dict[str, str]]) -> int:
    """Frame count of a sample's npy folder (first frame checked), or -1 when it is missing or empty and
    the policy skips it."""
    if not folder.is_dir():
        base.missing_source(policy, folder, record, "missing npy folder", skipped)
        return -1
    files = base.npy_frame_files(folder, record)
    if not files:
        base.missing_source(policy, folder, record, "empty npy folder", skipped)
        return -1
    base.check_npy_frame(files[0], record)
    return len(files)


def build_rows(dataset: str, ds_cfg: dict[str, Any], config: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    folds, test_fraction = base.cv_settings(dataset, ds_cfg)
    root = base.require_root(dataset, ds_cfg)
    ann_path = base.resolve_under(root, ds_cfg.get("annotations"), DEFAULT_ANNOTATIONS)
    videos = base.resolve_under(root, ds_cfg.get("videos"), DEFAULT_VIDEOS)
    tasks = list(ds_cfg.get("tasks", []))
    policy = ds_cfg.get("missing_sources", "error")
    fps = float(ds_cfg.get("fps") or DEFAULT_FPS)
    skipped: list[dict[str, str]] = []

    parsed = read_annotations(ann_path, tasks, skipped)
    annotation_only = not videos.is_dir()
    if annotation_only and "video" in base.task_needs(tasks):
        raise InputError(
            videos, f"dataset {dataset}",
            f"keypoint folder does not exist, and task(s) {', '.join(base.tasks_needing('video', tasks))} need it",
        )
    names, stripped = index_folders(videos)

    rows: list[dict[str, Any]] = []
    present: list[dict[str, Any]] = []
    problems = base.SourceProblems(videos)
    for item in base.progress(parsed, f"{dataset}: npy folders"):
        folder = resolve_folder(videos, item["folder"], names, stripped)
        record = f"{ann_path.name} {item['record']}"
        if annotation_only:
            n_frames = 0
        else:
            n_frames = -1  # stays -1 when the folder is bad (the problem is collected), missing or empty
            with problems.sample():
                n_frames = npy_folder_frames(folder, record, policy, skipped)
            if n_frames < 0:
                continue
            for sub, n_sub in nested_takes(folder):
                skipped.append(base.skip(
                    f"{record} take {sub.name}/", "unused nested take",
                    f"{sub} ({n_sub} frames; NpyFilesRoot names only the {n_frames} top-level frames)",
                ))
        present.append(item)
        rows.append(base.make_row(item["id"], "", SIGNER, item["gloss"], item["text"], str(folder), "npy", fps,
                                  n_frames))

    problems.raise_if_any()
    # Assign over every annotated folder, present or not, so a sample keeps its split/fold however much of
    # the keypoint data has been downloaded (missing_sources: skip).
    assignment = base.assign_cross_validation((i["folder"] for i in parsed), folds, test_fraction,
                                              int(config.get("seed", 0)))
    for item, row in zip(present, rows):
        row["split"], row["fold"] = assignment[item["folder"]]
    return rows, skipped
