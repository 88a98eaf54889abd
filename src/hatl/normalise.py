"""Centre, rescale and gap-fill keypoints into one training-ready Parquet per split (``hatl normalise``).

What ``preprocess.normalise.centre`` and ``preprocess.normalise.fill`` do, fallbacks included, is in
config/README.md. Why the shoulders: in upper-body signing video they are the body points MediaPipe
detects most reliably, they barely move while signing, and their distance is a stable, signer-specific
measure, so anchoring on them removes where the signer stands and how far from the camera, which the
landmark coordinates (fractions of the image) otherwise encode. Masks are never changed: the model still
knows which frames were observed.

Output: ``{split}.parquet`` per split in the manifest (keypoint schema + ``gloss``, ``text``, ``signer``,
``fold``) and ``report.json`` (counts, provenance), written into a temporary folder that replaces
``--out-dir`` only when everything succeeded.
"""


from __future__ import annotations

import argparse
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from hatl.config import effective_config, load_config
from hatl.datasets.manifest import read_manifest
from hatl.errors import InputError
from hatl.io import atomic_dir, write_json
from hatl.keypoint_store import KeypointRecord, iter_keypoints, read_meta, records_to_table, schema
from hatl.landmarks import Layout, layout_from_dict
from hatl.provenance import provenance

log = logging.getLogger(__name__)

LEFT_SHOULDER, RIGHT_SHOULDER = 11, 12  # MediaPipe pose indices
EPS = 1e-6
FLUSH_ROWS = 64  # rows buffered per split before they are written (bounded memory on large datasets)
EXTRA_FIELDS = [  # sorted by name: records_to_table orders extra columns that way
    pa.field("fold", pa.int32()),
    pa.field("gloss", pa.string()),
    pa.field("signer", pa.string()),
    pa.field("text", pa.string()),
]

# How a sample was centred: every frame on its own shoulders / some frames on the median shoulders /
# bounding box fallback / nothing detected at all.
METHODS = ("shoulders", "shoulders_median", "bbox", "no_person")


@dataclass(frozen=True)
class NormaliseConfig:
    centre: str = "shoulders"
    fill: str = "interpolate"

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> NormaliseConfig:
        n = cfg.get("preprocess", {}).get("normalise", {}) or {}
        out = cls(centre=str(n.get("centre", "shoulders")), fill=str(n.get("fill", "interpolate")))
        if out.centre != "shoulders":
            raise ValueError(f"unknown centre method {out.centre!r}")
        if out.fill not in ("interpolate", "hold", "zero"):
            raise ValueError(f"unknown fill method {out.fill!r}")
        return out


@dataclass(frozen=True)
class SampleNormalisation:
    """What happened to one sample (aggregated into the report)."""

    method: str
    median_frames: int = 0  # frames centred on the median shoulders (pose missing there)


# --------------------------------------------------------------------------------------------- centring


def _shoulder_columns(layout: Layout) -> tuple[int, int, int] | None:
    """(pose group column in the mask, left shoulder V index, right shoulder V index), or None."""
    if "pose" not in layout.groups:
        return None
    try:
        return layout.groups.index("pose"), layout.index("pose", LEFT_SHOULDER), layout.index("pose", RIGHT_SHOULDER)
    except KeyError:
        return None


def detected_points(coords: np.ndarray, mask: np.ndarray, layout: Layout) -> np.ndarray:
    """(T, V) bool: the joint belongs to a group detected in that frame."""
    point_mask = np.zeros(coords.shape[:2], dtype=bool)
    for gi, sl in enumerate(layout.group_slices().values()):
        point_mask[:, sl] = mask[:, gi : gi + 1]
    return point_mask


