"""The GPU check's measurements (issue 16), run by bench/gpu_check.sh after it has installed the CUDA build of torch.

    python bench/gpu_check.py --out gpu_check_out/gpu_check.json [--mode auto|paper|quick] [--parts ...]
        [--data ../shared/data] [--medasl-data ../medasl_full] [--workdir DIR] [--table5-budget-s 150]

Parts, each timed on its own and written to the JSON as soon as it ends (a killed check keeps what it measured):

* ``environment``: torch and CUDA versions, the GPUs, bf16 support, NCCL;
* ``pytest_gpu``: ``pytest -m gpu tests/`` (tests/test_gpu.py), counts and each test's outcome and printed figures;
* ``stgcnpp``: ST-GCN++ forward+backward in train mode at the paper's sizes (135 MediaPipe joints, width 64,
  batch 32 as Table 4, T = 128 frames, about PHOENIX14T's mean of 115), fp32 (TF32 off, as ``training.precision:
  fp32``) and bf16 autocast (the default): ms per batch, samples/s, peak GPU memory;
* ``phoenix_epoch``: one epoch of PHOENIX14T Gloss2Text (config/examples/phoenix14t_gloss2text.yaml, the
  paper's translator sizes) through ``hatl manifest / vocab / train`` on the real annotations under ``--data``;
* ``medasl_epoch``: one epoch of the real-MedASL full fine-tuning run (config/examples/medasl.yaml alone: the
  paper's sizes, no CPU overlay) through the unchanged workflow, when the MedASL release is at ``--medasl-data``;
* ``table5``: ``snakemake results/table5.csv --cores all`` on the demo data (trainings use the GPU), stopped
  after ``--table5-budget-s`` seconds with the jobs done so far reported.

Without CUDA (``--mode auto`` picks ``quick``) the parts that need none run at small sizes, the rest say why
they were skipped, and the JSON's ``cuda_available`` is false: the figures are then not GPU figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("environment", "pytest_gpu", "stgcnpp", "phoenix_epoch", "medasl_epoch", "table5")
NO_CUDA = "CUDA is absent (torch.cuda.is_available() is False): CPU fallback, small sizes, no GPU figures"
PROGRESS_RE = re.compile(r"^(\d+) of (\d+) steps \((\d+)%\) done")
LINKS = ("Snakefile", "rules", "workflow", "config", "envs")
# Paper sizes for the backbone timing: Table 4's batch, the default keypoint groups (pose, reduced face, iris,
# both hands: 135 joints), the released width, and about PHOENIX14T's mean sentence length (10.53 h at 25 fps
# over 8,257 videos = 115 frames).
PAPER_STGCN = {"batch": 32, "frames": 128, "warmup": 3, "repeats": 10}
QUICK_STGCN = {"batch": 2, "frames": 32, "warmup": 1, "repeats": 3}
QUICK_PHOENIX = {"train": 128, "dev": 32}
MEDASL_RUN = ("transformer", "sign2gloss", "full", "fold0")  # the trained sign model of Sign2Gloss2Text


# ---------------------------------------------------------------------------------------------- small pieces
def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def run_part(name: str, func: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one part; an exception becomes status 'failed' with its message (the other parts still run)."""
    print(f"[{time.strftime('%H:%M:%S')}] {name} ...", flush=True)
    start = time.perf_counter()
    try:
        result = func()
    except Exception as err:  # noqa: BLE001 - a benchmark reports every failure and goes on
        result = {"status": "failed", "error": f"{type(err).__name__}: {err}"}
    result.setdefault("status", "ok")
    result["wall_s"] = round(time.perf_counter() - start, 1)
    print(f"    {name}: {result['status']}" + (f" ({result.get('reason') or result.get('error')})"
                                               if result["status"] != "ok" else "") + f", {result['wall_s']} s", flush=True)
    return result


def skipped(reason: str) -> dict[str, Any]:
    return {"status": "skipped", "reason": reason}


