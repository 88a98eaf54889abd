"""``hatl train``: one dataset × model × task × strategy × fold × seed run; see docs/training.md."""

from __future__ import annotations

import argparse
import copy
import logging
from pathlib import Path

from hatl.config import dataset_config, effective_config, load_config, training_seeds, validate_config
from hatl.errors import ConfigError
from hatl.experiment import STRATEGIES, TRAINED_TASKS, TRANSLATORS, trained_tasks

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="pipeline config YAML")
    parser.add_argument("--dataset", required=True, help="dataset name (a key of `datasets`)")
    parser.add_argument("--model", required=True, choices=TRANSLATORS, help="translator")
    parser.add_argument("--task", required=True, choices=TRAINED_TASKS,
                        help="a trained task (Sign2Gloss2Text is the cascade of a sign2gloss and a gloss2text run: "
                             "train both, then `hatl decode --translator-run`)")
    parser.add_argument("--strategy", required=True, choices=STRATEGIES)
    parser.add_argument("--fold", default="main", help="'main' (train/dev/test) or 'foldK' (cross-validation fold K)")
    parser.add_argument("--seed", type=int, default=None,
                        help="this run's training seed, one of training.seeds (default: the first of them)")
    parser.add_argument("--data-dir", type=Path, default=None, help="normalised keypoints, e.g. results/DS/normalised (sign tasks)")
    parser.add_argument("--manifest", type=Path, default=None,
                        help="gloss2text without keypoints: glosses and texts from results/DS/manifest.parquet")
    parser.add_argument("--vocab-dir", required=True, type=Path, help="vocabularies of the run's fold, e.g. results/DS/vocab/FOLD")
    parser.add_argument("--backbone", type=Path, default=None, help="imported backbone, e.g. results/backbone/stgcnpp.pt (not used by gloss2text)")
    parser.add_argument("--out-dir", required=True, type=Path, help="run outputs: best.pt, log.jsonl, summary.json")
    parser.add_argument("--resume-dir", required=True, type=Path, help="resume state (kept across reruns; never a declared output)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (overrides training.threads)")
    parser.add_argument("--nproc", type=int, default=1,
                        help="processes (one per GPU) on this node: N > 1 re-runs this command under "
                             "`torchrun --standalone --nproc_per_node N` with DDP; the global batch stays training.batch_size")


def run(args: argparse.Namespace) -> int:
    from hatl.train.recipe import RunSpec, train_run  # torch is imported only when the command runs

    config = effective_config(load_config(args.config), args.dataset)
    dataset_config(config, args.dataset)  # unknown dataset → ConfigError naming the known ones
    # demo.overrides is merged after validation: check the merged view too, so a mistyped override key
    # (e.g. training.max_epoch) is an error instead of silently falling back to a default.
    validate_config(copy.deepcopy(config))
    tasks = config["datasets"][args.dataset]["tasks"]
    if args.task != "gloss2text" and not any(args.task in trained_tasks(t) for t in tasks):
        log.warning("task %s is not in datasets.%s.tasks %s; training it anyway", args.task, args.dataset, tasks)
    seeds = training_seeds(config)
    seed = seeds[0] if args.seed is None else args.seed
    if seed < 0:
        raise ConfigError(f"--seed must be >= 0, not {seed}")
    if seed not in seeds:
        log.warning("seed %d is not in training.seeds %s; training it anyway", seed, seeds)
    config["seed"] = seed  # the run's config as the run sees it: every random draw of training derives from this
    if args.threads is not None and args.threads < 1:
        raise ConfigError("--threads must be >= 1")
    if args.nproc < 1:
        raise ConfigError("--nproc must be >= 1")
    spec = RunSpec(
        dataset=args.dataset, model=args.model, task=args.task, strategy=args.strategy, fold=args.fold,
        data_dir=args.data_dir, vocab_dir=args.vocab_dir, backbone=args.backbone,
        out_dir=args.out_dir, resume_dir=args.resume_dir, threads=args.threads, manifest=args.manifest, seed=seed,
    )
    if args.nproc > 1:
        return launch_distributed(args, config)
    train_run(spec, config)
    return 0


def launch_distributed(args: argparse.Namespace, config: dict) -> int:
    """Re-run this command as ``--nproc`` torchrun workers on this node (the config and flags were checked
    above, so a typo fails here with exit 2 rather than in N workers)."""
    import os
    import subprocess

    from hatl.errors import HatlError
    from hatl.train.distributed import DDPConfig, context_from_env, relaunch_command

    if context_from_env().enabled:
        raise ConfigError("--nproc > 1 inside a torchrun worker: launch either with torchrun or with --nproc, not both")
    DDPConfig.from_config(config)  # a bad training.ddp section fails before any worker starts
    batch = int(config["training"]["batch_size"])
    if batch < args.nproc:
        raise ConfigError(f"training.batch_size {batch} is smaller than --nproc {args.nproc}: some ranks would get no samples")
    argv = relaunch_command(args, args.nproc)
    log.info("launching %d DDP workers: %s", args.nproc, " ".join(argv))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if args.threads:  # torchrun would otherwise set OMP_NUM_THREADS=1 for every worker (and say so)
        env.setdefault("OMP_NUM_THREADS", str(args.threads))
    done = subprocess.run(argv, env=env, check=False)
    if done.returncode != 0:
        raise HatlError(f"{args.nproc} torchrun worker(s) of `hatl train` failed (torchrun exit status {done.returncode}); "
                        "the worker log above names the cause")
    return 0
