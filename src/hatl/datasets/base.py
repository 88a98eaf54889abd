"""Pieces every dataset adapter shares: task requirements, path resolution, annotation-file reading,
source probing (video files, frame folders, per-frame ``.npy`` folders), the missing-source policy and the
seeded cross-validation split.

An adapter returns manifest rows (``MANIFEST_COLUMNS`` minus ``shard``) and skipped items
``{"record": ..., "reason": ...}``. Hard problems raise :class:`hatl.errors.InputError` naming the file, the
record (line number and/or sample id) and the problem; what is a counted skip instead is decided here, in
one place, so every adapter behaves alike:

* fatal: missing root or annotation file, a header that is not the expected one, a row with the wrong number
  of fields, an empty gloss/text that a configured task needs, a duplicate id, a malformed id, an ``.npy``
  frame of the wrong size, an unreadable video, frame files that cannot be ordered or have gaps;
* missing or empty source (video file, including a zero-byte one / frame folder / npy folder): fatal by
  default, a counted skip when the dataset sets ``missing_sources: skip``;
* blank lines in an annotation file: counted skips (they hold no sample).

Source problems are collected over all samples (:class:`SourceProblems`), so one run names every bad source
(up to :data:`MAX_LISTED_PROBLEMS`) instead of stopping at the first.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hatl.errors import ConfigError, InputError
from hatl.experiment import TASK_NEEDS, task_needs, tasks_needing  # noqa: F401  (the adapters read them as base.*)
from hatl.landmarks import FLAT1662_SIZE

# Manifest columns in order (docs/architecture.md); ``shard`` is assigned by the manifest stage.
MANIFEST_COLUMNS: tuple[str, ...] = (
    "sample_id", "split", "fold", "signer", "gloss", "text", "source", "source_kind", "fps", "n_frames", "shard",
)
ROW_COLUMNS: tuple[str, ...] = MANIFEST_COLUMNS[:-1]
# skeleton: a file of another tracker's joints, read by the adapter's own read_skeleton (isl_kinect, boston104)
SOURCE_KINDS: tuple[str, ...] = ("video", "frames", "npy", "demo", "skeleton")
PREDEFINED_SPLITS: tuple[str, ...] = ("train", "dev", "test")
CV_SPLITS: tuple[str, ...] = ("trainval", "test")

VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".avi", ".mov", ".mkv", ".webm")
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp")


@dataclass(frozen=True)
class Skip:
    """One item left out of the manifest, with why."""

    record: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"record": self.record, "reason": self.reason}


def skip(record: str, category: str, detail: str = "") -> dict[str, str]:
    """A skipped item. ``category`` is a short fixed phrase (grouped in summaries), ``detail`` the specifics."""
    return Skip(record, f"{category}: {detail}" if detail else category).to_dict()


def skip_category(reason: str) -> str:
    return reason.split(": ", 1)[0]


# ----------------------------------------------------------------------------------------------- paths


def require_root(dataset: str, ds_cfg: dict[str, Any]) -> Path:
    """The dataset's release folder (or file, for the generic adapter); it must be configured and exist."""
    root = ds_cfg.get("root")
    if not root:
        raise ConfigError(
            f"config key 'datasets.{dataset}.root': adapter '{ds_cfg['adapter']}' needs the dataset's release folder"
        )
    # abspath, not Path.absolute(): it also folds "..", so a root written as ../MedASL gives clean source
    # paths in the manifest; unlike resolve() it keeps symlinks the user chose (e.g. a data mount)
    path = Path(os.path.abspath(Path(root).expanduser()))
    if not path.exists():
        raise InputError(path, f"dataset {dataset}", "dataset root does not exist")
    return path


def resolve_under(root: Path, value: str | None, default: str | Path) -> Path:
    """``value`` (an override from the config) or ``default``; relative paths are taken under ``root``."""
    chosen = Path(value).expanduser() if value else Path(default)
    return chosen if chosen.is_absolute() else (root / chosen)


# ----------------------------------------------------------------------------------- annotation files


