"""How long Snakemake takes to build the DAG of the full paper grid at real dataset sizes (issue 6: at most 10 s).

Real data is not needed for a dry run: for each dataset a manifest with the real number of samples is written
straight into a temporary results folder (so the `manifest` checkpoint is already satisfied and its shard column
decides the resize/keypoint jobs), with the real adapters configured. Then `snakemake -n` builds the DAG of every
table and figure (the default target). Figures printed: jobs per rule, total jobs, wall time (median of --repeat
runs, each a fresh process, parse + DAG + dry-run report included).

    .venv/bin/python bench/dag_scale.py [--repeat 3] [--shard-size N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from hatl.datasets.manifest import Manifest, assign_shards, write_manifest
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


def synthetic_manifest(name: str, size: DatasetSize, shard_size: int, folds: int) -> pd.DataFrame:
    """A manifest frame with the contract's columns and the real number of samples per split."""
    rows = []
    for split, count in size.splits.items():
        for i in range(count):
            fold = i % folds if split == "trainval" else -1
            rows.append({
                "sample_id": f"{name}-{split}-{i:05d}", "split": split, "fold": fold, "signer": f"S{i % 9}",
                "gloss": "A B", "text": "a b", "source": f"/absent/{name}/{split}/{i:05d}",
                "source_kind": size.source_kind, "fps": size.fps, "n_frames": 100,
            })
    return assign_shards(pd.DataFrame(rows), shard_size)


def grid_config(shard_size: int | None) -> dict:
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
    return config


def prepare(workdir: Path, shard_size: int | None) -> dict[str, int]:
    """Write config/config.yaml and results/{ds}/manifest.parquet + splits.tsv; return shards per dataset."""
    config = grid_config(shard_size)
    (workdir / "config").mkdir(parents=True)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    size_of_shard = int(config["preprocess"]["shard_size"])
    folds = int(config["datasets"]["medasl"]["cross_validation"]["folds"])
    shards = {}
    for name, size in SIZES.items():
        frame = synthetic_manifest(name, size, size_of_shard, folds)
        meta = {"dataset": name, "adapter": size.adapter, "root": f"/absent/{name}", "skipped": [],
                "shard_size": size_of_shard, "n_shards": int(frame["shard"].nunique()),
                "provenance": provenance(config), "synthetic": "bench/dag_scale.py"}
        out = workdir / "results" / name
        write_manifest(Manifest(name, frame, meta), out / "manifest.parquet", out / "splits.tsv")
        shards[name] = int(frame["shard"].nunique())
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
    """scores.json of every dataset x model x task x strategy x fold run, plus Table 3: the whole grid up to
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
                    targets += [f"results/runs/{name}/{model}/{task}/{strategy}/{fold}/scores.json" for fold in folds]
    return targets


def dry_run(workdir: Path, snakefile: Path, targets: list[str]) -> tuple[float, float, str]:
    """Wall time, CPU time (user + sys of the snakemake process: what the machine's load does not inflate)
    and output of one dry run."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(workdir), "-n",
           "--quiet", "rules", "--cores", "1", *targets]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    if proc.returncode != 0:
        sys.exit(f"dry run failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return elapsed, cpu, proc.stdout + proc.stderr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="dry runs to time (median reported)")
    parser.add_argument("--shard-size", type=int, default=None, help="override preprocess.shard_size")
    parser.add_argument("--snakefile", type=Path, default=REPO / "Snakefile", help="workflow to time")
    parser.add_argument("--targets", choices=["all", "runs"], default="all",
                        help="all: every table and figure (the default target); runs: every run's scores.json + Table 3")
    parser.add_argument("--keep", type=Path, default=None, help="build the work folder here and keep it")
    args = parser.parse_args(argv)

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="hatl-dag-scale-"))
    if args.keep and workdir.exists():
        shutil.rmtree(workdir)
    try:
        shards = prepare(workdir, args.shard_size)
        targets = [] if args.targets == "all" else run_targets(grid_config(args.shard_size))
        times, cpus, output = [], [], ""
        for _ in range(args.repeat):
            elapsed, cpu, output = dry_run(workdir, args.snakefile, targets)
            times.append(elapsed)
            cpus.append(cpu)
        counts = job_counts(output)
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)

    samples = {name: sum(size.splits.values()) for name, size in SIZES.items()}
    print("datasets (samples, shards): " + ", ".join(f"{n} ({samples[n]}, {shards[n]})" for n in SIZES))
    for rule, count in sorted(counts.items()):
        if rule != "total":
            print(f"  {rule:<16} {count:6d}")
    print(f"targets: {args.targets}")
    print(f"jobs in the DAG: {counts.get('total', 0)}")
    print(f"snakemake -n wall time: median {statistics.median(times):.2f} s over {len(times)} run(s) "
          f"(each: {', '.join(f'{t:.2f}' for t in times)} s; budget 10 s)")
    print(f"snakemake -n CPU time (user+sys): median {statistics.median(cpus):.2f} s; load average now "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0 if statistics.median(times) <= 10.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
