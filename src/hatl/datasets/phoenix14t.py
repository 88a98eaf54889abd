"""RWTH-PHOENIX-Weather-2014T adapter (the release layout).

Annotations: ``<root>/annotations/manual/PHOENIX-2014-T.{train,dev,test}.corpus.csv``, '|'-separated with header
``name|video|start|end|speaker|orth|translation`` (``annotations`` in the config overrides the folder).
Frames: ``<root>/features/fullFrame-210x260px/{split}/{name}/*.png`` (``videos`` overrides the
``fullFrame-210x260px`` folder), 25 fps. The ``video`` column reads ``<name>/1/*.png`` in the official release
and ``<name>/*.png`` in some copies; the PNGs sit directly in ``<name>/`` officially, so both places are tried.

Annotation-only use: Gloss2Text needs no frames, so when the frame folder is absent altogether and every
configured task is text-only, rows are written with the expected frame folder as ``source`` and
``n_frames`` 0 (and the manifest metadata says ``annotation_only``). Otherwise the missing folder is fatal.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hatl.datasets import base
from hatl.errors import InputError

log = logging.getLogger("hatl.datasets.phoenix14t")

HEADER = ("name", "video", "start", "end", "speaker", "orth", "translation")
SPLITS = ("train", "dev", "test")
DEFAULT_ANNOTATIONS = Path("annotations") / "manual"
DEFAULT_FRAMES = Path("features") / "fullFrame-210x260px"
DEFAULT_FPS = 25.0


def corpus_file(annotations: Path, split: str) -> Path:
    return annotations / f"PHOENIX-2014-T.{split}.corpus.csv"


def frame_folder_candidates(frames_root: Path, split: str, name: str, video: str) -> list[Path]:
    """Where a sample's PNGs may be: the folder the ``video`` column names, then ``<name>/``, then ``<name>/1/``."""
    video_dir = video.rsplit("/", 1)[0] if "/" in video else name  # strip the '*.png' glob
    out: list[Path] = []
    for rel in (video_dir, name, f"{name}/1"):
        path = frames_root / split / rel
        if path not in out:
            out.append(path)
    return out


def resolve_frame_folder(candidates: list[Path], record: str) -> tuple[Path, int] | None:
    """The first candidate that exists and holds frames, with its frame count; the frames must be numbered
    without gaps (``images0001.png`` ...): a missing frame is fatal, as for every adapter."""
    for path in candidates:
        if path.is_dir():
            n = base.numbered_image_frames(path, record)
            if n > 0:
                return path, n
    return None


def read_corpus(path: Path, split: str, tasks: list[str], skipped: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Parse one corpus file into partial rows (no source yet); labels are checked against the tasks."""
    _, lines = base.read_delimited(path, "|", [HEADER], skipped)
    out: list[dict[str, Any]] = []
    for line in lines:
        name, video, _start, _end, speaker, orth, translation = line.fields
        record = f"line {line.number} ({name})"
        if not name:
            raise InputError(path, f"line {line.number}", "empty name (sample id)")
        base.check_labels(path, record, orth, translation, tasks)
        out.append({"name": name, "video": video, "signer": speaker, "gloss": orth, "text": translation,
                    "split": split, "file": path, "record": record})
    return out


def build_rows(dataset: str, ds_cfg: dict[str, Any], config: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    base.reject_cross_validation(dataset, ds_cfg)
    root = base.require_root(dataset, ds_cfg)
    annotations = base.resolve_under(root, ds_cfg.get("annotations"), DEFAULT_ANNOTATIONS)
    frames_root = base.resolve_under(root, ds_cfg.get("videos"), DEFAULT_FRAMES)
    tasks = list(ds_cfg.get("tasks", []))
    fps = float(ds_cfg.get("fps") or DEFAULT_FPS)
    policy = ds_cfg.get("missing_sources", "error")
    skipped: list[dict[str, str]] = []

    if not annotations.is_dir():
        raise InputError(annotations, f"dataset {dataset}", "annotation folder does not exist")
    parsed: list[dict[str, Any]] = []
    dups = base.DuplicateCheck()
    for split in SPLITS:
        for item in read_corpus(corpus_file(annotations, split), split, tasks, skipped):
            dups.add(item["file"], item["record"], item["name"])
            parsed.append(item)

    needs_video = "video" in base.task_needs(tasks)
    annotation_only = not frames_root.is_dir()
    if annotation_only and needs_video:
        raise InputError(
            frames_root, f"dataset {dataset}",
            f"frame folder does not exist, and task(s) {', '.join(base.tasks_needing('video', tasks))} need video "
            "(only gloss2text can run from the annotations alone)",
        )
    if annotation_only:
        log.info("%s: no frame folder at %s; annotation-only manifest (text-only tasks)", dataset, frames_root)

    rows: list[dict[str, Any]] = []
    problems = base.SourceProblems(frames_root)
    for item in base.progress(parsed, f"{dataset}: frame folders"):
        record = f"{item['file'].name} {item['record']}"
        candidates = frame_folder_candidates(frames_root, item["split"], item["name"], item["video"])
        if annotation_only:
            # where the official release keeps the frames; n_frames 0 marks "not available"
            source, n_frames = frames_root / item["split"] / item["name"], 0
        else:
            found = None  # stays None when the folder is bad (the problem is collected) or missing (skipped)
            with problems.sample():
                found = resolve_frame_folder(candidates, record)
                if found is None:
                    tried = ", ".join(str(c.relative_to(frames_root / item["split"])) for c in candidates)
                    base.missing_source(policy, frames_root / item["split"] / item["name"], record,
                                        "missing frame folder", skipped, hint=f"no PNGs in {tried}")
            if found is None:
                continue
            source, n_frames = found
        rows.append(base.make_row(item["name"], item["split"], item["signer"], item["gloss"], item["text"],
                                  str(source), "frames", fps, n_frames))
    problems.raise_if_any()
    return rows, skipped

