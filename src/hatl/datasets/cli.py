"""``hatl manifest``: build one dataset's manifest (and split file) from its own release layout.

    hatl manifest --config CONFIG --dataset NAME --out results/NAME/manifest.parquet
                  [--splits-out results/NAME/splits.tsv]
"""

from __future__ import annotations

import argparse
import logging

from hatl.config import load_config
from hatl.datasets.manifest import build_manifest, summary_lines, write_manifest

log = logging.getLogger("hatl.manifest")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="pipeline config YAML (validated against the schema)")
    parser.add_argument("--dataset", required=True, help="dataset name (a key of the config's datasets)")
    parser.add_argument("--out", required=True, help="manifest Parquet to write (results/NAME/manifest.parquet)")
    parser.add_argument(
        "--splits-out", default=None,
        help="also write sample_id/split/fold as TSV (results/NAME/splits.tsv) plus <stem>.provenance.json",
    )


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    manifest = build_manifest(config, args.dataset)
    write_manifest(manifest, args.out, args.splits_out)
    for line in summary_lines(manifest):
        log.info("%s", line)
    log.info("wrote %s%s", args.out, f" and {args.splits_out}" if args.splits_out else "")
    return 0
