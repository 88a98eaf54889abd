"""Stage 1: decode the videos / frame folders of one manifest shard, resize them, store them as one clip shard.

Storage format (``results/{ds}/clips/shard-{k}.npz``)
    One ZIP archive per shard in NumPy's ``.npz`` layout: member ``s00000.npy`` ... holds sample i's frames
    as a (T, H, W, 3) uint8 RGB array, and ``meta.json`` holds the shard index (sample id, member name,
    frame count, fps, source resolution, source path, per sample) plus the resize settings and provenance.

    Why this format:
    * lossless uint8: MediaPipe later sees exactly the pixels ``cv2.resize`` produced (a lossy re-encode,
      e.g. mp4v, would add compression artefacts at 52x65, where every pixel counts);
    * one file per shard, not one per sample or per frame, keeps the file count low on cluster filesystems
      (PHOENIX14T alone has ~950k frame PNGs);
    * members are stored, not deflated: deflate saved only ~12% on the resized real clip (0.88 of the raw
      size) because quarter-resolution frames carry little redundancy, so it would cost CPU for nothing;
    * random access by sample id: the ZIP directory lets :class:`ClipShard` read one sample's member
      without touching the others, and ``numpy.load`` can still open the file (``meta.json`` is plain JSON,
      readable with ``unzip -p shard-0.npz meta.json``).
    * the archive is streamed sample by sample, so a shard never has to fit in memory at once.

Sources are read with OpenCV: videos with ``cv2.VideoCapture``; frame folders as the PNG/JPG files sorted
naturally (``images2`` before ``images10``). Frames are converted BGR -> RGB once, at decode time.

When ``preprocess.keypoints.input_resolution`` is ``native`` the keypoint stage reads the sources itself
through :func:`open_sample` (no resize) and the clip shard is not needed; :func:`iter_shard_samples` is the
single entry point that serves frames either from a clip shard or from the sources.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from tqdm import tqdm

from hatl.errors import InputError
from hatl.io import atomic_path

log = logging.getLogger(__name__)

CLIP_FORMAT = "hatl-clips/1"
META_MEMBER = "meta.json"
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")  # as the manifest stage counts them
INTERPOLATIONS: dict[str, int] = {
    "area": cv2.INTER_AREA,
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "nearest": cv2.INTER_NEAREST,
}
# A container that declares N frames but decodes fewer is truncated or corrupt (measured: a real mp4 cut to
# half decodes 23 of 58 frames with no error from OpenCV). Containers whose count is estimated from the
# duration (mkv/webm) can be off by a frame or two, hence the small tolerance.
FRAME_COUNT_TOLERANCE = 2
FRAME_KINDS = ("video", "frames")


@dataclass(frozen=True)
class ResizeConfig:
    """``preprocess.resize``: target size in pixels (cv2's dsize is (width, height)) and interpolation."""

    width: int = 52
    height: int = 65
    interpolation: str = "area"

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ResizeConfig:
        section = config.get("preprocess", {}).get("resize", {})
        return cls(**{k: section[k] for k in ("width", "height", "interpolation") if k in section})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SampleStream:
    """One sample's frames, possibly not decoded yet: ``frames`` yields RGB uint8 (H, W, 3) arrays.

    ``width``/``height`` describe the frames ``frames`` yields; ``source_*`` the original recording.
    ``n_hint`` is the expected frame count (exact for clip shards, the container's claim for videos).
    """

    sample_id: str
    fps: float
    width: int
    height: int
    source_width: int
    source_height: int
    n_hint: int
    frames: Iterable[np.ndarray]
    source: str = ""


@dataclass
class Shard:
    """The manifest rows of one shard, all of one source kind, plus the manifest's dataset root."""

    manifest: Path
    index: int
    kind: str
    rows: pd.DataFrame
    root: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def source_path(self, source: str) -> Path:
        return resolve_source(source, self.root)


# --------------------------------------------------------------------------------------------- manifest
def read_manifest(path: str | Path) -> pd.DataFrame:
    """The manifest as a DataFrame, through the dataset stage's reader (it checks file and columns)."""
    from hatl.datasets.manifest import read_manifest as dataset_reader

    return dataset_reader(path)


def manifest_meta(path: str | Path) -> dict[str, Any]:
    """The manifest's ``hatl`` metadata, or {} for a bare manifest (e.g. one written by hand with pandas)."""
    md = pq.read_schema(path).metadata or {}
    raw = md.get(b"hatl")
    return json.loads(raw) if raw else {}


def read_shard(manifest: str | Path, shard: int) -> Shard:
    """Rows of shard ``shard`` (in manifest order); errors if it is empty or mixes source kinds."""
    manifest = Path(manifest)
    df = read_manifest(manifest)
    rows = df[df["shard"] == shard].reset_index(drop=True)
    if rows.empty:
        known = sorted(int(s) for s in df["shard"].unique())
        raise InputError(manifest, f"shard {shard}", f"no samples in this shard (shards present: {known})")
    dupes = rows["sample_id"][rows["sample_id"].duplicated()].tolist()
    if dupes:
        raise InputError(manifest, f"shard {shard}", f"duplicate sample ids {dupes[:5]}")
    kinds = sorted(rows["source_kind"].unique())
    if len(kinds) != 1:
        raise InputError(manifest, f"shard {shard}", f"shard mixes source kinds {kinds}")
    meta = manifest_meta(manifest)
    if meta.get("annotation_only"):
        raise InputError(manifest, f"shard {shard}", "annotation-only manifest: it has no sources to decode or extract")
    root = meta.get("root")
    return Shard(manifest, shard, kinds[0], rows, Path(root) if root else None, meta)


def resolve_source(source: str, root: Path | None) -> Path:
    """Absolute sources as they are; relative ones under the manifest's root if there, else from the cwd."""
    path = Path(source)
    if path.is_absolute() or root is None:
        return path
    under_root = root / path
    if under_root.exists() or not path.exists():
        return under_root
    return path


def manifest_fps(row: pd.Series) -> float:
    fps = row.get("fps")
    return float(fps) if fps is not None and not pd.isna(fps) and float(fps) > 0 else 0.0


# --------------------------------------------------------------------------------------------- decoding
def natural_key(name: str) -> tuple:
    """Sort key that orders embedded numbers numerically: ``images2`` < ``images10``."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name) if part)


def list_frame_files(folder: Path, sample_id: str) -> list[Path]:
    """The PNG/JPG/BMP frames of a frame folder in natural order; other files are logged, not read."""
    if not folder.is_dir():
        raise InputError(folder, sample_id, "frame folder does not exist" if not folder.exists() else "not a folder")
    with os.scandir(folder) as entries:  # scandir: no extra stat per file (PHOENIX folders hold ~100-300 frames)
        files = [Path(e.path) for e in entries if e.is_file()]
    frames = sorted((p for p in files if p.suffix.lower() in FRAME_SUFFIXES), key=lambda p: natural_key(p.name))
    if not frames:
        raise InputError(folder, sample_id, "frame folder holds no PNG/JPG/BMP frames (zero frames)")
    if len(frames) != len(files):
        log.info("%s [%s]: ignored %d non-image file(s)", folder, sample_id, len(files) - len(frames))
    return frames


def resize_frame(rgb: np.ndarray, resize: ResizeConfig) -> np.ndarray:
    return cv2.resize(rgb, (resize.width, resize.height), interpolation=INTERPOLATIONS[resize.interpolation])


def _video_frames(cap: cv2.VideoCapture, path: Path, sample_id: str, declared: int,
                  resize: ResizeConfig | None) -> Iterator[np.ndarray]:
    count = 0
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            yield resize_frame(rgb, resize) if resize else rgb
            count += 1
    finally:
        cap.release()
    if count == 0:
        raise InputError(path, sample_id, "video has zero decodable frames")
    if declared > 0 and count < declared - FRAME_COUNT_TOLERANCE:
        raise InputError(path, sample_id, f"decoding stopped after {count} of {declared} frames (truncated or corrupt video)")


def _folder_frames(files: list[Path], sample_id: str, first: np.ndarray,
                   resize: ResizeConfig | None) -> Iterator[np.ndarray]:
    shape = first.shape
    for i, path in enumerate(files):
        bgr = first if i == 0 else cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise InputError(path, sample_id, "unreadable or corrupt image frame")
        if bgr.shape != shape:
            raise InputError(path, sample_id, f"frame is {bgr.shape[1]}x{bgr.shape[0]}, the first frame is {shape[1]}x{shape[0]}")
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        yield resize_frame(rgb, resize) if resize else rgb


def check_video_file(path: Path, sample_id: str) -> None:
    """What can be said of a video without opening it: it exists and is not empty (OpenCV reports a
    zero-byte file only as 'cannot open')."""
    if not path.is_file():
        raise InputError(path, sample_id, "video file does not exist" if not path.exists() else "not a file")
    if path.stat().st_size == 0:
        raise InputError(path, sample_id, "video file is empty (0 bytes)")


def check_sources(shard: Shard) -> None:
    """Every source of the shard exists and is not empty, checked before any decoding so that one run
    names all such samples (up to a limit), not only the first."""
    from hatl.datasets.base import SourceProblems

    problems = SourceProblems(shard.manifest)
    for _, row in shard.rows.iterrows():
        path, sample_id = shard.source_path(str(row["source"])), str(row["sample_id"])
        with problems.sample():
            if shard.kind == "video":
                check_video_file(path, sample_id)
            elif not path.is_dir():
                raise InputError(path, sample_id, "frame folder does not exist" if not path.exists() else "not a folder")
    problems.raise_if_any()


def open_sample(path: Path, kind: str, sample_id: str, fps: float = 0.0,
                resize: ResizeConfig | None = None) -> SampleStream:
    """Open one video or frame folder; frames are decoded lazily (and resized when ``resize`` is given).

    Opening checks what can be checked up front (the file/folder exists and opens); the frame count is
    checked when the stream is exhausted, so bad input raises :class:`InputError` either here or while
    iterating. ``fps`` is the manifest's value, used when the container carries none (frame folders).
    """
    if kind == "video":
        check_video_file(path, sample_id)
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            cap.release()
            raise InputError(path, sample_id, "cannot open video (unreadable or corrupt file)")
        src_w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        src_h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        declared = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
        container_fps = cap.get(cv2.CAP_PROP_FPS)
        if container_fps and math.isfinite(container_fps) and container_fps > 0:
            fps = float(container_fps)
        frames: Iterable[np.ndarray] = _video_frames(cap, path, sample_id, declared, resize)
        n_hint = declared
    elif kind == "frames":
        files = list_frame_files(path, sample_id)
        first = cv2.imread(str(files[0]), cv2.IMREAD_COLOR)
        if first is None:
            raise InputError(files[0], sample_id, "unreadable or corrupt image frame")
        src_h, src_w = first.shape[:2]
        frames = _folder_frames(files, sample_id, first, resize)
        n_hint = len(files)
    else:
        raise InputError(path, sample_id, f"source kind {kind!r} has no frames to decode (expected video or frames)")
    width, height = (resize.width, resize.height) if resize else (src_w, src_h)
    return SampleStream(sample_id, fps, width, height, src_w, src_h, n_hint, frames, str(path))


def collect(stream: SampleStream) -> np.ndarray:
    """Decode a stream into one (T, H, W, 3) uint8 array (preallocated from the hint, grown if needed)."""
    out = np.empty((max(stream.n_hint, 1), stream.height, stream.width, 3), dtype=np.uint8)
    t = 0
    for frame in stream.frames:
        if t == len(out):
            out = np.concatenate([out, np.empty_like(out)])
        out[t] = frame
        t += 1
    return out[:t]


# --------------------------------------------------------------------------------------------- clip shards
def write_clip_shard(path: str | Path, samples: Iterable[SampleStream], meta: dict[str, Any]) -> list[dict[str, Any]]:
    """Stream samples into an .npz clip shard atomically; returns the per-sample index written to meta.json."""
    index: list[dict[str, Any]] = []
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for i, stream in enumerate(samples):
            frames = collect(stream)
            member = f"s{i:05d}"
            with zf.open(f"{member}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, frames, allow_pickle=False)
            index.append({
                "sample_id": stream.sample_id, "member": member, "n_frames": int(len(frames)), "fps": stream.fps,
                "width": stream.width, "height": stream.height,
                "source_width": stream.source_width, "source_height": stream.source_height, "source": stream.source,
            })
        zf.writestr(META_MEMBER, json.dumps({"format": CLIP_FORMAT, **meta, "samples": index}, default=str))
    return index


class ClipShard:
    """Read access to a clip shard: its index, and any sample's frames by id without reading the others."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(self.path, None, "clip shard does not exist")
        try:
            self._zip = zipfile.ZipFile(self.path)
            self.meta = json.loads(self._zip.read(META_MEMBER))
        except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, OSError) as err:
            raise InputError(self.path, None, f"not a readable clip shard: {err}") from err
        if self.meta.get("format") != CLIP_FORMAT:
            self._zip.close()
            raise InputError(self.path, None, f"clip shard format {self.meta.get('format')!r} != {CLIP_FORMAT!r}")
        self.samples: list[dict[str, Any]] = self.meta["samples"]
        self._by_id = {s["sample_id"]: s for s in self.samples}

    def __enter__(self) -> ClipShard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    @property
    def sample_ids(self) -> list[str]:
        return [s["sample_id"] for s in self.samples]

    def frames(self, sample_id: str) -> np.ndarray:
        entry = self._by_id.get(sample_id)
        if entry is None:
            raise InputError(self.path, sample_id, "sample is not in this clip shard")
        try:
            with self._zip.open(f"{entry['member']}.npy") as fh:
                arr = np.lib.format.read_array(fh, allow_pickle=False)
        except (KeyError, ValueError, OSError, zipfile.BadZipFile) as err:
            raise InputError(self.path, sample_id, f"cannot read frames: {err}") from err
        if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[0] != entry["n_frames"] or arr.shape[3] != 3:
            raise InputError(self.path, sample_id, f"frames array {arr.dtype}{arr.shape} does not match the index")
        return arr

    def stream(self, sample_id: str) -> SampleStream:
        e = self._by_id.get(sample_id)
        frames = self.frames(sample_id)
        return SampleStream(sample_id, float(e["fps"]), int(e["width"]), int(e["height"]),
                            int(e["source_width"]), int(e["source_height"]), len(frames), frames, str(self.path))