def frame_anchors(
    coords: np.ndarray, mask: np.ndarray, layout: Layout
) -> tuple[np.ndarray, np.ndarray, SampleNormalisation]:
    """Per-frame centre (T, 3) and scale (T,) for shoulder centring, with the fallbacks described above."""
    t = coords.shape[0]
    cols = _shoulder_columns(layout)
    if cols is not None and t:
        pose_col, left, right = cols
        mid = (coords[:, left] + coords[:, right]) / 2.0
        # Width in the image plane only: MediaPipe's z is a noisy relative estimate.
        width = np.linalg.norm(coords[:, left, :2] - coords[:, right, :2], axis=1)
        ok = mask[:, pose_col] & (width > EPS)
        if ok.all():
            return mid, width, SampleNormalisation("shoulders")
        if ok.any():
            mid = mid.copy()
            width = width.copy()
            mid[~ok] = np.median(mid[ok], axis=0)
            width[~ok] = np.median(width[ok])
            return mid, width, SampleNormalisation("shoulders_median", int((~ok).sum()))
    points = coords[detected_points(coords, mask, layout)]
    if len(points) == 0:
        return np.zeros((t, 3)), np.ones(t), SampleNormalisation("no_person")
    lo, hi = points.min(axis=0), points.max(axis=0)
    scale = float(max(hi[0] - lo[0], hi[1] - lo[1]))
    scale = scale if scale > EPS else 1.0  # a single detected point: translate only
    return np.tile((lo + hi) / 2.0, (t, 1)), np.full(t, scale), SampleNormalisation("bbox")


def aspect_factor(width: int, height: int) -> float:
    """x-and-z multiplier that puts x in units of the frame height (1 when the frame size is unknown)."""
    return float(width) / float(height) if width > 0 and height > 0 else 1.0


def centre_and_scale(
    landmarks: np.ndarray, mask: np.ndarray, layout: Layout, aspect: float = 1.0
) -> tuple[np.ndarray, SampleNormalisation]:
    """Normalised (T, V, 3) float64 coordinates; undetected joints are set to 0 (filled later)."""
    coords = landmarks.astype(np.float64, copy=True)
    if aspect != 1.0:
        coords[..., 0] *= aspect
        coords[..., 2] *= aspect
    centre, scale, how = frame_anchors(coords, mask, layout)
    out = (coords - centre[:, None, :]) / scale[:, None, None]
    out[~detected_points(coords, mask, layout)] = 0.0
    return out, how


# --------------------------------------------------------------------------------------------- gap filling


def fill_gaps(values: np.ndarray, detected: np.ndarray, method: str) -> np.ndarray:
    """Fill the frames of one group where ``detected`` is False; detected frames are returned unchanged.

    ``values`` is (T, ...); ``detected`` (T,) bool. A group never detected stays zero.
    """
    out = np.array(values, dtype=np.float64, copy=True)
    if detected.all() or len(detected) == 0:
        return out
    if not detected.any() or method == "zero":
        out[~detected] = 0.0
        return out
    seen = np.flatnonzero(detected)
    frames = np.arange(len(detected))
    pos = np.searchsorted(seen, frames, side="right") - 1  # index in `seen` of the last detection at or before t
    prev = seen[np.clip(pos, 0, None)]  # leading gap: pos = -1 -> the first detection
    nxt = seen[np.clip(pos + 1, 0, len(seen) - 1)]
    nxt = np.where(pos < 0, prev, nxt)  # leading gap: both ends are the first detection
    if method == "hold":
        return out[prev]
    if method != "interpolate":
        raise ValueError(f"unknown fill method {method!r}")
    span = (nxt - prev).astype(np.float64)
    w = np.divide(frames - prev, span, out=np.zeros_like(span), where=span > 0)  # trailing gap: span 0 -> hold
    w = w.reshape((-1,) + (1,) * (out.ndim - 1))
    filled = out[prev] * (1.0 - w) + out[nxt] * w
    filled[detected] = out[detected]  # exact, not a round trip through the weights
    return filled


def normalise_sample(
    landmarks: np.ndarray, mask: np.ndarray, layout: Layout, cfg: NormaliseConfig, aspect: float = 1.0
) -> tuple[np.ndarray, SampleNormalisation]:
    """Centre, rescale, then gap-fill each group; returns float32 (T, V, 3)."""
    coords, how = centre_and_scale(landmarks, mask, layout, aspect)
    for gi, sl in enumerate(layout.group_slices().values()):
        coords[:, sl] = fill_gaps(coords[:, sl], mask[:, gi], cfg.fill)
    return coords.astype(np.float32), how


# --------------------------------------------------------------------------------------------- dataset


