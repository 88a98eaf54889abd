"""Failure drills (issue 6): what a cluster does to a run, done on purpose with the local executor.

* a keypoint shard deleted, or corrupted, reruns only that shard and what depends on it (a demo-keypoint shard,
  and a video shard, whose single job decodes, resizes and runs MediaPipe: no separate resize job, no clip file);
* a walltime-style kill (SIGKILL of the whole snakemake process group during a job) leaves a lock and an
  incomplete job that `--unlock` + `--rerun-incomplete` finish, without redoing finished jobs;
* a training job killed mid-run is rerun and resumes from its state in resume/, while nothing upstream reruns.

Each drill runs the real Snakefile on a shrunken demo config in a temporary working directory
(`snakemake -s REPO/Snakefile -d TMP`), so the repository's own results/ is never touched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
DS = "phoenix14t"
NORMALISED = f"results/{DS}/normalised"
# 'full' trains the whole backbone from the first epoch (no frozen-feature cache), so an epoch lasts long
# enough to be killed in the middle of.
STRATEGY = "full"
RUN = f"results/runs/{DS}/transformer/sign2text/{STRATEGY}/main/seed1234"
RESUME = f"resume/{DS}/transformer/sign2text/{STRATEGY}/main/seed1234"

pytestmark = pytest.mark.slow


# ------------------------------------------------------------------------------------------------ helpers


def drill_config(max_epochs: int = 6) -> dict:
    """The shipped config shrunk to one demo dataset: 40 keypoint samples in 3 shards plus one rendered video clip
    in a 4th (its job resizes and runs MediaPipe, ~1 s), one tiny translator and one training run that takes
    seconds per epoch on a CPU."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    config["datasets"] = {DS: dict(config["datasets"][DS], tasks=["sign2text"])}
    config["experiments"] = {"models": ["transformer"], "strategies": [STRATEGY]}
    config["demo"]["clips_per_dataset"] = 1
    config["demo"]["samples"] = {DS: {"train": 24, "dev": 8, "test": 8}}
    config["demo"]["frames"] = {"min": 16, "max": 24}
    config["preprocess"]["shard_size"] = 16
    small = {"hidden": 32, "heads": 2, "feedforward": 64, "encoder_layers": 1, "decoder_layers": 1}
    config["demo"]["overrides"] = {
        "backbone": {"base_channels": 8,
                     "pretrain_demo": {"epochs": 1, "max_windows": 64, "batch_size": 16, "window": 16}},
        "model": {"transformer": dict(small), "adat": dict(small)},
        # Resume state after every optimizer step and no early stop: a kill lands inside an epoch.
        "training": {"max_epochs": max_epochs, "batch_size": 8, "eval_batch_size": 16, "checkpoint_every_steps": 1,
                     "early_stopping": {"patience": 100}},
    }
    return config


def make_workdir(path: Path, config: dict) -> Path:
    (path / "config").mkdir(parents=True, exist_ok=True)
    (path / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def snakemake_cmd(workdir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir), "--cores", "2", *args]


def env() -> dict[str, str]:
    # The rules call `hatl`: the interpreter's own bin folder (the venv) comes first on PATH.
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