# --------------------------------------------------------------------------------------------- shard entry points
def shard_streams(shard: Shard, resize: ResizeConfig | None) -> Iterator[SampleStream]:
    """Open every sample of a video/frames shard from its sources, in manifest order."""
    if shard.kind not in FRAME_KINDS:
        raise InputError(shard.manifest, f"shard {shard.index}",
                         f"source kind {shard.kind!r} has no frames to decode (resize applies to video and frames shards)")
    check_sources(shard)
    for _, row in shard.rows.iterrows():
        yield open_sample(shard.source_path(str(row["source"])), shard.kind, str(row["sample_id"]),
                          manifest_fps(row), resize)


def check_clips_match(clips: ClipShard, shard: Shard, resize: ResizeConfig) -> None:
    """A clip shard is usable only if it holds exactly this shard's samples, resized with today's settings."""
    want = [str(s) for s in shard.rows["sample_id"]]
    if sorted(clips.sample_ids) != sorted(want):
        missing = sorted(set(want) - set(clips.sample_ids))
        extra = sorted(set(clips.sample_ids) - set(want))
        raise InputError(clips.path, f"shard {shard.index}",
                         f"clip shard does not match the manifest shard (missing {missing[:5]}, unexpected {extra[:5]})")
    stored = clips.meta.get("resize")
    if stored != resize.to_dict():
        raise InputError(clips.path, None, f"clips were resized with {stored}, the config asks for {resize.to_dict()}")


