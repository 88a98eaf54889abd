"""ISL Kinect adapter: 30 isolated Indian Sign Language signs as 3D Kinect v1 skeletons (Roy et al. 2020).

Release layout (public repository Boyinglby/ADM_SignLangRecog, folder ``RawDataset``; ``videos`` overrides
the folder): one file per take, ``<sign>_<signer>_<take>.txt``, one line per frame holding 60
whitespace-separated floats = 20 joints x (x, y, z) in metres, joint order
:data:`hatl.landmarks.KINECT20_NAMES` (checked against the data; not the Kinect SDK's enum order).

One sample per file: ``gloss`` = the sign, ``signer`` from the file name, ``text`` empty (isolated signs carry
no sentence, so only tasks that need no text can be configured; the dataset serves backbone pretraining).
Sample id ``<sign>_<signer>_<take>``.

Quirks of the release: the sign "born" by signer "pradeep" and "no" by "apurve" are named with a double
underscore (``born__pradeep_1.txt``); any run of underscores between sign and signer is accepted, and the id
is written with one. Files whose name does not follow the pattern and non-``.txt`` files are skipped and
counted with their reason; so are empty files (``missing_sources: skip``; an error otherwise). A line with
the wrong number of values or a value that is not a number is fatal (file + line + problem).

Split: the release has no test split; every row is ``trainval`` and its cross-validation fold is the signer's
rank in name order, so folds are leave-one-signer-out folds (signer-independent evaluation).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from hatl.datasets import base
from hatl.errors import InputError
from hatl.landmarks import KINECT20_NAMES

SKELETON = "kinect20"  # hatl.landmarks.SKELETONS group the keypoint stage writes
DEFAULT_FOLDER = Path("RawDataset")
# Kinect v1 streams skeletons at 30 frames/s; the files do not store the rate (the config's `fps` overrides).
DEFAULT_FPS = 30.0
VALUES_PER_FRAME = len(KINECT20_NAMES) * 3
FILE_NAME = re.compile(r"(?P<sign>[a-z]+)_+(?P<signer>[a-z]+)_(?P<take>\d+)\.txt")


def parse_name(name: str) -> tuple[str, str, int] | None:
    """(sign, signer, take) from a release file name; None when the name does not follow the pattern."""
    m = FILE_NAME.fullmatch(name)
    if not m:
        return None
    return m.group("sign"), m.group("signer"), int(m.group("take"))


def read_skeleton(path: Path, sample_id: str) -> np.ndarray:
    """(T, 20, 3) float32 joint positions of one file; a bad line is an InputError naming the line."""
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(path, sample_id, f"cannot read skeleton file: {err}") from err
    frames = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue  # a trailing blank line holds no frame
        if len(fields) != VALUES_PER_FRAME:
            raise InputError(path, f"{sample_id} line {number}",
                             f"{len(fields)} values, expected {VALUES_PER_FRAME} (20 joints x 3)")
        try:
            values = [float(f) for f in fields]
        except ValueError as err:
            raise InputError(path, f"{sample_id} line {number}", f"not a number: {err}") from err
        frames.append(values)
    arr = np.asarray(frames, dtype=np.float32).reshape(len(frames), len(KINECT20_NAMES), 3)
    if not np.isfinite(arr).all():
        bad = int(np.argwhere(~np.isfinite(arr))[0][0]) + 1
        raise InputError(path, f"{sample_id} frame {bad}", "non-finite coordinate (nan/inf)")
    return arr


def list_files(folder: Path) -> list[str]:
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if e.is_file())


def build_rows(dataset: str, ds_cfg: dict[str, Any], config: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    base.reject_cross_validation(dataset, ds_cfg)
    base.reject_translation_tasks(dataset, ds_cfg, "isl_kinect holds isolated signs without text")
    root = base.require_root(dataset, ds_cfg)
    folder = base.resolve_under(root, ds_cfg.get("videos"), DEFAULT_FOLDER)
    if not folder.is_dir():
        raise InputError(folder, f"dataset {dataset}", "skeleton folder does not exist (expected RawDataset/)")
    policy = ds_cfg.get("missing_sources", "error")
    fps = float(ds_cfg.get("fps") or DEFAULT_FPS)
    skipped: list[dict[str, str]] = []
    dups = base.DuplicateCheck()
    parsed: list[tuple[str, str, str, Path, int]] = []
    for name in base.progress(list_files(folder), f"{dataset}: skeleton files"):
        path = folder / name
        if not name.endswith(".txt"):
            skipped.append(base.skip(name, "not a skeleton file", "expected <sign>_<signer>_<take>.txt"))
            continue
        fields = parse_name(name)
        if fields is None:
            skipped.append(base.skip(name, "file name not <sign>_<signer>_<take>.txt", name))
            continue
        sign, signer, take = fields
        sample_id = f"{sign}_{signer}_{take}"
        dups.add(path, f"file {name}", sample_id)
        n_frames = len(read_skeleton(path, sample_id))
        if n_frames == 0:
            base.missing_source(policy, path, sample_id, "empty skeleton file", skipped)
            continue
        parsed.append((sample_id, sign, signer, path, n_frames))
    signers = sorted({p[2] for p in parsed})
    fold_of = {s: i for i, s in enumerate(signers)}
    rows = [base.make_row(sid, "trainval", signer, sign, "", str(path), "skeleton", fps, n, fold=fold_of[signer])
            for sid, sign, signer, path, n in parsed]
    return rows, skipped