def write_report(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


def tool_env() -> dict[str, str]:
    """Subprocess environment: this interpreter's bin folder (the venv: hatl, snakemake, lmplz) first on PATH."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1"}


def run_logged(argv: Sequence[str], log_path: Path, cwd: Path = ROOT, timeout_s: float = 0.0) -> dict[str, Any]:
    """Run a command, output to ``log_path``; its wall time, exit status and whether the budget stopped it.

    The command gets its own process group, so a budget stop (SIGTERM, then SIGKILL after 30 s) reaches the
    jobs it started (Snakemake's) and nothing else.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(list(argv), cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=tool_env(), start_new_session=True)
        stopped = False
        try:
            rc = proc.wait(timeout=timeout_s or None)
        except subprocess.TimeoutExpired:
            stopped = True
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                rc = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                rc = proc.wait()
    return {"returncode": rc, "wall_s": round(time.perf_counter() - start, 1), "stopped_by_budget": stopped, "log": str(log_path)}


def log_tail(path: str | Path, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def default_workdir() -> Path:
    """Beside the project (as the other real-data benchmarks), or the temp folder when that is not writable."""
    for candidate in (ROOT.parent / "hatl_gpu_check_work", Path(tempfile.gettempdir()) / "hatl_gpu_check_work"):
        try:
            candidate.mkdir(parents=True, exist_ok=True)
            return candidate
        except OSError:
            continue
    raise SystemExit("no writable work folder; pass --workdir")


def link_workflow(workdir: Path) -> None:
    """A Snakemake work directory whose workflow files are links to the repository's (outputs stay outside it)."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in LINKS:
        link = workdir / name
        if not link.exists() and not link.is_symlink():
            link.symlink_to(ROOT / name)


# ---------------------------------------------------------------------------------------------- environment
def environment() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__, "torch_cuda": torch.version.cuda,
                            "cuda_available": torch.cuda.is_available(), "cpu_count": os.cpu_count(),
                            "torch_threads": torch.get_num_threads()}
    try:
        info["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                            check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        info["git_commit"] = None  # a copy of the working tree without .git
    if not torch.cuda.is_available():
        info["note"] = NO_CUDA
        return info
    info["gpus"] = [{"name": torch.cuda.get_device_name(i), "capability": list(torch.cuda.get_device_capability(i)),
                     "memory_gib": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1)}
                    for i in range(torch.cuda.device_count())]
    info["bf16_supported"] = torch.cuda.is_bf16_supported()
    info["cudnn"] = torch.backends.cudnn.version()
    info["nccl"] = nccl_version()
    return info


def nccl_version() -> str | None:
    import torch
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_nccl_available():
        return None
    version = torch.cuda.nccl.version()
    return ".".join(map(str, version)) if isinstance(version, tuple) else str(version)


# ---------------------------------------------------------------------------------------------- pytest -m gpu
def parse_junit(path: Path) -> dict[str, Any]:
    """Counts and per-test outcome (with skip reasons and what the test printed) from pytest's JUnit XML."""
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    assert suite is not None, f"{path}: no testsuite"
    tests = []
    for case in suite.iter("testcase"):
        outcome, detail = "passed", None
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                detail = (node.get("message") or "")[:500]
                break
        out = case.findtext("system-out") or ""
        printed = [line for line in out.splitlines() if line.strip() and not line.startswith("---")]
        tests.append({"test": f"{case.get('classname')}::{case.get('name')}", "outcome": outcome,
                      "time_s": round(float(case.get("time") or 0.0), 2), "detail": detail, "printed": printed})
    counts = {k: sum(t["outcome"] == k for t in tests) for k in ("passed", "failed", "error", "skipped")}
    return {"counts": counts, "tests": tests}


def pytest_gpu(out_dir: Path, budget_s: float) -> dict[str, Any]:
    xml = out_dir / "pytest_gpu.xml"
    argv = [sys.executable, "-m", "pytest", "-m", "gpu", "tests", "-q", "-rs", "-p", "no:cacheprovider",
            f"--junitxml={xml}", "-o", "junit_logging=system-out"]
    run = run_logged(argv, out_dir / "pytest_gpu.log", timeout_s=budget_s)
    if not xml.exists():
        return {"status": "failed", **run, "error": "pytest wrote no report", "log_tail": log_tail(run["log"])}
    result = {**run, **parse_junit(xml)}
    bad = result["counts"]["failed"] + result["counts"]["error"]
    if run["stopped_by_budget"] or bad:
        result["status"] = "failed"
        result["log_tail"] = log_tail(run["log"], 40)
    elif result["counts"]["passed"] == 0:
        result["status"] = "skipped"
        result["reason"] = "every gpu test skipped: " + "; ".join(sorted({t["detail"] or "" for t in result["tests"]}))
    return result


# ---------------------------------------------------------------------------------------------- ST-GCN++
def paper_backbone():
    """ST-GCN++ as the default config builds it for real data: 135 joints, width 64 (config/config.yaml)."""
    from hatl.config import load_config
    from hatl.models.checkpoint import new_backbone

    return new_backbone(load_config(ROOT / "config" / "config.yaml"))


def time_fwd_bwd(model: Any, x: Any, bf16: bool, warmup: int, repeats: int) -> list[float]:
    """Seconds per forward+backward (train mode, gradient of the summed frame features), synchronised on CUDA."""
    import torch

    from hatl.train.precision import autocast

    cuda = x.device.type == "cuda"
    times = []
    for i in range(warmup + repeats):
        model.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with autocast(x.device, bf16):
            feats = model.frame_features(x)
        feats.float().sum().backward()
        if cuda:
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times


def stgcnpp(quick: bool) -> dict[str, Any]:
    import torch

    sizes = QUICK_STGCN if quick else PAPER_STGCN
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", 0) if cuda else torch.device("cpu")
    torch.manual_seed(0)
    model = paper_backbone().to(device).train()
    x = torch.randn(sizes["batch"], sizes["frames"], model.num_joints, 3, device=device)
    result: dict[str, Any] = {"device": str(device), "batch": sizes["batch"], "frames": sizes["frames"], "joints": model.num_joints,
                              "base_channels": model.config.base_channels, "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 3)}
    precisions = ("fp32", "bf16") if cuda else ("fp32",)
    if not cuda:
        result["note"] = "CPU: fp32 only (training never uses bf16 on a CPU), small sizes"
    for precision in precisions:
        if cuda:
            tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = precision != "fp32"
            torch.cuda.reset_peak_memory_stats(device)
        try:
            times = time_fwd_bwd(model, x, precision == "bf16", sizes["warmup"], sizes["repeats"])
        finally:
            if cuda:
                torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
        median = statistics.median(times)
        result[precision] = {"ms_per_batch": round(1000 * median, 2), "ms_min": round(1000 * min(times), 2),
                             "samples_per_s": round(sizes["batch"] / median, 1)}
        if cuda:
            result[precision]["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    if "bf16" in result:
        result["bf16_speedup"] = round(result["fp32"]["ms_per_batch"] / result["bf16"]["ms_per_batch"], 2)
    return result


# ---------------------------------------------------------------------------------------------- PHOENIX14T epoch
def one_epoch_config(example: Path, out: Path, changes: dict[str, Any]) -> Path:
    """The example config with ``changes`` merged in (one epoch, absolute data root), written to ``out``."""
    import yaml

    from hatl.config import deep_merge

    cfg = yaml.safe_load(example.read_text(encoding="utf-8"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(deep_merge(cfg, changes), sort_keys=False), encoding="utf-8")
    return out


def subset_manifest(path: Path, per_split: dict[str, int]) -> dict[str, int]:
    """Keep the first N rows of each named split in a manifest (quick mode); other splits are kept whole."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    splits = table.column("split").to_pylist()
    seen: dict[str, int] = {}
    keep = []
    for split in splits:
        seen[split] = seen.get(split, 0) + 1
        keep.append(split not in per_split or seen[split] <= per_split[split])
    kept = table.filter(pa.array(keep))
    pq.write_table(kept, path)
    return {s: int(pc.sum(pc.equal(kept.column("split"), s)).as_py() or 0) for s in sorted(set(splits))}


def phoenix_epoch(data: Path, workdir: Path, quick: bool) -> dict[str, Any]:
    corpus = data / "phoenix14t" / "manual"
    if not (corpus / "PHOENIX-2014-T.train.corpus.csv").exists():
        return skipped(f"PHOENIX14T annotations not found under {corpus} (../shared/data is not on this machine; --data)")
    import torch

    work = workdir / "phoenix14t"
    changes: dict[str, Any] = {"datasets": {"phoenix14t": {"root": str((data / "phoenix14t").resolve())}},
                               "training": {"max_epochs": 1, "device": "auto"}}
    config = one_epoch_config(ROOT / "config" / "examples" / "phoenix14t_gloss2text.yaml", work / "config.yaml", changes)
    ds = work / "phoenix14t"
    manifest, vocab, run = ds / "manifest.parquet", ds / "vocab" / "main", work / "run"
    hatl = [sys.executable, "-m", "hatl.cli"]
    common = ["--config", str(config), "--dataset", "phoenix14t"]
    steps = {
        "manifest": [*hatl, "manifest", *common, "--out", str(manifest), "--splits-out", str(ds / "splits.tsv")],
        "vocab": [*hatl, "vocab", *common, "--manifest", str(manifest), "--fold", "main", "--out-dir", str(vocab)],
        "train": [*hatl, "train", *common, "--model", "transformer", "--task", "gloss2text", "--strategy", "full",
                  "--manifest", str(manifest), "--vocab-dir", str(vocab), "--out-dir", str(run / "out"),
                  "--resume-dir", str(run / "resume"), "--threads", "1"],
    }
    result: dict[str, Any] = {"config": "config/examples/phoenix14t_gloss2text.yaml + max_epochs 1"}
    import shutil

    shutil.rmtree(run, ignore_errors=True)  # time a fresh epoch, never a resumed or finished one
    for name, argv in steps.items():
        step = run_logged(argv, work / "logs" / f"{name}.log")
        result[f"{name}_wall_s"] = step["wall_s"]
        if step["returncode"] != 0:
            return {**result, "status": "failed", "error": f"hatl {name} exit {step['returncode']}", "log_tail": log_tail(step["log"])}
        if name == "manifest" and quick:
            result["quick_subset"] = subset_manifest(manifest, QUICK_PHOENIX)
    line = read_jsonl(run / "out" / "log.jsonl")[0]
    summary = json.loads((run / "out" / "summary.json").read_text(encoding="utf-8"))
    n_train = summary["samples"]["train"]
    result.update({
        "device": "cuda" if torch.cuda.is_available() else "cpu", "train_samples": n_train, "dev_samples": summary["samples"]["dev"],
        "epoch_time_s": line["epoch_time_s"], "train_samples_per_s": round(n_train / line["epoch_time_s"], 1),
        "loss_total": round(line["loss_total"], 4),
        "dev_bleu4_after_one_epoch": line["dev_bleu4"],
        "note": "epoch_time_s is the training pass plus the greedy dev evaluation; one epoch is a speed figure, not a result",
    })
    return result


# ---------------------------------------------------------------------------------------------- MedASL epoch
def medasl_problem(data: Path) -> str | None:
    if (data / "Annotations").is_dir() and (data / "Videos").is_dir():
        n = sum(1 for p in (data / "Videos").iterdir() if p.is_dir())
        if n >= 400:
            return None
        return f"{data} holds {n} sentence folders, not the 500 of the public release"
    return f"MedASL release not found at {data}; get it beside the project: git clone https://github.com/INDUCE-Lab/MedASL {data}"


def medasl_epoch(data: Path, workdir: Path, budget_s: float) -> dict[str, Any]:
    problem = medasl_problem(data)
    if problem:
        return skipped(problem)
    if not cuda_available():
        return skipped(f"{NO_CUDA}: full fine-tuning at the paper's sizes is a GPU measurement (the CPU overlay's "
                       "is in docs/validation.md)")
    import yaml

    work = workdir / "medasl"
    link_workflow(work)
    overlay = work / "gpu_check_overlay.yaml"
    overlay.write_text(yaml.safe_dump({"datasets": {"medasl": {"root": str(data.resolve())}},
                                       "training": {"max_epochs": 1, "device": "auto"}}), encoding="utf-8")
    model, task, strategy, fold = MEDASL_RUN
    from hatl.experiment import seed_folder

    seed = seed_folder(1234)  # config/examples/medasl.yaml sets no training.seeds: one run with the top-level seed
    run_dir = f"results/runs/medasl/{model}/{task}/{strategy}/{fold}/{seed}"
    argv = [sys.executable, "-m", "snakemake", f"{run_dir}/summary.json", "--cores", "all",
            "--configfile", "config/examples/medasl.yaml", str(overlay)]
    step = run_logged(argv, work / "snakemake.log", cwd=work, timeout_s=budget_s)
    result: dict[str, Any] = {"run": "/".join(MEDASL_RUN), "config": "config/examples/medasl.yaml (no CPU overlay) + max_epochs 1",
                              "snakemake_wall_s": step["wall_s"], "stopped_by_budget": step["stopped_by_budget"]}
    summary_path = work / run_dir / "summary.json"
    if step["returncode"] != 0 or not summary_path.exists():
        return {**result, "status": "failed", "error": f"snakemake exit {step['returncode']}", "log_tail": log_tail(step["log"])}
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    line = read_jsonl(work / run_dir / "log.jsonl")[0]
    result.update({"train_samples": summary["samples"]["train"], "epoch_time_s": line["epoch_time_s"],
                   "train_samples_per_s": round(summary["samples"]["train"] / line["epoch_time_s"], 1),
                   "trainable_layers": line["trainable_layers"], "loss_total": round(line["loss_total"], 4)})
    bench = work / "benchmarks" / "train" / "medasl" / model / task / strategy / fold / f"{seed}.tsv"
    if bench.exists():
        rows = bench.read_text(encoding="utf-8").splitlines()
        head, values = rows[0].split("\t"), rows[1].split("\t")
        result["train_job"] = {k: values[head.index(k)] for k in ("s", "max_rss") if k in head}
    return result


# ---------------------------------------------------------------------------------------------- demo table 5
def snakemake_progress(log_text: str) -> dict[str, int] | None:
    """The last 'N of M steps (P%) done' line of a Snakemake log."""
    last = None
    for line in log_text.splitlines():
        match = PROGRESS_RE.match(line.strip())
        if match:
            last = {"done": int(match.group(1)), "total": int(match.group(2))}
    return last


def training_times(workdir: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted((workdir / "results" / "runs").glob("*/*/*/*/*/*/summary.json")):
        s = json.loads(path.read_text(encoding="utf-8"))
        out.append({"run": "/".join(path.parent.parts[-6:]), "train_time_s": round(s["train_time_s"], 1),
                    "epochs_run": s["epochs_run"]})
    return out


def table5(workdir: Path, budget_s: float, quick: bool) -> dict[str, Any]:
    import shutil

    if shutil.which("lmplz", path=tool_env()["PATH"]) is None:
        return skipped("KenLM's lmplz is not installed (scripts/setup.sh builds it; it needs the Boost build packages)")
    work = workdir / "demo"
    link_workflow(work)
    argv = [sys.executable, "-m", "snakemake", "results/table5.csv", "--cores", "all", *(["--dry-run"] if quick else [])]
    step = run_logged(argv, work / "snakemake.log", cwd=work, timeout_s=budget_s)
    text = Path(step["log"]).read_text(encoding="utf-8", errors="replace")
    result: dict[str, Any] = {"command": "snakemake results/table5.csv --cores all" + (" --dry-run" if quick else ""),
                              "cores": os.cpu_count(), **{k: step[k] for k in ("wall_s", "stopped_by_budget", "returncode")},
                              "progress": snakemake_progress(text), "trainings": training_times(work)}
    if quick:
        jobs = re.search(r"^total\s+(\d+)", text, re.MULTILINE)
        result["jobs_planned"] = int(jobs.group(1)) if jobs else None
        result["note"] = f"{NO_CUDA}: dry run only (the demo takes 7.6-10.8 min on 2 CPU cores)"
    if step["stopped_by_budget"]:
        result["status"] = "partial"
        result["reason"] = f"stopped after the {budget_s:.0f} s budget; rerun the same command to finish (Snakemake keeps finished jobs)"
    elif step["returncode"] != 0:
        result.update(status="failed", error=f"snakemake exit {step['returncode']}", log_tail=log_tail(step["log"]))
    return result


# ---------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ROOT / "gpu_check_out")) / "gpu_check.json")
    parser.add_argument("--mode", choices=("auto", "paper", "quick"), default="auto",
                        help="paper sizes, or small ones; auto = paper with CUDA, quick without")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("HATL_SHARED_DATA", ROOT.parent / "shared" / "data")),
                        help="the real-data folder holding phoenix14t/ (default ../shared/data)")
    parser.add_argument("--medasl-data", type=Path, default=ROOT.parent / "medasl_full", help="the public MedASL release")
    parser.add_argument("--workdir", type=Path, default=None, help="work folder outside the repository (default beside it)")
    parser.add_argument("--pytest-budget-s", type=float, default=240)
    parser.add_argument("--medasl-budget-s", type=float, default=240)
    parser.add_argument("--table5-budget-s", type=float, default=150)
    args = parser.parse_args(argv)

    cuda = cuda_available()
    quick = args.mode == "quick" or (args.mode == "auto" and not cuda)
    workdir = (args.workdir or default_workdir()).resolve()
    if workdir.is_relative_to(ROOT):
        raise SystemExit(f"--workdir {workdir} is inside the repository; use a folder outside it")
    out_dir = args.out.parent
    report: dict[str, Any] = {"cuda_available": cuda, "mode": "quick" if quick else "paper", "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                              "workdir": str(workdir), "parts": {}}
    if not cuda:
        report["note"] = NO_CUDA
        print(f"*** {NO_CUDA} ***", flush=True)
    parts: dict[str, Callable[[], dict[str, Any]]] = {
        "environment": environment,
        "pytest_gpu": lambda: pytest_gpu(out_dir, args.pytest_budget_s),
        "stgcnpp": lambda: stgcnpp(quick),
        "phoenix_epoch": lambda: phoenix_epoch(args.data, workdir, quick),
        "medasl_epoch": lambda: medasl_epoch(args.medasl_data, workdir, args.medasl_budget_s),
        "table5": lambda: table5(workdir, args.table5_budget_s, quick),
    }
    start = time.perf_counter()
    for name in args.parts:
        report["parts"][name] = run_part(name, parts[name])
        report["wall_s"] = round(time.perf_counter() - start, 1)
        write_report(args.out, report)
    failed = [n for n, r in report["parts"].items() if r["status"] == "failed"]
    print(json.dumps(report, indent=2, default=str))
    print(f"figures written to {args.out}" + (f"; FAILED parts: {', '.join(failed)}" if failed else ""), flush=True)
    if not cuda:
        print(f"*** {NO_CUDA} ***", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
