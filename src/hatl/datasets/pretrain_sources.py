"""``hatl pretrain-data``: a backbone-pretraining source's manifest and keypoint shards.

A pretraining source (``backbone.pretrain.sources``, e.g. ``isl_kinect``) is a dataset that no translation run
uses, so it is not listed under ``datasets``. This stage gives it the same two products every dataset has,
through the same code: the adapter's rows go through :func:`hatl.datasets.manifest.build_manifest` into
``manifest.parquet``, and each shard through :func:`hatl.keypoints.cli.keypoints_shard` into
``keypoints/shard-K.parquet`` (the adapter's own skeleton layout). The source's dataset entry is
``{adapter: <source>, root: backbone.pretrain.roots[<source>], tasks: []}``.
"""

from __future__ import annotations

import argparse
import copy
import logging
from pathlib import Path
from typing import Any

from hatl.config import load_config, validate_config
from hatl.errors import ConfigError

log = logging.getLogger("hatl.pretrain_data")

# source name -> adapter (today each source is read by the adapter of the same name)
SOURCE_ADAPTERS: dict[str, str] = {"isl_kinect": "isl_kinect"}


def pretrain_section(config: dict[str, Any]) -> dict[str, Any]:
    return dict(config.get("backbone", {}).get("pretrain", {}) or {})


def source_config(config: dict[str, Any], source: str) -> dict[str, Any]:
    """The config with ``source`` as its only dataset (validated, defaults filled)."""
    section = pretrain_section(config)
    if source not in SOURCE_ADAPTERS:
        raise ConfigError(f"pretraining source {source!r} is unknown; known: {', '.join(SOURCE_ADAPTERS)}")
    root = (section.get("roots") or {}).get(source)
    if not root:
        raise ConfigError(f"config key 'backbone.pretrain.roots.{source}': the release folder of pretraining source "
                          f"{source!r} is not configured")
    out = copy.deepcopy(config)
    out["datasets"] = {source: {"adapter": SOURCE_ADAPTERS[source], "root": root, "tasks": []}}
    # a pretrain_demo source names a translation dataset, absent here; it plays no part in this stage
    out.get("backbone", {}).get("pretrain_demo", {}).pop("source", None)
    return validate_config(out)


def write_source_data(config: dict[str, Any], source: str, out_dir: Path) -> dict[str, Any]:
    """Write ``<out_dir>/manifest.parquet``, ``splits.tsv`` and ``keypoints/shard-K.parquet``; returns the manifest meta."""
    from hatl.datasets.manifest import build_manifest, summary_lines, write_manifest
    from hatl.keypoints.cli import keypoints_shard

    cfg = source_config(config, source)
    manifest = build_manifest(cfg, source)
    for line in summary_lines(manifest):
        log.info("%s", line)
    manifest_path = out_dir / "manifest.parquet"
    write_manifest(manifest, manifest_path, out_dir / "splits.tsv")
    for shard in sorted(manifest.frame["shard"].unique()):
        keypoints_shard(cfg, source, manifest_path, int(shard), out_dir / "keypoints" / f"shard-{int(shard)}.parquet")
    log.info("wrote %s and %d keypoint shard(s)", manifest_path, manifest.meta["n_shards"])
    return manifest.meta


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, type=Path, help="pipeline config YAML")
    parser.add_argument("--source", required=True, help="pretraining source (an entry of backbone.pretrain.sources)")
    parser.add_argument("--out-dir", required=True, type=Path, help="e.g. results/pretraining/isl_kinect")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    write_source_data(config, args.source, args.out_dir)
    return 0
