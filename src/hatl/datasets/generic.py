"""Generic adapter for a user's own data: one tab-separated file, header ``id split video gloss text signer``.

The TSV is ``annotations`` from the config (relative paths under ``root``), else ``root`` itself when it is a
file, else ``<root>/annotations.tsv``. Columns may come in any order; no quoting (tabs and newlines cannot occur
inside a field). ``video`` is a video file, a frame folder (PNG/JPEG) or a folder of per-frame 1662-value
``<i>.npy`` files, relative to the TSV's folder or absolute; it may be empty only when every configured task
is text-only (gloss2text). ``split`` is train/dev/test; with ``cross_validation`` configured it must be empty
for every row and the seeded trainval/test + folds assignment is made here (grouped by source).
Folders carry no frame rate, so they need ``fps`` in the config; videos use their container's rate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatl.datasets import base
from hatl.errors import InputError

COLUMNS = ("id", "split", "video", "gloss", "text", "signer")


def tsv_path(root: Path, ds_cfg: dict[str, Any]) -> Path:
    if ds_cfg.get("annotations"):
        return base.resolve_under(root if root.is_dir() else root.parent, ds_cfg["annotations"], "")
    return root if root.is_file() else root / "annotations.tsv"


def read_tsv(path: Path, skipped: list[dict[str, str]]) -> list[tuple[str, dict[str, str]]]:
    """``(record, {column: value})`` per data line; the header must hold exactly the six columns."""
    lines = base.read_text_lines(path)
    if not lines:
        raise InputError(path, "line 1", "file is empty (expected a header line)")
    header = [h.strip() for h in lines[0].split("\t")]
    if sorted(header) != sorted(COLUMNS) or len(header) != len(COLUMNS):
        raise InputError(path, "line 1", f"header {header} must hold exactly the columns {' '.join(COLUMNS)} (tab-separated)")
    out: list[tuple[str, dict[str, str]]] = []
    for number, raw in enumerate(lines[1:], start=2):
        if not raw.strip():
            skipped.append(base.skip(f"{path.name}:{number}", "blank line"))
            continue
        fields = raw.split("\t")
        if len(fields) != len(header):
            raise InputError(path, f"line {number} ({fields[0].strip()})",
                             f"{len(fields)} fields, expected {len(header)} ({' '.join(header)})")
        values = dict(zip(header, (f.strip() for f in fields)))
        out.append((f"line {number} ({values['id']})", values))
    return out


def build_rows(dataset: str, ds_cfg: dict[str, Any], config: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    root = base.require_root(dataset, ds_cfg)
    path = tsv_path(root, ds_cfg)
    tasks = list(ds_cfg.get("tasks", []))
    policy = ds_cfg.get("missing_sources", "error")
    needs_video = "video" in base.task_needs(tasks)
    cv = bool(ds_cfg.get("cross_validation"))
    skipped: list[dict[str, str]] = []

    entries = read_tsv(path, skipped)
    dups = base.DuplicateCheck()
    for record, v in entries:
        if not v["id"]:
            raise InputError(path, record, "empty id")
        dups.add(path, record, v["id"])
        if cv and v["split"]:
            raise InputError(path, record, f"split {v['split']!r} given, but cross_validation assigns splits; leave it empty")
        if not cv and v["split"] not in base.PREDEFINED_SPLITS:
            raise InputError(path, record, f"split {v['split']!r} is not one of {', '.join(base.PREDEFINED_SPLITS)}")
        base.check_labels(path, record, v["gloss"], v["text"], tasks)
        if needs_video and not v["video"]:
            raise InputError(path, record, f"empty video, needed by task(s) {', '.join(base.tasks_needing('video', tasks))}")

    fps = ds_cfg.get("fps")
    rows: list[dict[str, Any]] = []
    groups: list[str] = []
    problems = base.SourceProblems(path)
    for record, v in base.progress(entries, f"{dataset}: sources"):
        where = f"{path.name} {record}"
        if not v["video"]:  # text-only tasks: annotation-only row
            info = base.SourceInfo("", "video", float(fps or 0.0), 0)
        else:
            source = Path(v["video"]).expanduser()
            source = source if source.is_absolute() else path.parent / source
            info = None  # stays None when the source is bad (the problem is collected) or skipped
            with problems.sample():
                info = base.describe_source(source, where, fps, policy, skipped)
            if info is None:
                continue
        rows.append(base.make_row(v["id"], v["split"], v["signer"], v["gloss"], v["text"], info.source,
                                  info.source_kind, info.fps, info.n_frames))
        groups.append(info.source or v["id"])
    problems.raise_if_any()

    if cv:
        folds, test_fraction = base.cv_settings(dataset, ds_cfg)
        assignment = base.assign_cross_validation(groups, folds, test_fraction, int(config.get("seed", 0)))
        for row, key in zip(rows, groups):
            row["split"], row["fold"] = assignment[key]
    return rows, skipped