def iter_shard_samples(shard: Shard, clips: str | Path | None, resize: ResizeConfig | None) -> Iterator[SampleStream]:
    """Frames of every sample in a video/frames shard, in manifest order, for the keypoint stage.

    ``clips`` given: read the resized frames from that clip shard (checked against the manifest and
    ``resize``). Otherwise decode the sources, resizing on the fly when ``resize`` is given (the same code
    path as ``hatl resize``, so identical pixels) or passing native frames when it is None.
    """
    if clips is None:
        yield from shard_streams(shard, resize)
        return
    if resize is None:
        raise InputError(clips, None, "clip shard given but the input resolution is native (sources are read directly)")
    with ClipShard(clips) as store:
        check_clips_match(store, shard, resize)
        for sid in shard.rows["sample_id"]:
            yield store.stream(str(sid))


@dataclass
class ResizeReport:
    samples: int
    frames: int
    frame_count_mismatches: list[dict[str, Any]]


def resize_shard(shard: Shard, out: str | Path, resize: ResizeConfig, meta: dict[str, Any]) -> ResizeReport:
    """Decode, resize and store every sample of ``shard``; nothing is written unless all samples succeed."""
    expected = {str(r["sample_id"]): int(r["n_frames"]) for _, r in shard.rows.iterrows() if not pd.isna(r["n_frames"])}
    streams = tqdm(shard_streams(shard, resize), total=len(shard.rows), desc=f"resize shard {shard.index}",
                   unit="sample", disable=None)
    index = write_clip_shard(out, streams, {**meta, "resize": resize.to_dict()})
    mismatches = [
        {"sample_id": e["sample_id"], "manifest": expected[e["sample_id"]], "decoded": e["n_frames"]}
        for e in index if e["sample_id"] in expected and expected[e["sample_id"]] != e["n_frames"]
    ]
    for m in mismatches:
        log.warning("%s [%s]: manifest says %d frames, decoded %d", shard.manifest, m["sample_id"], m["manifest"], m["decoded"])
    return ResizeReport(len(index), sum(e["n_frames"] for e in index), mismatches)
