"""``hatl keypoints``: landmarks of one manifest shard -> results/{ds}/keypoints/shard-{k}.parquet.

By the shard's source kind:
* ``video`` / ``frames``: MediaPipe Holistic on the resized clips (``--clips``, or resized on the fly from
  the sources when it is omitted) or, with ``preprocess.keypoints.input_resolution: native``, on the
  source frames themselves;
* ``npy``: MedASL per-frame 1662-value vectors, converted;
* ``demo``: rows of the demo keypoint file, copied (split taken from the manifest).
Every sample of the shard is written (a sample where nothing was detected is kept with all masks False
and counted); bad input fails the whole shard with nothing written.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from hatl.config import dataset_config, effective_config, load_config
from hatl.errors import ConfigError, InputError
from hatl.keypoint_store import KeypointRecord, write_keypoints
from hatl.keypoints.convert import NPY_RESOLUTION, npy_record, read_demo_records, skeleton_layout, skeleton_record
from hatl.keypoints.holistic import HolisticConfig, HolisticExtractor
from hatl.landmarks import Layout, build_layout, select_from_groups
from hatl.provenance import provenance
from hatl.video.resize import ResizeConfig, Shard, iter_shard_samples, manifest_fps, read_shard

log = logging.getLogger("hatl.keypoints")
PROGRESS_EVERY = 8  # samples between progress lines in the log (the tqdm bar shows only on a terminal)


@dataclass
class ShardReport:
    """What one shard produced: counts per group, samples with no detection at all, frame-count mismatches."""

    groups: tuple[str, ...]
    samples: int = 0
    frames: int = 0
    detected_frames: dict[str, int] = field(default_factory=dict)
    empty_samples: list[str] = field(default_factory=list)
    frame_count_mismatches: list[dict[str, Any]] = field(default_factory=list)

    def add(self, rec: KeypointRecord, manifest_frames: int | None) -> None:
        self.samples += 1
        self.frames += rec.n_frames
        counts = rec.mask.sum(axis=0)
        for g, n in zip(self.groups, counts):
            self.detected_frames[g] = self.detected_frames.get(g, 0) + int(n)
        if not rec.mask.any():
            self.empty_samples.append(rec.sample_id)
        if manifest_frames is not None and manifest_frames != rec.n_frames:
            self.frame_count_mismatches.append({"sample_id": rec.sample_id, "manifest": manifest_frames, "extracted": rec.n_frames})

    def detection_rate(self) -> dict[str, float]:
        return {g: self.detected_frames.get(g, 0) / self.frames if self.frames else 0.0 for g in self.groups}

    def to_dict(self) -> dict[str, Any]:
        return {"samples": self.samples, "frames": self.frames, "detected_frames": self.detected_frames,
                "detection_rate": self.detection_rate(), "empty_samples": self.empty_samples,
                "frame_count_mismatches": self.frame_count_mismatches}


@dataclass(frozen=True)
class KeypointSettings:
    """The slice of the (effective) config this stage uses."""

    layout: Layout
    holistic: HolisticConfig
    resize: ResizeConfig
    input_resolution: str  # resized | native
    adapter: str

    @classmethod
    def from_config(cls, cfg: dict[str, Any], dataset: str) -> KeypointSettings:
        kp = cfg["preprocess"]["keypoints"]
        return cls(
            layout=build_layout(tuple(kp["groups"]), kp["face_subset"]),
            holistic=HolisticConfig.from_config(cfg),
            resize=ResizeConfig.from_config(cfg),
            input_resolution=kp["input_resolution"],
            adapter=dataset_config(cfg, dataset)["adapter"],
        )


def _manifest_frames(row: Any) -> int | None:
    n = row.get("n_frames")
    return None if n is None or pd.isna(n) else int(n)


def extract_frames_shard(shard: Shard, st: KeypointSettings, clips: Path | None,
                         report: ShardReport) -> tuple[list[KeypointRecord], dict[str, Any]]:
    """MediaPipe Holistic over every sample of a video/frames shard."""
    if st.input_resolution == "native" and clips is not None:
        raise ConfigError(f"--clips {clips} was given but preprocess.keypoints.input_resolution is 'native' "
                          "(native input reads the sources; drop --clips or set input_resolution: resized)")
    if "iris" in st.layout.groups and not st.holistic.refine_face_landmarks:
        log.warning("layout has the iris group but refine_face_landmarks is false: iris will never be detected")
    resize = st.resize if st.input_resolution == "resized" else None
    extractor = HolisticExtractor(st.holistic, st.layout.groups)
    rows = {str(r["sample_id"]): r for _, r in shard.rows.iterrows()}
    records = []
    streams = iter_shard_samples(shard, clips, resize)
    start = time.perf_counter()
    for i, stream in enumerate(tqdm(streams, total=len(rows), desc=f"keypoints shard {shard.index}", unit="sample",
                                    disable=None)):
        row = rows[stream.sample_id]
        groups, t = extractor.extract(stream.frames, stream.n_hint)
        coords, mask = select_from_groups(st.layout, groups, t)
        fps = manifest_fps(row) or stream.fps
        rec = KeypointRecord(stream.sample_id, str(row["split"]), coords, mask, fps, stream.width, stream.height)
        report.add(rec, _manifest_frames(row))
        records.append(rec)
        if (i + 1) % PROGRESS_EVERY == 0 or i + 1 == len(rows):  # readable progress in Snakemake/SLURM logs
            elapsed = time.perf_counter() - start
            log.info("shard %d: %d/%d samples, %d frames, %.1f frames/s", shard.index, i + 1, len(rows),
                     report.frames, report.frames / max(elapsed, 1e-9))
    meta = {
        "extractor": st.holistic.settings(),
        "input_resolution": {"mode": st.input_resolution, "width": resize.width if resize else None,
                             "height": resize.height if resize else None,
                             "interpolation": resize.interpolation if resize else None,
                             "clips": str(clips) if clips else None},
    }
    return records, meta


def convert_npy_shard(shard: Shard, st: KeypointSettings, report: ShardReport) -> tuple[list[KeypointRecord], dict[str, Any]]:
    records = []
    for _, row in tqdm(list(shard.rows.iterrows()), desc=f"keypoints shard {shard.index} (npy)", unit="sample", disable=None):
        rec = npy_record(shard.source_path(str(row["source"])), str(row["sample_id"]), str(row["split"]),
                         manifest_fps(row), st.layout, st.adapter)
        report.add(rec, _manifest_frames(row))
        records.append(rec)
    width, height = NPY_RESOLUTION.get(st.adapter, (0, 0))
    meta = {"extractor": {"extractor": "npy-flat1662", "note": "MediaPipe Holistic landmarks released with the dataset"},
            "input_resolution": {"mode": "source", "width": width or None, "height": height or None}}
    return records, meta


def convert_skeleton_shard(shard: Shard, st: KeypointSettings, report: ShardReport) -> tuple[list[KeypointRecord], dict[str, Any], Layout]:
    """Another tracker's skeletons, kept in the adapter's own layout (not the configured MediaPipe groups)."""
    layout = skeleton_layout(st.adapter)
    report.groups = layout.groups
    records = []
    for _, row in shard.rows.iterrows():
        rec = skeleton_record(shard.source_path(str(row["source"])), str(row["sample_id"]), str(row["split"]),
                              manifest_fps(row), st.adapter)
        report.add(rec, _manifest_frames(row))
        records.append(rec)
    meta = {"extractor": {"extractor": f"skeleton-{layout.groups[0]}", "note": "tracker joints released with the dataset"},
            "input_resolution": {"mode": "source"}}
    return records, meta, layout


def copy_demo_shard(shard: Shard, st: KeypointSettings, report: ShardReport) -> tuple[list[KeypointRecord], dict[str, Any]]:
    by_source: dict[str, list[Any]] = {}
    for _, row in shard.rows.iterrows():
        by_source.setdefault(str(row["source"]), []).append(row)
    records: dict[str, KeypointRecord] = {}
    for source, rows in by_source.items():
        path = shard.source_path(source)
        for row, rec in zip(rows, read_demo_records(path, [str(r["sample_id"]) for r in rows], st.layout)):
            rec.split = str(row["split"])
            rec.fps = manifest_fps(row) or rec.fps
            records[rec.sample_id] = rec
    ordered = []
    for _, row in shard.rows.iterrows():
        rec = records[str(row["sample_id"])]
        report.add(rec, _manifest_frames(row))
        ordered.append(rec)
    meta = {"extractor": {"extractor": "demo", "sources": sorted(by_source)}, "input_resolution": {"mode": "source"}}
    return ordered, meta


def keypoints_shard(cfg: dict[str, Any], dataset: str, manifest: Path, shard_index: int, out: Path,
                    clips: Path | None = None) -> ShardReport:
    """Library entry point of the stage: read the shard, produce its records, write the Parquet atomically."""
    st = KeypointSettings.from_config(cfg, dataset)
    shard = read_shard(manifest, shard_index)
    report = ShardReport(st.layout.groups)
    layout = st.layout
    if shard.kind in ("video", "frames"):
        records, meta = extract_frames_shard(shard, st, clips, report)
    elif shard.kind == "npy":
        records, meta = convert_npy_shard(shard, st, report)
    elif shard.kind == "demo":
        records, meta = copy_demo_shard(shard, st, report)
    elif shard.kind == "skeleton":
        records, meta, layout = convert_skeleton_shard(shard, st, report)
    else:
        raise InputError(manifest, f"shard {shard_index}", f"unknown source kind {shard.kind!r}")
    if clips is not None and shard.kind not in ("video", "frames"):
        log.warning("--clips %s ignored: shard %d holds %s samples", clips, shard_index, shard.kind)
    meta = {"stage": "keypoints", "dataset": dataset, "shard": shard_index, "source_kind": shard.kind,
            "manifest": str(manifest), **meta, "report": report.to_dict(), "provenance": provenance(cfg)}
    write_keypoints(out, records, layout, meta)
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, type=Path, help="pipeline config YAML")
    parser.add_argument("--dataset", required=True, help="dataset name (a key of `datasets` in the config)")
    parser.add_argument("--manifest", required=True, type=Path, help="results/NAME/manifest.parquet")
    parser.add_argument("--shard", required=True, type=int, help="shard number K (manifest column `shard`)")
    parser.add_argument("--clips", type=Path, default=None,
                        help="clip shard from `hatl resize` (video/frames shards, resized input); "
                             "omitted: the sources are decoded (and resized) here")
    parser.add_argument("--out", required=True, type=Path, help="output, results/NAME/keypoints/shard-K.parquet")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    dataset_config(config, args.dataset)
    cfg = effective_config(config, args.dataset)
    start = time.perf_counter()
    report = keypoints_shard(cfg, args.dataset, args.manifest, args.shard, args.out, args.clips)
    elapsed = time.perf_counter() - start
    rates = ", ".join(f"{g} {r:.1%}" for g, r in report.detection_rate().items())
    log.info("wrote %s: %d sample(s), %d frame(s) in %.1f s (%.1f frames/s)", args.out, report.samples,
             report.frames, elapsed, report.frames / max(elapsed, 1e-9))
    log.info("shard %d detection rate per group: %s", args.shard, rates)
    if report.empty_samples:
        log.warning("shard %d: %d sample(s) with nothing detected (kept, all masks False): %s", args.shard,
                    len(report.empty_samples), ", ".join(report.empty_samples[:10]))
    if report.frame_count_mismatches:
        log.warning("shard %d: %d sample(s) whose frame count differs from the manifest: %s", args.shard,
                    len(report.frame_count_mismatches), report.frame_count_mismatches[:5])
    return 0
