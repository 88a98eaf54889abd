"""A randomly initialised backbone (``hatl random-backbone``): the "no pretraining" row of the pretraining table.

Written in the same ``hatl.stgcnpp/1`` format as ``hatl import-backbone``'s output, on the configured MediaPipe
graph, seeded by the config's ``seed``, so a run trained on it differs from the pretrained rows only in the
backbone's starting weights.
"""

from __future__ import annotations

import argparse
import logging

import torch

from hatl.config import effective_config, load_config
from hatl.io import write_json
from hatl.models.backbone_source import NONE
from hatl.models.checkpoint import ImportReport, ImportResult, new_backbone, save_backbone, target_layout
from hatl.models.graph import mediapipe_graph
from hatl.provenance import provenance

log = logging.getLogger(__name__)


def random_backbone(config: dict) -> ImportResult:
    torch.manual_seed(int(config.get("seed", 1234)))
    model = new_backbone(config)
    graph = mediapipe_graph(target_layout(config))  # the graph new_backbone builds on
    report = ImportReport(source="none", source_format="random initialisation", source_layout="none",
                          target_graph=graph.name)
    for key, value in model.state_dict().items():
        report.add(key, "reinitialised", None, tuple(value.shape), "no pretraining: PyTorch's default initialisation")
    report.notes.append("no checkpoint: every weight randomly initialised (seed from the config)")
    # provenance "none": no pretrained weights, so the table row's label says so (not "unknown")
    return ImportResult(model, graph, target_layout(config), report, NONE)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="pipeline config YAML")
    parser.add_argument("--dataset", default=None, help="dataset whose effective config applies (demo overrides)")
    parser.add_argument("--out", required=True, help="backbone file, e.g. results/pretraining_runs/none/DS/backbone/stgcnpp.pt")
    parser.add_argument("--report", required=True, help="report JSON (every key reinitialised)")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.dataset:
        config = effective_config(config, args.dataset)
    result = random_backbone(config)
    save_backbone(args.out, result)
    write_json(args.report, {**result.report.to_dict(), "provenance": provenance(config)})
    log.info("wrote a randomly initialised backbone on %s to %s", result.graph.name, args.out)
    return 0
