"""``hatl demo-data``: write one embedded synthetic demo dataset.

    hatl demo-data --config CONFIG --dataset NAME --out-dir results/NAME/demo
"""

from __future__ import annotations

import argparse
import logging

from hatl.config import dataset_config, load_config
from hatl.errors import ConfigError

log = logging.getLogger("hatl.demo")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="pipeline config YAML (validated against the schema)")
    parser.add_argument("--dataset", required=True, help="dataset name (a key of the config's datasets)")
    parser.add_argument("--out-dir", required=True,
                        help="demo folder to write, replaced atomically (results/NAME/demo)")


def run(args: argparse.Namespace) -> int:
    from hatl.demo.generator import write_demo

    config = load_config(args.config)
    adapter = dataset_config(config, args.dataset)["adapter"]
    if adapter != "demo":
        raise ConfigError(f"config key 'datasets.{args.dataset}.adapter' is {adapter!r}; demo-data only writes "
                          "datasets whose adapter is 'demo'")
    facts = write_demo(config, args.dataset, args.out_dir)
    log.info("%s: wrote %s (profile %s): samples %s, clips %s, %d signers, gloss/text vocabulary %d/%d, "
             "frames %s, reordered %.0f%%, frames missing a hand %d/%d, %.1f s",
             args.dataset, args.out_dir, facts["profile"], facts["samples"], facts["clips"], facts["signers"],
             facts["gloss_vocabulary"], facts["text_vocabulary"], facts["frames"], 100 * facts["reordered_share"],
             facts["frames_missing_a_hand"], facts["total_frames"], facts["seconds"])
    return 0