def smk(workdir: Path, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(snakemake_cmd(workdir, *args), env=env(), capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n"
                             f"{proc.stderr[-4000:]}\n{log_tails(workdir)}")
    return proc


def log_tails(workdir: Path) -> str:
    parts = []
    for log in sorted((workdir / "logs").rglob("*.log")) if (workdir / "logs").exists() else []:
        parts.append(f"--- {log.relative_to(workdir)}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-8:]))
    return "\n".join(parts)


@dataclass(frozen=True)
class PlannedJob:
    rule: str
    outputs: tuple[str, ...]


def planned_jobs(dry_run_output: str) -> list[PlannedJob]:
    """The jobs a `snakemake -n` would run: rule name and declared outputs of each job block."""
    jobs: list[PlannedJob] = []
    rule, outputs = None, ()
    for line in dry_run_output.splitlines():
        head = re.match(r"^(?:local)?(?:rule|checkpoint) (\w+):\s*$", line)
        if head:
            if rule is not None:
                jobs.append(PlannedJob(rule, outputs))
            rule, outputs = head.group(1), ()
            continue
        out = re.match(r"^\s+output: (.*)$", line)
        if out and rule is not None:
            outputs = tuple(p.strip() for p in out.group(1).split(","))
        if line.startswith("Job stats:") and rule is not None:
            jobs.append(PlannedJob(rule, outputs))
            rule = None
    if rule is not None:
        jobs.append(PlannedJob(rule, outputs))
    return jobs


def plan(workdir: Path, *args: str) -> set[tuple[str, tuple[str, ...]]]:
    proc = smk(workdir, "-n", *args)
    return {(job.rule, job.outputs) for job in planned_jobs(proc.stdout + proc.stderr)}


def mtimes(workdir: Path, under: str = "results") -> dict[str, int]:
    """Modification time (ns) of every file under `under`, except the parse-time resolved configs."""
    root = workdir / under
    return {str(p.relative_to(workdir)): p.stat().st_mtime_ns for p in root.rglob("*")
            if p.is_file() and "results/config/" not in str(p.relative_to(workdir))}


def shard_of_kind(workdir: Path, kind: str) -> int:
    """The (first) keypoint shard of the manifest that holds samples of this source kind."""
    table = pq.read_table(workdir / f"results/{DS}/manifest.parquet", columns=["shard", "source_kind"]).to_pydict()
    return min(s for s, k in zip(table["shard"], table["source_kind"]) if k == kind)


def table_rows(path: Path) -> list[dict]:
    """Parquet content without the schema metadata (which carries provenance and timestamps)."""
    return pq.read_table(path).replace_schema_metadata(None).to_pylist()


def start_in_own_group(workdir: Path, *args: str) -> subprocess.Popen:
    """snakemake as the leader of a new process group, so the whole tree can be killed like a walltime does."""
    log = open(workdir / "snakemake.out", "w")  # noqa: SIM115 - closed by the caller through proc.stdout
    return subprocess.Popen(snakemake_cmd(workdir, *args), env=env(), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def kill_group(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def wait_until(predicate, proc: subprocess.Popen, what: str, timeout: float = 240.0, workdir: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc.poll() is not None:
            out = (workdir / "snakemake.out").read_text() if workdir else ""
            raise AssertionError(f"snakemake ended ({proc.returncode}) before {what}:\n{out[-4000:]}")
        time.sleep(0.05)
    kill_group(proc)
    raise AssertionError(f"timed out waiting for {what}")


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A working directory with the normalised demo data built once (copied by each drill)."""
    workdir = make_workdir(tmp_path_factory.mktemp("drill-base"), drill_config())
    smk(workdir, NORMALISED)
    return workdir


def copy_workdir(src: Path, dst: Path) -> Path:
    # copy2 keeps modification times, and .snakemake keeps Snakemake's metadata: the copy is up to date.
    shutil.copytree(src, dst, copy_function=shutil.copy2, symlinks=True)
    return dst


# ------------------------------------------------------------------------------------------------ drills


def test_deleted_shard_reruns_only_that_shard(built: Path, tmp_path: Path) -> None:
    workdir = copy_workdir(built, tmp_path / "wd")
    shards = sorted((workdir / f"results/{DS}/keypoints").glob("shard-*.parquet"))
    assert len(shards) == 4, shards  # 3 demo-keypoint shards + 1 video shard
    # The video shard was one job: decoded, resized and extracted on the fly, no clip shard written.
    assert not (workdir / f"results/{DS}/clips").exists()
    assert plan(workdir, NORMALISED) == set(), "a fresh build must be up to date"
    victim = shards[1]
    expected = table_rows(victim)
    before = mtimes(workdir)
    victim.unlink()
    rel = str(victim.relative_to(workdir))

    # Snakemake does not rebuild a missing intermediate file while everything downstream is present
    # (that is what lets temp() files be deleted), so asking for the final target plans nothing ...
    assert plan(workdir, NORMALISED) == set()
    # ... and -R FILE (--forcerun) is the way: that shard's job and what depends on it, nothing else.
    assert plan(workdir, NORMALISED, "-R", rel) == {("keypoints", (rel,)), ("normalise", (NORMALISED,))}
    smk(workdir, NORMALISED, "-R", rel)
    after = mtimes(workdir)
    assert table_rows(victim) == expected, "the rebuilt shard must hold the same keypoints"
    rebuilt = {p for p in after if after[p] != before.get(p)}
    assert all(p == rel or p.startswith(NORMALISED) for p in rebuilt), rebuilt
    assert all(after[p] == before[p] for p in before if "keypoints/" in p and victim.name not in p)


@pytest.mark.parametrize("kind", ["demo", "video"])
def test_corrupted_shard_is_refused_then_rerun_alone(built: Path, tmp_path: Path, kind: str) -> None:
    """`video`: the fused shard job (decode + resize + MediaPipe in one `hatl keypoints`) is what reruns."""
    workdir = copy_workdir(built, tmp_path / "wd")
    shard = shard_of_kind(workdir, kind)
    victim = workdir / f"results/{DS}/keypoints/shard-{shard}.parquet"
    expected = table_rows(victim)
    before = mtimes(workdir)
    victim.write_bytes(b"PAR1 not a parquet file, as after a disk fault or a half-copied file")

    # The newer shard makes normalise rerun; it must refuse the bad shard, naming it, and leave no output.
    failed = smk(workdir, NORMALISED, check=False)
    assert failed.returncode != 0
    log = (workdir / f"logs/normalise/{DS}.log").read_text(errors="replace")
    assert victim.name in log, log[-2000:]
    assert not (workdir / NORMALISED).exists()

    # -R FILE: rerun the job that makes this file and everything downstream, nothing else.
    rel = str(victim.relative_to(workdir))
    assert plan(workdir, NORMALISED, "-R", rel) == {("keypoints", (rel,)), ("normalise", (NORMALISED,))}
    smk(workdir, NORMALISED, "-R", rel)
    assert table_rows(victim) == expected
    after = mtimes(workdir)
    untouched = [p for p in before if "keypoints/" in p and victim.name not in p] + [f"results/{DS}/manifest.parquet"]
    assert all(after[p] == before[p] for p in untouched)
    assert not (workdir / f"results/{DS}/clips").exists(), "no intermediate clip file unless keep_clips asks"


def test_keep_clips_brings_back_the_resize_job_with_identical_keypoints(built: Path, tmp_path: Path) -> None:
    """`preprocess.keep_clips: true`: video shards go back to two jobs (`resize` writes the clip shard, `keypoints`
    reads it); demo-keypoint shards are untouched, and the keypoints equal the fused job's."""
    workdir = copy_workdir(built, tmp_path / "wd")
    config = yaml.safe_load((workdir / "config" / "config.yaml").read_text(encoding="utf-8"))
    config["preprocess"]["keep_clips"] = True
    make_workdir(workdir, config)
    shard = shard_of_kind(workdir, "video")
    keypoints, clips = f"results/{DS}/keypoints/shard-{shard}.parquet", f"results/{DS}/clips/shard-{shard}.npz"
    expected = table_rows(workdir / keypoints)
    assert plan(workdir, NORMALISED) == {("resize", (clips,)), ("keypoints", (keypoints,)), ("normalise", (NORMALISED,))}
    smk(workdir, NORMALISED)
    assert (workdir / clips).is_file()
    assert table_rows(workdir / keypoints) == expected


def test_walltime_kill_then_rerun_incomplete(tmp_path: Path) -> None:
    workdir = make_workdir(tmp_path / "wd", drill_config())
    proc = start_in_own_group(workdir, NORMALISED)
    # Kill while keypoint jobs run (their logs exist as soon as they start), as a walltime kill would.
    logs = workdir / f"logs/keypoints/{DS}"
    wait_until(lambda: logs.exists() and any(logs.glob("*.log")), proc, "a running keypoint job", workdir=workdir)
    kill_group(proc)
    done_before = mtimes(workdir)
    manifest = workdir / f"results/{DS}/manifest.parquet"
    shards = sorted(set(pq.read_table(manifest, columns=["shard"]).column("shard").to_pylist()))
    outputs = [f"results/{DS}/keypoints/shard-{k}.parquet" for k in shards]
    finished = [o for o in outputs if (workdir / o).exists()]
    pending = [o for o in outputs if o not in finished]
    assert pending, "the kill must interrupt at least one keypoint job"
    # Outputs are written under a temporary name and renamed: whatever exists is complete and readable.
    for out in finished:
        assert table_rows(workdir / out)
    assert not (workdir / NORMALISED).exists()

    # The killed snakemake left its lock behind, as on a cluster after a walltime kill: a new run refuses to
    # start until `--unlock` (dry runs do not lock, so they would not notice).
    locks = workdir / ".snakemake" / "locks"
    assert locks.exists() and any(locks.iterdir())
    locked = smk(workdir, NORMALISED, check=False)
    assert locked.returncode != 0 and "lock" in (locked.stdout + locked.stderr).lower()
    smk(workdir, "--unlock")
    assert not locks.exists() or not any(locks.iterdir())

    assert plan(workdir, NORMALISED, "--rerun-incomplete") == {
        *(("keypoints", (out,)) for out in pending), ("normalise", (NORMALISED,))}
    smk(workdir, NORMALISED, "--rerun-incomplete")
    assert plan(workdir, NORMALISED) == set()
    after = mtimes(workdir)
    assert all(after[p] == done_before[p] for p in finished), "finished shards must not rerun"


def test_killed_training_resumes_and_nothing_upstream_reruns(built: Path, tmp_path: Path) -> None:
    workdir = copy_workdir(built, tmp_path / "wd")
    target = f"{RUN}/best.pt"
    # Build what training needs first, so that only training is running when the kill comes.
    upstream = plan(workdir, target)
    assert ("train", (f"{RUN}/best.pt", f"{RUN}/log.jsonl", f"{RUN}/summary.json")) in upstream
    smk(workdir, f"results/{DS}/vocab/main/text.json", f"results/{DS}/backbone/stgcnpp.pt")
    before = mtimes(workdir)
    assert plan(workdir, target) == {("train", (f"{RUN}/best.pt", f"{RUN}/log.jsonl", f"{RUN}/summary.json"))}

    proc = start_in_own_group(workdir, target)
    progress = workdir / RESUME / "progress.json"

    def one_epoch_saved():
        try:
            state = json.loads(progress.read_text())
        except (OSError, ValueError):
            return None
        return state if int(state.get("epoch", 0)) >= 1 and not state.get("finished") else None

    saved = wait_until(one_epoch_saved, proc, "the first saved epoch", workdir=workdir)
    kill_group(proc)
    assert not (workdir / f"{RUN}/best.pt").exists(), "training was killed before it could finish"

    smk(workdir, "--unlock")
    # Only the training job is redone: its resume state is not a declared output, so it survives.
    assert plan(workdir, target, "--rerun-incomplete") == {
        ("train", (f"{RUN}/best.pt", f"{RUN}/log.jsonl", f"{RUN}/summary.json"))}
    smk(workdir, target, "--rerun-incomplete")

    log = (workdir / f"logs/train/{DS}/transformer/sign2text/{STRATEGY}/main/seed1234.log").read_text(errors="replace")
    assert re.search(r"resuming .* at epoch \d+", log), log[-3000:]
    epochs = [json.loads(line)["epoch"] for line in (workdir / f"{RUN}/log.jsonl").read_text().splitlines()
              if line.strip() and "epoch" in json.loads(line)]
    assert epochs == sorted(set(epochs)) and epochs[0] == 1, "the log continues the killed run, epoch by epoch"
    assert len(epochs) >= int(saved["epoch"])
    after = mtimes(workdir)
    assert all(after[p] == before[p] for p in before), "nothing upstream of training may rerun"