@dataclass(frozen=True)
class Line:
    """One data line of an annotation file: its 1-based line number in the file and its fields."""

    number: int
    fields: list[str]


def read_text_lines(path: Path) -> list[str]:
    """The file's lines, without a UTF-8 BOM or line ends (LF and CRLF both occur in the wild)."""
    if not path.is_file():
        raise InputError(path, None, "annotation file does not exist")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(path, f"byte {err.start}", "not valid UTF-8") from err
    # split on "\n" only: str.splitlines would also break on U+2028, \x1c etc. inside a text field
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start an empty one
    return lines


def read_delimited(
    path: Path, delimiter: str, headers: Iterable[tuple[str, ...]], skipped: list[dict[str, str]]
) -> tuple[tuple[str, ...], Iterator[Line]]:
    """Read a header-first, unquoted, ``delimiter``-separated file.

    ``headers`` lists the accepted headers; the one found is returned with an iterator over data lines whose
    field count is checked against it (a mismatch is fatal: the columns would otherwise shift silently).
    Blank lines are counted as skips. No quoting: PHOENIX and Isharah files are plain '|' lists whose text
    may contain quote characters that a CSV reader would mangle.
    """
    lines = read_text_lines(path)
    accepted = [tuple(h) for h in headers]
    if not lines:
        raise InputError(path, "line 1", "file is empty (expected a header line)")
    header = tuple(f.strip() for f in lines[0].split(delimiter))
    if header not in accepted:
        want = " or ".join(delimiter.join(h) for h in accepted)
        raise InputError(path, "line 1", f"unexpected header {delimiter.join(header)!r}; expected {want!r}")

    def rows() -> Iterator[Line]:
        for number, raw in enumerate(lines[1:], start=2):
            if not raw.strip():
                skipped.append(skip(f"{path.name}:{number}", "blank line"))
                continue
            fields = raw.split(delimiter)
            if len(fields) != len(header):
                first = fields[0].strip() if fields else ""
                raise InputError(
                    path, f"line {number} ({first})",
                    f"{len(fields)} fields, expected {len(header)} ({delimiter.join(header)})",
                )
            yield Line(number, [f.strip() for f in fields])

    return header, rows()


def check_labels(
    path: Path, record: str, gloss: str, text: str, tasks: Iterable[str], has_text_column: bool = True
) -> None:
    """Fail when a configured task needs a gloss or text that this record leaves empty."""
    tasks = list(tasks)
    for field, value in (("gloss", gloss), ("text", text)):
        needing = tasks_needing(field, tasks)
        if needing and not value:
            if field == "text" and not has_text_column:
                problem = (
                    f"this file has no text column, but task(s) {', '.join(needing)} need spoken-language text; "
                    "use a release with text or configure only tasks that do not need it"
                )
            else:
                problem = f"empty {field}, needed by task(s) {', '.join(needing)}"
            raise InputError(path, record, problem)


def check_manifest_for_tasks(manifest: Any, tasks: Iterable[str], path: str | Path | None) -> None:
    """The built manifest against the configured tasks, row by row: the checks ``hatl manifest`` makes while
    reading the release (labels a task needs; video for sign tasks).

    The manifest job is not rerun when the tasks change (rebuilding it would redo resize and MediaPipe), so
    ``hatl vocab``, which reruns when what the tasks need changes, repeats them here on every split."""
    tasks = list(tasks)
    needing_video = tasks_needing("video", tasks)
    for row in manifest.itertuples(index=False):
        check_labels(Path(path) if path else None, str(row.sample_id), row.gloss, row.text, tasks)
        if needing_video and (not row.source or int(row.n_frames) == 0):
            raise InputError(path, str(row.sample_id),
                             f"no video or frames in the manifest (an annotation-only row), needed by task(s) "
                             f"{', '.join(needing_video)}: put the sources in place and rebuild the manifest "
                             "(snakemake --forcerun manifest)")