# What pyarrow raises on a file that is not (or no longer) valid Parquet: truncated, overwritten, half-copied.
_UNREADABLE = (pa.ArrowException, OSError)


def _unreadable(shard: Path, err: Exception) -> InputError:
    return InputError(shard, None, f"keypoint shard is not a readable Parquet file ({type(err).__name__}: {err}); "
                                   "re-create it with `hatl keypoints`")


def _shard_records(shard: Path) -> Iterator[KeypointRecord]:
    """``iter_keypoints`` with a damaged file reported as an InputError naming the shard, not a traceback."""
    try:
        yield from iter_keypoints(shard)
    except _UNREADABLE as err:
        raise _unreadable(shard, err) from err


def _shard_index(shards: Sequence[Path]) -> tuple[Layout, dict[str, Any], dict[str, tuple[Path, str]]]:
    """Check that the shards share one layout and hold each sample once; map sample_id -> (shard, split)."""
    layout: Layout | None = None
    first_meta: dict[str, Any] = {}
    where: dict[str, tuple[Path, str]] = {}
    for shard in shards:
        if not shard.exists():
            raise InputError(shard, None, "keypoint shard does not exist")
        try:
            meta = read_meta(shard)
            table = pq.read_table(shard, columns=["sample_id", "split"])
        except _UNREADABLE as err:
            raise _unreadable(shard, err) from err
        try:
            shard_layout = layout_from_dict(meta["layout"])
        except (KeyError, ValueError) as err:
            raise InputError(shard, "layout", f"invalid layout metadata: {err}") from err
        if layout is None:
            layout, first_meta = shard_layout, meta
        elif shard_layout != layout:
            raise InputError(shard, "layout", f"landmark layout differs from {shards[0]}'s")
        for sid, split in zip(table.column("sample_id").to_pylist(), table.column("split").to_pylist()):
            if sid in where:
                raise InputError(shard, sid, f"sample also appears in {where[sid][0]}")
            where[sid] = (shard, split)
    if layout is None:
        raise InputError(None, None, "no keypoint shards given")
    return layout, first_meta, where


def check_coverage(manifest_path: Path, manifest: Any, where: dict[str, tuple[Path, str]]) -> None:
    """Every manifest sample is in exactly one shard with the same split, and the shards hold nothing else."""
    ids = set(manifest["sample_id"])
    for sid, split in zip(manifest["sample_id"], manifest["split"]):
        if sid not in where:
            raise InputError(manifest_path, sid, "sample is in no keypoint shard given with --keypoints")
        shard, shard_split = where[sid]
        if shard_split != split:
            raise InputError(shard, sid, f"split {shard_split!r} differs from the manifest's {split!r}")
    extra = [sid for sid in where if sid not in ids]
    if extra:
        raise InputError(where[extra[0]][0], extra[0], f"sample is not in the manifest {manifest_path} ({len(extra)} such)")


class _SplitWriter:
    """Buffers records of one split and appends them to its Parquet file in row groups."""

    def __init__(self, path: Path, layout: Layout, meta: dict[str, Any]) -> None:
        self.layout, self.meta = layout, meta
        self.schema = schema(layout, meta, EXTRA_FIELDS)
        self.writer = pq.ParquetWriter(path, self.schema, compression="zstd")
        self.buffer: list[KeypointRecord] = []
        self.rows = 0

    def add(self, rec: KeypointRecord) -> None:
        self.buffer.append(rec)
        if len(self.buffer) >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            table = records_to_table(self.buffer, self.layout, self.meta).cast(self.schema)
            self.writer.write_table(table)
            self.rows += len(self.buffer)
            self.buffer = []

    def close(self) -> None:
        self.flush()
        self.writer.close()


