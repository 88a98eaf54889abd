"""``hatl resize``: decode and resize one manifest shard of videos or frame folders into a clip shard (.npz)."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from hatl.config import dataset_config, effective_config, load_config
from hatl.provenance import provenance
from hatl.video.resize import ResizeConfig, read_shard, resize_shard

log = logging.getLogger("hatl.resize")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, type=Path, help="pipeline config YAML")
    parser.add_argument("--dataset", required=True, help="dataset name (a key of `datasets` in the config)")
    parser.add_argument("--manifest", required=True, type=Path, help="results/NAME/manifest.parquet")
    parser.add_argument("--shard", required=True, type=int, help="shard number K (manifest column `shard`)")
    parser.add_argument("--out", required=True, type=Path, help="output clip shard, results/NAME/clips/shard-K.npz")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    dataset_config(config, args.dataset)  # fails early on an unknown dataset name
    cfg = effective_config(config, args.dataset)
    resize = ResizeConfig.from_config(cfg)
    shard = read_shard(args.manifest, args.shard)
    log.info("shard %d of %s: %d %s sample(s) -> %s at %dx%d (%s)", shard.index, args.dataset, len(shard.rows),
             shard.kind, args.out, resize.width, resize.height, resize.interpolation)
    start = time.perf_counter()
    meta = {"dataset": args.dataset, "shard": shard.index, "source_kind": shard.kind,
            "manifest": str(args.manifest), "provenance": provenance(cfg)}
    report = resize_shard(shard, args.out, resize, meta)
    elapsed = time.perf_counter() - start
    log.info("wrote %s: %d sample(s), %d frame(s) in %.1f s (%.0f frames/s); %d frame-count mismatch(es) with the manifest",
             args.out, report.samples, report.frames, elapsed, report.frames / max(elapsed, 1e-9),
             len(report.frame_count_mismatches))
    return 0