class DuplicateCheck:
    """Remembers where each id was first seen, so a duplicate names both places."""

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}

    def add(self, path: Path, record: str, sample_id: str) -> None:
        where = f"{path.name} {record}"
        if sample_id in self._seen:
            raise InputError(path, record, f"duplicate sample id {sample_id!r} (first seen at {self._seen[sample_id]})")
        self._seen[sample_id] = where


# ---------------------------------------------------------------------------------------------- sources


def missing_source(
    policy: str, path: Path, record: str, problem: str, skipped: list[dict[str, str]], hint: str = ""
) -> None:
    """Apply the dataset's ``missing_sources`` policy: raise (``error``) or count a skip (``skip``).

    ``problem`` is a fixed phrase (skips are grouped by it); ``hint`` adds specifics to the error message.
    """
    if policy == "skip":
        skipped.append(skip(record, problem, str(path)))
        return
    hint = f" ({hint})" if hint else ""
    raise InputError(path, record, f"{problem}{hint}; set missing_sources: skip to leave such samples out")


class SourceProblems:
    """The source errors of one adapter pass, collected so that one run names every bad sample.

    Wrap each sample's source checks in :meth:`sample`: an :class:`InputError` raised inside is kept and the
    loop goes on; :meth:`raise_if_any` then raises one error listing them all (up to ``limit``, then a count).
    """

    def __init__(self, where: Path, limit: int = 0) -> None:
        self.where = where
        self.limit = limit or MAX_LISTED_PROBLEMS
        self.errors: list[InputError] = []

    @contextmanager
    def sample(self) -> Iterator[None]:
        try:
            yield
        except InputError as err:
            self.errors.append(err)

    def raise_if_any(self) -> None:
        """One error: the first problem as usual (its file and record), then every other one on its own line."""
        if not self.errors:
            return
        first, others = self.errors[0], self.errors[1:]
        if not others:
            raise first
        listed = "".join(f"\n  - {err}" for err in others[: self.limit - 1])
        more = len(others) - (self.limit - 1)
        tail = f"\n  ... and {more} more" if more > 0 else ""
        raise InputError(first.path, first.record,
                         f"{first.problem}\n{len(others)} more bad source(s) in {self.where}:{listed}{tail}")


MAX_LISTED_PROBLEMS = 10  # sources named in one error; more are counted


def count_images(folder: Path) -> int:
    """Number of image frames directly inside ``folder`` (scandir: PHOENIX has ~8k folders)."""
    n = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_file() and Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
                n += 1
    return n


_NUMBERED_STEM = re.compile(r"(.*?)(\d+)")