def normalise_dataset(
    manifest_path: str | Path,
    shard_paths: Sequence[str | Path],
    out_dir: str | Path,
    cfg: dict[str, Any],
    dataset: str,
) -> dict[str, Any]:
    """Write ``{split}.parquet`` per manifest split and ``report.json`` into ``out_dir``; return the report."""
    manifest_path = Path(manifest_path)
    shards = [Path(p) for p in shard_paths]
    ncfg = NormaliseConfig.from_config(cfg)
    manifest = read_manifest(manifest_path)
    layout, shard_meta, where = _shard_index(shards)
    check_coverage(manifest_path, manifest, where)  # before any work: a missing sample fails fast
    rows = {sid: row for sid, row in zip(manifest["sample_id"], manifest.to_dict("records"))}

    method = {"centre": ncfg.centre, "fill": ncfg.fill, "aspect": "x and z multiplied by width/height when known"}
    prov = provenance(cfg, dataset=dataset)
    keypoint_meta = {k: v for k, v in shard_meta.items() if k not in ("layout", "channels", "stage", "provenance")}
    meta = {"stage": "normalised", "dataset": dataset, "normalisation": method, "keypoints": keypoint_meta, "provenance": prov}

    counts: dict[str, Counter[str]] = {}
    median_frames = 0
    bar = tqdm(total=len(manifest), desc=f"normalise {dataset}", unit="sample", disable=None)
    with atomic_dir(out_dir) as tmp:
        writers: dict[str, _SplitWriter] = {}
        try:
            for shard in shards:
                for rec in _shard_records(shard):
                    if not np.isfinite(rec.landmarks).all():
                        raise InputError(shard, rec.sample_id, "landmarks contain NaN or infinite values")
                    row = rows[rec.sample_id]
                    coords, how = normalise_sample(
                        rec.landmarks, rec.mask, layout, ncfg, aspect_factor(rec.width, rec.height)
                    )
                    counts.setdefault(row["split"], Counter())[how.method] += 1
                    median_frames += how.median_frames
                    if how.method in ("bbox", "no_person"):
                        log.debug("%s: centred by %s", rec.sample_id, how.method)
                    out = KeypointRecord(
                        sample_id=rec.sample_id, split=row["split"], landmarks=coords, mask=rec.mask,
                        fps=rec.fps, width=rec.width, height=rec.height,
                        extra={"gloss": row["gloss"], "text": row["text"], "signer": row["signer"], "fold": int(row["fold"])},
                    )
                    split = row["split"]
                    if split not in writers:
                        writers[split] = _SplitWriter(tmp / f"{split}.parquet", layout, meta)
                    writers[split].add(out)
                    bar.update(1)
        finally:
            for w in writers.values():
                w.close()
            bar.close()
        report = {
            "dataset": dataset,
            "manifest": str(manifest_path),
            "shards": [str(s) for s in shards],
            "normalisation": method,
            "samples": {s: int(w.rows) for s, w in sorted(writers.items())},
            "centring": {s: {m: int(c.get(m, 0)) for m in METHODS} for s, c in sorted(counts.items())},
            "frames_on_median_shoulders": int(median_frames),
            "skipped": [],  # every manifest sample is written; bad input raises instead
            "provenance": prov,
        }
        write_json(tmp / "report.json", report)
    total = Counter()
    for c in counts.values():
        total.update(c)
    log.info(
        "normalised %d samples into %s (%s): %s; %d frames centred on the sequence's median shoulders",
        sum(report["samples"].values()), out_dir, ", ".join(f"{s} {n}" for s, n in report["samples"].items()),
        ", ".join(f"{m} {total.get(m, 0)}" for m in METHODS), median_frames,
    )
    if total.get("bbox") or total.get("no_person"):
        log.warning(
            "%d sample(s) had no shoulder detection and were centred on their bounding box; "
            "%d had no person detected at all (left at zero)", total.get("bbox", 0), total.get("no_person", 0),
        )
    return report


# --------------------------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="pipeline config YAML")
    parser.add_argument("--dataset", required=True, help="dataset name (a key of datasets: in the config)")
    parser.add_argument("--manifest", required=True, help="results/{ds}/manifest.parquet")
    parser.add_argument("--keypoints", required=True, nargs="+", help="keypoint shard Parquet files (all of them)")
    parser.add_argument("--out-dir", required=True, help="output folder: {split}.parquet and report.json")


def run(args: argparse.Namespace) -> int:
    cfg = effective_config(load_config(args.config), args.dataset)
    normalise_dataset(args.manifest, args.keypoints, args.out_dir, cfg, args.dataset)
    return 0
