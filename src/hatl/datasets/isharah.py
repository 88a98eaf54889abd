"""Isharah (Saudi Sign Language) adapter.

Annotations: ``<annotations>/<protocol>/{train,dev}.{txt,csv}`` where ``annotations`` defaults to the root and
``protocol`` is SI (signer-independent) or US (unseen sentences). Two releases exist: ``isharah2000`` (``.csv``,
header ``id|gloss``) and the 2025 challenge annotations (``.txt``, ``id|gloss|text`` or ``id|gloss``; the 2025 SI
train file has text but its dev file does not). A labelled ``test`` file is read too when present; the public
challenge test files carry ids only, so their rows are counted as skipped ("no labels").

Ids are ``<signer 2 digits>_<sentence 4 digits>``; the signer column is the two digits.

Videos: looked up by id under ``videos`` (default ``<root>/videos``), directly or in a ``<split>/`` subfolder,
as ``<id>.mp4|.avi|.mov|.mkv|.webm`` or a frame folder ``<id>/``. When the video folder is absent altogether
and every task is text-only (gloss2text), the manifest is annotation-only (empty source, n_frames 0).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from hatl.datasets import base
from hatl.errors import InputError

log = logging.getLogger("hatl.datasets.isharah")

HEADERS = (("id", "gloss"), ("id", "gloss", "text"))
TEST_HEADERS = (("id",), *HEADERS)
SPLITS = ("train", "dev", "test")
SUFFIXES = (".txt", ".csv")
ID_PATTERN = re.compile(r"(\d{2})_(\d{4})")
DEFAULT_VIDEOS = Path("videos")


def signer_of(path: Path, record: str, sample_id: str) -> str:
    m = ID_PATTERN.fullmatch(sample_id)
    if not m:
        raise InputError(path, record, f"id {sample_id!r} is not <signer 2 digits>_<sentence 4 digits>")
    return m.group(1)


def split_file(folder: Path, split: str) -> Path | None:
    """The annotation file of one split; both extensions at once would be ambiguous."""
    found = [folder / f"{split}{s}" for s in SUFFIXES if (folder / f"{split}{s}").is_file()]
    if len(found) > 1:
        raise InputError(folder, split, f"both {found[0].name} and {found[1].name} exist; keep one release per folder")
    return found[0] if found else None


def read_annotations(
    path: Path, split: str, tasks: list[str], skipped: list[dict[str, str]]
) -> list[dict[str, Any]]:
    """Parse one Isharah annotation file into partial rows; labels are checked against the tasks."""
    header, lines = base.read_delimited(path, "|", TEST_HEADERS if split == "test" else HEADERS, skipped)
    has_text = "text" in header
    out: list[dict[str, Any]] = []
    for line in lines:
        sample_id = line.fields[0]
        record = f"line {line.number} ({sample_id})"
        signer = signer_of(path, record, sample_id)
        if len(header) == 1:  # challenge test file: ids only
            skipped.append(base.skip(f"{path.name} {record}", "no labels", "the file carries ids only"))
            continue
        gloss = line.fields[1]
        text = line.fields[2] if has_text else ""
        base.check_labels(path, record, gloss, text, tasks, has_text_column=has_text)
        out.append({"id": sample_id, "split": split, "signer": signer, "gloss": gloss, "text": text,
                    "file": path, "record": record})
    return out


def index_videos(videos: Path) -> dict[str, Path]:
    """Map ``<split>/<stem>`` and ``<stem>`` to candidate sources, scanning each folder once (tens of thousands of ids)."""
    index: dict[str, Path] = {}

    def scan(folder: Path, prefix: str) -> None:
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                path = Path(entry.path)
                if entry.is_dir():
                    if prefix == "" and entry.name in SPLITS:
                        scan(path, f"{entry.name}/")
                        continue
                    index.setdefault(prefix + entry.name, path)
                elif path.suffix.lower() in base.VIDEO_SUFFIXES:
                    index.setdefault(prefix + path.stem, path)

    scan(videos, "")
    return index


def build_rows(dataset: str, ds_cfg: dict[str, Any], config: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    base.reject_cross_validation(dataset, ds_cfg)
    root = base.require_root(dataset, ds_cfg)
    annotations = base.resolve_under(root, ds_cfg.get("annotations"), ".")
    protocol = ds_cfg.get("protocol", "SI")
    folder = annotations / protocol
    tasks = list(ds_cfg.get("tasks", []))
    policy = ds_cfg.get("missing_sources", "error")
    skipped: list[dict[str, str]] = []

    if not folder.is_dir():
        raise InputError(folder, f"dataset {dataset}", f"protocol folder {protocol} does not exist")
    parsed: list[dict[str, Any]] = []
    dups = base.DuplicateCheck()
    for split in SPLITS:
        path = split_file(folder, split)
        if path is None:
            if split == "test":
                continue  # the public releases have no labelled test file
            raise InputError(folder / f"{split}.txt", f"dataset {dataset}", f"no {split} annotation file (.txt or .csv)")
        for item in read_annotations(path, split, tasks, skipped):
            dups.add(item["file"], item["record"], item["id"])
            parsed.append(item)

    videos = base.resolve_under(root, ds_cfg.get("videos"), DEFAULT_VIDEOS)
    annotation_only = not videos.is_dir()
    if annotation_only and "video" in base.task_needs(tasks):
        raise InputError(
            videos, f"dataset {dataset}",
            f"video folder does not exist, and task(s) {', '.join(base.tasks_needing('video', tasks))} need video",
        )
    if annotation_only:
        log.info("%s: no video folder at %s; annotation-only manifest (text-only tasks)", dataset, videos)
        return [base.make_row(i["id"], i["split"], i["signer"], i["gloss"], i["text"], "", "video",
                               float(ds_cfg.get("fps") or 0.0), 0)
                for i in parsed], skipped

    index = index_videos(videos)
    fps = ds_cfg.get("fps")
    rows: list[dict[str, Any]] = []
    problems = base.SourceProblems(videos)
    for item in base.progress(parsed, f"{dataset}: videos"):
        record = f"{item['file'].name} {item['record']}"
        path = index.get(f"{item['split']}/{item['id']}") or index.get(item["id"])
        info = None  # stays None when the video is bad (the problem is collected), missing or skipped
        with problems.sample():
            if path is None:
                base.missing_source(policy, videos / item["id"], record, "missing video", skipped)
            else:
                info = base.describe_source(path, record, fps, policy, skipped)
        if info is None:
            continue
        rows.append(base.make_row(item["id"], item["split"], item["signer"], item["gloss"], item["text"],
                                  info.source, info.source_kind, info.fps, info.n_frames))
    problems.raise_if_any()
    return rows, skipped
