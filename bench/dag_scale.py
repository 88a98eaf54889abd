"""How long Snakemake takes to plan the full paper grid, at real dataset sizes or with one dataset scaled up.

Real data is not needed for a dry run: for each dataset a manifest with the wanted number of samples is written
straight into a temporary results folder (so the `manifest` checkpoint is already satisfied and its shard column,
cut exactly as the manifest stage cuts it, decides the keypoint jobs), with the real adapters configured. Then
`snakemake -n` builds the DAG of every table and figure (the default target). Figures printed per size: jobs per
rule, total jobs, shards, wall time (median of --repeat runs, each a fresh process, parse + DAG + dry-run report
included), CPU time, peak memory (max RSS) of the snakemake process, and the load average beside them (the
machine may be shared: CPU time is what the load does not inflate).

    .venv/bin/python bench/dag_scale.py                                  # the paper grid at real sizes (budget 10 s)
    .venv/bin/python bench/dag_scale.py --samples 10000 100000 610000    # PHOENIX14T scaled to N samples (budget 60 s)
    .venv/bin/python bench/dag_scale.py --scale 10                       # every dataset 10x
    options: [--repeat 3] [--shard-size N|auto] [--keep-clips] [--targets all|runs] [--keep DIR]

`--samples N` gives the scaled dataset (`--scaled-dataset`, default phoenix14t) N samples: dev and test 5,000 each
(N/10 each below 50,000), the rest train; the other datasets keep their real sizes. This is issue 18's measurement
(610,000 samples = 600,000 / 5,000 / 5,000, as YouTube-ASL's ~610k clips). Exit status 1 when a median exceeds
its budget.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from hatl.config import training_seeds
from hatl.datasets.manifest import Manifest, assign_shards, resolve_shard_size, write_manifest
from hatl.experiment import run_dir
from hatl.provenance import provenance

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class DatasetSize:
    """Samples per split and the source kind the real release has."""

    adapter: str
    splits: dict[str, int]
    source_kind: str
    fps: float


# PHOENIX14T: 7096/519/642 (the release's corpus files). Isharah-500: 7,500 videos (paper Table 3); its SI split
# sizes are not published in the notes, so 80/10/10 stands in (only the total matters for the DAG's shard count).
# MedASL2000: 2,000 sentences, 20% test, the rest in 5 cross-validation folds (paper: 80% for 5-fold CV, 20% test).
SIZES = {
    "phoenix14t": DatasetSize("phoenix14t", {"train": 7096, "dev": 519, "test": 642}, "frames", 25.0),
    "isharah": DatasetSize("isharah", {"train": 6000, "dev": 750, "test": 750}, "video", 30.0),
    "medasl": DatasetSize("medasl", {"trainval": 1600, "test": 400}, "npy", 30.0),
}


PAPER_BUDGET_S = 10.0  # issue 6: the paper grid at real sizes
SCALED_BUDGET_S = 60.0  # issue 18: a 610,000-sample dataset
HELD_OUT = 5_000  # dev and test samples of a scaled dataset (issue 18's 600,000 / 5,000 / 5,000)


def scaled_sizes(samples: int | None, scale: float | None, scaled: str) -> dict[str, DatasetSize]:
    """The datasets' sizes: real, one dataset at `samples` in total, or every split times `scale`."""
    if scale is not None:
        return {name: replace(size, splits={k: max(1, round(v * scale)) for k, v in size.splits.items()})
                for name, size in SIZES.items()}
    if samples is None:
        return dict(SIZES)
    size = SIZES[scaled]
    if "trainval" in size.splits:  # a cross-validation dataset: 20% test, as MedASL
        splits = {"trainval": samples - samples // 5, "test": samples // 5}
    else:
        held_out = min(HELD_OUT, samples // 10)
        splits = {"train": samples - 2 * held_out, "dev": held_out, "test": held_out}
    return {**SIZES, scaled: replace(size, splits=splits)}


def synthetic_manifest(name: str, size: DatasetSize, shard_size: int, folds: int) -> pd.DataFrame:
    """A manifest frame with the contract's columns and the given number of samples per split (built column-wise:
    a 610,000-row frame in about a second)."""
    parts = []
    for split, count in size.splits.items():
        index = np.arange(count)
        ids = pd.Series(index).map(lambda i: f"{i:07d}")
        parts.append(pd.DataFrame({
            "sample_id": f"{name}-{split}-" + ids, "split": split,
            "fold": index % folds if split == "trainval" else -1, "signer": "S" + pd.Series(index % 9).astype(str),
            "gloss": "A B", "text": "a b", "source": f"/absent/{name}/{split}/" + ids,
            "source_kind": size.source_kind, "fps": size.fps, "n_frames": 100,
        }))
    return assign_shards(pd.concat(parts, ignore_index=True), shard_size)


def grid_config(shard_size: int | str | None, keep_clips: bool) -> dict:
    """The shipped config with the real adapters (every model, task, strategy; all MedASL folds)."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    for name, size in SIZES.items():
        ds = config["datasets"][name]
        ds["adapter"] = size.adapter
        ds["root"] = f"/absent/{name}"  # never read: the manifests already exist
        ds.pop("demo_profile", None)
    config["datasets"]["medasl"]["cross_validation"]["run_folds"] = None  # the full grid: all 5 folds
    if shard_size is not None:
        config["preprocess"]["shard_size"] = shard_size
    if keep_clips:
        config["preprocess"]["keep_clips"] = True
    return config


def prepare(workdir: Path, config: dict, sizes: dict[str, DatasetSize]) -> dict[str, tuple[int, int, int]]:
    """Write config/config.yaml and results/{ds}/manifest.parquet + splits.tsv; return (samples, shard size,
    shards) per dataset, the shard size resolved as the manifest stage resolves it."""
    from hatl.config import validate_config

    (workdir / "config").mkdir(parents=True)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    preprocess = validate_config(yaml.safe_load(yaml.safe_dump(config)))["preprocess"]
    folds = int(config["datasets"]["medasl"]["cross_validation"]["folds"])
    shards = {}
    for name, size in sizes.items():
        n_samples = sum(size.splits.values())
        size_of_shard = resolve_shard_size(preprocess, n_samples)
        frame = synthetic_manifest(name, size, size_of_shard, folds)
        meta = {"dataset": name, "adapter": size.adapter, "root": f"/absent/{name}", "skipped": [],
                "shard_size": size_of_shard, "n_shards": int(frame["shard"].nunique()),
                "provenance": provenance(config), "synthetic": "bench/dag_scale.py"}
        out = workdir / "results" / name
        write_manifest(Manifest(name, frame, meta), out / "manifest.parquet", out / "splits.tsv")
        shards[name] = (n_samples, size_of_shard, int(frame["shard"].nunique()))
    return shards


def job_counts(output: str) -> dict[str, int]:
    """Parse the 'Job stats' table of a dry run."""
    counts: dict[str, int] = {}
    block = output.split("Job stats:", 1)[-1]
    for line in block.splitlines():
        match = re.match(r"^(\w+)\s+(\d+)\s*$", line)
        if match:
            counts[match.group(1)] = int(match.group(2))
        elif counts and not line.strip():
            break
    return counts


def run_targets(config: dict) -> list[str]:
    """scores.json of every dataset x model x task x strategy x fold x seed run, plus Table 3: the whole grid up to
    the per-run scores (for when the table/figure rules are not all there)."""
    targets = ["results/table3.csv"]
    for name, ds in config["datasets"].items():
        cv = ds.get("cross_validation")
        if cv is None:
            folds = ["main"]
        else:
            chosen = cv.get("run_folds")
            folds = [f"fold{k}" for k in (range(cv["folds"]) if chosen is None else chosen)]
        for model in config["experiments"]["models"]:
            for task in ds["tasks"]:
                strategies = ["full"] if task == "gloss2text" else config["experiments"]["strategies"]
                for strategy in strategies:
                    targets += [f"{run_dir('results/runs', name, model, task, strategy, fold, seed)}/scores.json"
                                for fold in folds for seed in training_seeds(config)]
    return targets


@dataclass
class DryRun:
    wall_s: float
    cpu_s: float
    max_rss_mb: float
    output: str


def dry_run(workdir: Path, snakefile: Path, targets: list[str]) -> DryRun:
    """Wall time, CPU time (user + sys of the snakemake process: what the machine's load does not inflate),
    peak memory and output of one dry run in a fresh process."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(workdir), "-n",
           "--quiet", "rules", "--cores", "1", *targets]
    # wait4 gives this child's own rusage (RUSAGE_CHILDREN would report the largest child so far).
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"dry run failed (exit {proc.returncode}):\n{output[-5000:]}")
    return DryRun(elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, output)  # ru_maxrss: KiB


@dataclass
class Measurement:
    label: str
    shards: dict[str, tuple[int, int, int]]
    counts: dict[str, int]
    runs: list[DryRun]
    load_before: float
    load_after: float
    budget_s: float

    @property
    def wall_s(self) -> float:
        return statistics.median(r.wall_s for r in self.runs)

    @property
    def cpu_s(self) -> float:
        return statistics.median(r.cpu_s for r in self.runs)

    @property
    def max_rss_mb(self) -> float:
        return max(r.max_rss_mb for r in self.runs)


def measure(label: str, sizes: dict[str, DatasetSize], config: dict, args: argparse.Namespace,
            budget_s: float) -> Measurement:
    folder = re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_")
    workdir = args.keep / folder if args.keep else Path(tempfile.mkdtemp(prefix="hatl-dag-scale-"))
    if args.keep and workdir.exists():
        shutil.rmtree(workdir)
    try:
        # The manifests are built in a separate process: a child forked from a bench process holding 610,000-row
        # frames would inherit its peak RSS, and ru_maxrss would report the bench's memory, not Snakemake's.
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            shards = pool.submit(prepare, workdir, config, sizes).result()
        targets = [] if args.targets == "all" else run_targets(config)
        load_before = os.getloadavg()[0]
        runs = [dry_run(workdir, args.snakefile, targets) for _ in range(args.repeat)]
        load_after = os.getloadavg()[0]
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return Measurement(label, shards, job_counts(runs[-1].output), runs, load_before, load_after, budget_s)


def report(m: Measurement, targets: str) -> None:
    print(f"== {m.label}")
    print("datasets (samples, shard size, shards): "
          + ", ".join(f"{n} ({s:,}, {z}, {k:,})" for n, (s, z, k) in m.shards.items()))
    for rule, count in sorted(m.counts.items()):
        if rule != "total":
            print(f"  {rule:<16} {count:6d}")
    print(f"targets: {targets}")
    print(f"jobs in the DAG: {m.counts.get('total', 0)}")
    print(f"snakemake -n wall time: median {m.wall_s:.2f} s over {len(m.runs)} run(s) "
          f"(each: {', '.join(f'{r.wall_s:.2f}' for r in m.runs)} s; budget {m.budget_s:.0f} s)")
    print(f"snakemake -n CPU time (user+sys): median {m.cpu_s:.2f} s; peak memory (max RSS) {m.max_rss_mb:.0f} MB")
    print(f"load average (1 min) {m.load_before:.1f} before, {m.load_after:.1f} after, on {os.cpu_count()} cores")


def parse_samples(values: list[str]) -> list[int | None]:
    """'paper' (or 'real') = the real sizes; a number = the scaled dataset's total samples."""
    return [None if v in ("paper", "real") else int(v.replace(",", "").replace("_", "")) for v in values]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--samples", nargs="+", default=["paper"], metavar="N",
                      help="total samples of the scaled dataset, one measurement each ('paper': real sizes)")
    size.add_argument("--scale", type=float, default=None, help="multiply every dataset's split sizes by this")
    parser.add_argument("--scaled-dataset", choices=sorted(SIZES), default="phoenix14t",
                        help="the dataset --samples resizes (default phoenix14t)")
    parser.add_argument("--repeat", type=int, default=3, help="dry runs to time per size (median reported)")
    parser.add_argument("--shard-size", default=None,
                        help="override preprocess.shard_size (a number, or auto); default: the shipped value")
    parser.add_argument("--keep-clips", action="store_true",
                        help="preprocess.keep_clips: true (a separate resize job per video/frames shard)")
    parser.add_argument("--snakefile", type=Path, default=REPO / "Snakefile", help="workflow to time")
    parser.add_argument("--targets", choices=["all", "runs"], default="all",
                        help="all: every table and figure (the default target); runs: every run's scores.json + Table 3")
    parser.add_argument("--keep", type=Path, default=None, help="build the work folders under here and keep them")
    args = parser.parse_args(argv)

    shard_size = args.shard_size if args.shard_size in (None, "auto") else int(args.shard_size)
    config = grid_config(shard_size, args.keep_clips)
    plans = ([(f"every dataset x{args.scale:g}", scaled_sizes(None, args.scale, args.scaled_dataset), SCALED_BUDGET_S)]
             if args.scale is not None else
             [("paper grid, real sizes" if n is None else f"{args.scaled_dataset} at {n:,} samples",
               scaled_sizes(n, None, args.scaled_dataset), PAPER_BUDGET_S if n is None else SCALED_BUDGET_S)
              for n in parse_samples(args.samples)])
    print(f"preprocess: shard_size {config['preprocess']['shard_size']}, target_shards "
          f"{config['preprocess'].get('target_shards')}, min_shard_size {config['preprocess'].get('min_shard_size')}, "
          f"keep_clips {config['preprocess'].get('keep_clips', False)}")
    results = []
    for label, sizes, budget in plans:
        results.append(measure(label, sizes, config, args, budget))
        report(results[-1], args.targets)
    if len(results) > 1:
        print("\n| samples (scaled dataset) | shards (all datasets) | jobs | dry run, median s | CPU s | peak RSS MB | load avg |")
        print("|---|---|---|---|---|---|---|")
        for m in results:
            print(f"| {m.label} | {sum(k for _, _, k in m.shards.values()):,} | {m.counts.get('total', 0):,} | "
                  f"{m.wall_s:.1f} | {m.cpu_s:.1f} | {m.max_rss_mb:.0f} | {m.load_before:.1f}-{m.load_after:.1f} |")
    return 0 if all(m.wall_s <= m.budget_s for m in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
