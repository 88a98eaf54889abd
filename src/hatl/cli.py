"""The ``hatl`` command: one sub-command per pipeline stage, each a thin wrapper over a library function.

Sub-commands are registered by module path and imported lazily, so ``hatl --help`` stays fast and a
stage's heavy imports (torch, mediapipe) are paid only by the stage that needs them. Each target module
exposes ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from hatl.errors import HatlError

# name -> (module, one-line help). Modules are imported only when their command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "manifest": ("hatl.datasets.cli", "build a dataset's manifest (and split file) from its own layout"),
    "demo-data": ("hatl.demo.cli", "write the embedded synthetic demo dataset (keypoints, clips, annotations)"),
    "resize": ("hatl.video.cli", "decode and resize one shard of videos or frame folders"),
    "keypoints": ("hatl.keypoints.cli", "extract MediaPipe Holistic keypoints (or convert .npy/demo) for one shard"),
    "normalise": ("hatl.normalise", "centre, rescale and gap-fill keypoints into training-ready Parquet per split"),
    "vocab": ("hatl.vocab", "build gloss and text vocabularies from one run fold's training rows"),
    "lm": ("hatl.lm", "train a KenLM n-gram (ARPA + binary) on one run fold's training text"),
    "stats": ("hatl.stats", "dataset statistics (Table 3) and the keypoint quality report"),
    "pretrain-demo": ("hatl.models.pretrain", "pretrain ST-GCN++ on a synthetic action task; save in pyskl format"),
    "pretrain-data": ("hatl.datasets.pretrain_sources", "manifest + keypoint shards of a backbone-pretraining source"),
    "pretrain-supervised": ("hatl.models.pretrain_supervised",
                            "supervised isolated-sign pretraining: leave-one-signer-out accuracy + pyskl checkpoint"),
    "pretrain-masked": ("hatl.models.pretrain_masked",
                        "masked-keypoint (MS-MAE-style) pretraining on unlabeled sequences + pyskl checkpoint"),
    "random-backbone": ("hatl.models.random_backbone", "a randomly initialised backbone (the no-pretraining row)"),
    "import-backbone": ("hatl.models.checkpoint", "import a pyskl ST-GCN++ checkpoint onto the configured graph"),
    "train": ("hatl.train.cli", "train one dataset x model x task x strategy (x fold) run"),
    "decode": ("hatl.evaluate.decode", "beam-search decode a trained run on dev and test"),
    "score": ("hatl.evaluate.score", "score hypotheses: BLEU-1..4, ROUGE-L, chrF, WER"),
    "table": ("hatl.evaluate.tables", "assemble a paper table (4-7) from scored runs"),
    "table-pretraining": ("hatl.evaluate.pretraining_table",
                          "pretraining table: downstream BLEU-4 / WER per backbone source + constant-output floor"),
    "figure": ("hatl.evaluate.figures", "draw a paper figure (2-10, learning curves) from run logs"),
}

# name -> the config keys the command reads, in the view of its dataset (hatl.config.effective_config;
# `dataset.KEY` is the job's own dataset, `datasets.*.KEY` every dataset's, `KEY:needs` what the tasks need
# of the data rather than the task list). rules/common.smk makes each rule's `settings` param from this, so a
# changed value reruns exactly the jobs whose command reads it (tests/test_config_reads.py, dry runs).
# Keep it in step with the code: a key read but not listed here changes results without a rerun. The one
# exception is deliberate: `hatl manifest` reads `tasks` only to refuse rows a task cannot use (its output does
# not depend on them); `hatl vocab` repeats those checks on the built manifest and reruns when what the tasks
# need changes, so a task change never rebuilds the data (manifest -> resize -> MediaPipe).
CONFIG_READS: dict[str, tuple[str, ...]] = {
    "manifest": ("seed", "preprocess.shard_size", "preprocess.target_shards", "preprocess.min_shard_size",
                 "dataset.adapter", "dataset.root", "dataset.protocol", "dataset.annotations", "dataset.videos",
                 "dataset.fps", "dataset.missing_sources", "dataset.cross_validation"),
    "demo-data": ("seed", "demo.clips_per_dataset", "demo.samples", "demo.frames", "demo.clip_size",
                  "dataset.demo_profile", "dataset.protocol", "dataset.cross_validation",
                  "preprocess.keypoints.groups", "preprocess.keypoints.face_subset"),
    "resize": ("preprocess.resize",),
    "keypoints": ("preprocess.keypoints", "preprocess.resize", "dataset.adapter"),
    "normalise": ("preprocess.normalise",),
    "vocab": ("vocab", "dataset.text", "dataset.tasks:needs"),
    "lm": ("lm", "dataset.text"),
    "stats": ("datasets.*.adapter", "datasets.*.demo_profile", "datasets.*.language", "datasets.*.domain",
              "datasets.*.text"),
    "pretrain-demo": ("seed", "backbone.base_channels", "backbone.in_channels", "backbone.pretrain_demo"),
    # a pretraining source is not under `datasets`: its adapter, root and split come from backbone.pretrain
    "pretrain-data": ("seed", "preprocess.shard_size", "backbone.pretrain.roots"),
    "pretrain-supervised": ("seed", "backbone.base_channels", "backbone.in_channels", "backbone.pretrain.supervised"),
    "pretrain-masked": ("seed", "backbone.base_channels", "backbone.in_channels", "backbone.pretrain.masked"),
    "random-backbone": ("seed", "backbone.base_channels", "backbone.in_channels", "preprocess.keypoints.groups",
                        "preprocess.keypoints.face_subset"),
    "table-pretraining": ("evaluation.bleu",),
    "import-backbone": ("backbone.checkpoint", "backbone.sha256", "backbone.base_channels", "backbone.in_channels",
                        "preprocess.keypoints.groups", "preprocess.keypoints.face_subset", "dataset.adapter"),
    # dev BLEU during training (early stopping, HATL releases, best.pt) is scored with evaluation.bleu
    "train": ("seed", "model", "training", "evaluation.bleu", "dataset.text"),
    "decode": ("decoding", "evaluation.bleu", "dataset.text"),
    "score": ("evaluation.bleu",),
    # table 4 lists model/training/decoding/lm values; tables 5-7 re-score with evaluation.bleu/bootstrap and
    # say over how many of the cross-validation folds they average
    "table": ("dataset.adapter", "dataset.cross_validation", "model", "training", "decoding", "lm.order",
              "evaluation.bleu", "evaluation.bootstrap"),
    "figure": ("dataset.adapter", "evaluation.figures"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hatl", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    top, rest = parser.parse_known_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if top.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    module_name, help_text = COMMANDS[top.command]
    module = importlib.import_module(module_name)
    sub_parser = argparse.ArgumentParser(prog=f"hatl {top.command}", description=help_text)
    module.add_arguments(sub_parser)
    args = sub_parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except HatlError as err:
        logging.getLogger("hatl").error("%s", err)
        return 2


if __name__ == "__main__":
    sys.exit(main())