def numbered_image_frames(folder: Path, record: str) -> int:
    """Number of image frames in ``folder``, checked to form one gap-free numbered run from 0 or 1.

    For releases whose frames are numbered (PHOENIX: ``images0001.png`` ...): a missing number would shift
    every later frame in time without any error downstream, so a gap, a name without a number, two name
    patterns or a run that does not start at 0 or 1 is fatal.
    """
    with os.scandir(folder) as entries:
        names = [e.name for e in entries if e.is_file() and Path(e.name).suffix.lower() in IMAGE_SUFFIXES]
    if not names:
        return 0
    numbered: dict[int, str] = {}
    patterns: set[tuple[str, str]] = set()
    for name in names:
        stem, suffix = os.path.splitext(name)
        m = _NUMBERED_STEM.fullmatch(stem)
        if not m:
            raise InputError(folder / name, record, "frame file name carries no frame number, so frames cannot be ordered")
        number = int(m.group(2))
        if number in numbered:
            raise InputError(folder / name, record, f"frame number {number} occurs twice (also {numbered[number]})")
        numbered[number] = name
        patterns.add((m.group(1), suffix.lower()))
    if len(patterns) > 1:
        raise InputError(folder, record, f"frame files mix name patterns {sorted(patterns)}, so frames cannot be ordered")
    first, last = min(numbered), max(numbered)
    example_stem, example_suffix = os.path.splitext(numbered[first])
    prefix = next(iter(patterns))[0]
    width = len(example_stem) - len(prefix)  # zero padding as the files have it (images0001 -> 4)

    def name_of(number: int) -> str:
        return f"{prefix}{number:0{width}d}{example_suffix}"

    start = min(first, 1)  # a run from 2 on has lost its first frame(s)
    missing = [n for n in range(start, last + 1) if n not in numbered]
    if missing:
        shown = ", ".join(name_of(n) for n in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise InputError(folder, record, f"frame numbering has a gap: {shown} missing "
                         f"({len(numbered)} frames numbered {first}..{last})")
    return len(numbered)


_NPY_NAME = re.compile(r"(\d+)\.npy")


def npy_frame_files(folder: Path, record: str) -> list[Path]:
    """The per-frame ``<i>.npy`` files of a folder in numeric order (0, 1, 2, ..., 10), checked for gaps.

    Also used by the keypoint stage to read a MedASL-style folder in the same order.
    """
    indexed: list[tuple[int, Path]] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if not entry.name.lower().endswith(".npy"):
                continue  # e.g. .DS_Store: not a frame
            m = _NPY_NAME.fullmatch(entry.name)
            if not m:
                raise InputError(Path(entry.path), record, "frame file name is not <integer>.npy, so frames cannot be ordered")
            indexed.append((int(m.group(1)), Path(entry.path)))
    indexed.sort()
    for expected, (index, file) in enumerate(indexed):
        if index != expected:
            raise InputError(folder, record, f"frame files are not numbered 0..{len(indexed) - 1}: {expected}.npy is missing")
    return [p for _, p in indexed]


def check_npy_frame(path: Path, record: str) -> None:
    """One frame must hold the 1662 MediaPipe Holistic values (pose 33x4 | face 468x3 | hands 2x21x3).

    Only the header is read (mmap); the keypoint stage validates every frame when it converts the folder.
    """
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise InputError(path, record, f"not a readable .npy file: {err}") from err
    if arr.shape != (FLAT1662_SIZE,):
        raise InputError(
            path, record, f"frame has shape {tuple(arr.shape)} ({arr.size} values); expected ({FLAT1662_SIZE},)"
        )


def probe_video(path: Path, record: str) -> tuple[float, int]:
    """(fps, frame count) from the container, without decoding; an unreadable file is fatal."""
    import cv2  # heavy import, only for datasets with video files

    if path.stat().st_size == 0:
        raise InputError(path, record, "video file is empty (0 bytes)")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise InputError(path, record, "video cannot be opened (corrupt or unsupported codec)")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        n_frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        cap.release()
    if n_frames <= 0:
        raise InputError(path, record, "video reports no frames")
    return fps, n_frames


@dataclass(frozen=True)
class SourceInfo:
    source: str
    source_kind: str
    fps: float
    n_frames: int


def describe_source(
    path: Path, record: str, default_fps: float | None, policy: str, skipped: list[dict[str, str]]
) -> SourceInfo | None:
    """Classify and measure a user-supplied source: a video file, a frame folder, or a per-frame npy folder.

    Returns None when the source is missing or empty and the policy is ``skip`` (the skip is recorded).
    ``default_fps`` applies to folders (they carry no rate) and to videos whose container reports none.
    """
    if path.is_file():
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise InputError(path, record, f"not a video file (expected one of {', '.join(VIDEO_SUFFIXES)}) or a folder")
        if path.stat().st_size == 0:
            missing_source(policy, path, record, "empty video file", skipped, hint="0 bytes")
            return None
        fps, n_frames = probe_video(path, record)
        fps = fps if fps > 0 else (default_fps or 0.0)
        if fps <= 0:
            raise InputError(path, record, "video reports no frame rate and the dataset sets no fps")
        return SourceInfo(str(path), "video", fps, n_frames)
    if not path.is_dir():
        missing_source(policy, path, record, "missing source", skipped)
        return None
    npy = npy_frame_files(path, record)
    if npy:
        check_npy_frame(npy[0], record)
        kind, n_frames = "npy", len(npy)
    else:
        kind, n_frames = "frames", count_images(path)
    if n_frames == 0:
        missing_source(policy, path, record, "empty source folder", skipped)
        return None
    if not default_fps:
        raise InputError(path, record, "a frame folder carries no frame rate: set the dataset's fps in the config")
    return SourceInfo(str(path), kind, float(default_fps), n_frames)


def progress(items: Iterable[Any], desc: str, total: int | None = None) -> Iterable[Any]:
    """A tqdm bar on interactive terminals only (logs stay readable under Snakemake/SLURM)."""
    from tqdm import tqdm

    return tqdm(items, desc=desc, total=total, disable=not sys.stderr.isatty(), leave=False)


def make_row(
    sample_id: str, split: str, signer: str, gloss: str, text: str, source: str, source_kind: str, fps: float,
    n_frames: int, fold: int = -1,
) -> dict[str, Any]:
    return {
        "sample_id": sample_id, "split": split, "fold": int(fold), "signer": signer, "gloss": gloss, "text": text,
        "source": source, "source_kind": source_kind, "fps": float(fps), "n_frames": int(n_frames),
    }


# ------------------------------------------------------------------------------------ cross-validation


def cv_settings(dataset: str, ds_cfg: dict[str, Any]) -> tuple[int, float]:
    cv = ds_cfg.get("cross_validation")
    if not cv:
        raise ConfigError(
            f"config key 'datasets.{dataset}.cross_validation': adapter '{ds_cfg['adapter']}' has no predefined "
            "splits, so cross-validation must be configured (e.g. {folds: 5, test_fraction: 0.2})"
        )
    return int(cv.get("folds", 5)), float(cv.get("test_fraction", 0.2))


def reject_cross_validation(dataset: str, ds_cfg: dict[str, Any]) -> None:
    """Datasets with official splits (PHOENIX14T, Isharah) are evaluated on them, as the paper does."""
    if ds_cfg.get("cross_validation"):
        raise ConfigError(
            f"config key 'datasets.{dataset}.cross_validation': adapter '{ds_cfg['adapter']}' uses the release's "
            "predefined splits; remove cross_validation"
        )


def reject_translation_tasks(dataset: str, ds_cfg: dict[str, Any], what: str) -> None:
    """Releases without spoken-language text (``what`` says what they hold) can run no translation task;
    recognition alone (``sign2gloss``, glosses from video) needs no text and stays allowed."""
    tasks = [t for t in ds_cfg.get("tasks", []) if "text" in TASK_NEEDS.get(t, frozenset({"text"}))]
    if tasks:
        raise ConfigError(f"config key 'datasets.{dataset}.tasks': {what}, so no translation task "
                          f"({', '.join(tasks)}) can run on it; set tasks: [] or [sign2gloss]")


def assign_cross_validation(
    groups: Iterable[str], folds: int, test_fraction: float, seed: int
) -> dict[str, tuple[str, int]]:
    """Split group keys into a held-out test part and K trainval folds: ``{key: (split, fold)}``.

    The keys are sorted before a seeded permutation, so the assignment depends only on the set of keys and
    the seed, never on file order. Rows sharing a key (paraphrases of one video) land in the same part.
    The first ``round(n * test_fraction)`` permuted keys are test (fold -1); the rest are dealt round-robin
    into folds 0..K-1, so fold sizes differ by at most one.
    """
    keys = sorted(set(groups))
    if not keys:
        return {}
    order = np.random.default_rng(seed).permutation(len(keys))
    n_test = int(round(len(keys) * test_fraction))
    if len(keys) >= 2:  # keep both parts non-empty whenever that is possible
        n_test = min(max(n_test, 1), len(keys) - 1)
    out: dict[str, tuple[str, int]] = {}
    for rank, idx in enumerate(order):
        key = keys[int(idx)]
        if rank < n_test:
            out[key] = ("test", -1)
        else:
            out[key] = ("trainval", (rank - n_test) % folds)
    return out
