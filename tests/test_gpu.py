"""The CUDA path (issue 16): bf16 autocast, resume, DDP over NCCL and GPU claiming on real devices.

Every test here is marked ``gpu`` and skips when ``torch.cuda.is_available()`` is False (a CPU build of torch,
or no GPU), so ``make test`` on a laptop reports them as skipped with that reason. ``bench/gpu_check.sh`` runs
them (``pytest -m gpu``) on a GPU machine with the CUDA build of torch.

They use the public entry points only: the ``hatl train`` command in a subprocess, ``hatl.models``,
``hatl.train.distributed``, ``hatl.train.gpu_claim``, ``hatl.train.precision`` and the resume files
(``state.pt``, ``progress.json``), not the trainer's internals.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
NO_CUDA = "needs CUDA: torch.cuda.is_available() is False (CPU build of torch or no GPU); bench/gpu_check.sh runs these"
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)]

# bf16 vs fp32, one demo-sized model (sign2gloss2text: CTC, CE and both frame losses), the same init and batches,
# dropout 0: bfloat16 keeps 8 mantissa bits (relative rounding 2^-9 = 2e-3 per matmul/conv output); autocast keeps
# softmax, losses, norms, weights and optimizer state in float32. Calibrated with CPU bf16 autocast on the same
# model and batches (no GPU was lent when this was written): first-step loss 2e-4 relative, losses over 5 AdamW
# steps within 1.1e-3, translator gradient cosine 0.99994 (norm ratio 0.999). The backbone's gradient agrees less
# the deeper the layer: cosine 0.97 for the top layer L10 down to 0.37 for L1 (0.40 over the whole backbone), because
# a randomly initialised 10-layer ST-GCN++ on random keypoints sums many nearly cancelling bf16 terms; the test
# prints the CUDA figures and asserts only that L10 agrees and the whole backbone's gradient points the same way.
BF16_LOSS_REL_FIRST = 5e-3
BF16_LOSS_REL_STEPS = 2e-2
BF16_TRANSLATOR_COSINE = 0.995
BF16_TOP_LAYER_COSINE = 0.9
BF16_STEPS = 5

# DDP vs one process, fp32 with TF32 off, AdamW eps 1e-3 (see tests/test_ddp.py for why not 1e-8): the two
# differ by summation order only. CUDA reductions are not as reproducible as the CPU's, so the bounds are ten
# times test_ddp.py's.
DDP_WEIGHT_TOL = 1e-4
DDP_METRIC_REL = 1e-4
ADAM_EPS = 1e-3
# The world-of-one comparison on the demo model (measured with gloo on the CPU): translator gradients agree to
# 8e-7 relative, the backbone's to 3e-3 - which is this randomly initialised backbone's own float32 round-off
# (float32 against float64 differs by 2.9e-3 too: its gradients sum many nearly cancelling terms) - and the
# losses of 3 AdamW steps to 2e-4.
DDP1_TRANSLATOR_GRAD_REL = 1e-4
DDP1_BACKBONE_GRAD_REL = 3e-2
DDP1_LOSS_REL = 2e-3

# Resume on CUDA: state.pt carries weights, optimizer, batch position and the CUDA RNG of every device, so a
# resumed run equals an uninterrupted one exactly when the kernels are deterministic. cuDNN convolution backward
# and some CUDA reductions (atomics) are not: then two uninterrupted runs already differ, and the resumed run
# may differ from either by as much. What is asserted: bit-for-bit when two uninterrupted runs agree bit for bit,
# otherwise within RESUME_SPREAD times their own difference.
RESUME_SPREAD = 10.0


# ---------------------------------------------------------------------------------------------- helpers
def tiny_helpers():
    """The tiny synthetic dataset builders of the test suite (they may move to a shared helpers module)."""
    for name in ("helpers", "test_train_data"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "tiny_run_inputs"):
            return module
    pytest.fail("no test module provides tiny_run_inputs (tests/helpers.py or tests/test_train_data.py)")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    return tiny_helpers().tiny_run_inputs(tmp_path_factory.mktemp("tiny_gpu"))


@pytest.fixture
def true_fp32() -> Iterator[None]:
    """TF32 off for the test (fp32 references), restored after."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def write_config(inputs: dict, root: Path, dropout: float | None = None, **training) -> Path:
    """The tiny config with ``training`` changes (device cuda unless given) and optionally another dropout."""
    import yaml

    helpers = tiny_helpers()
    cfg = yaml.safe_load(inputs["config_path"].read_text(encoding="utf-8"))
    cfg["training"] = {**copy.deepcopy(helpers.TINY_TRAINING), "device": "cuda", **training}
    if dropout is not None:
        cfg["model"] = {name: {**sizes, "dropout": dropout} for name, sizes in copy.deepcopy(helpers.TINY_MODEL).items()}
    root.mkdir(parents=True, exist_ok=True)
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def train_argv(inputs: dict, root: Path, config: Path, nproc: int = 1, task: str = "sign2text", strategy: str = "hatl") -> list[str]:
    argv = [sys.executable, "-m", "hatl.cli", "train", "--config", str(config), "--dataset", "tiny", "--model", "transformer",
            "--task", task, "--strategy", strategy, "--fold", "main", "--data-dir", str(inputs["data_dir"]),
            "--vocab-dir", str(inputs["vocab_dir"]), "--out-dir", str(root / "out"), "--resume-dir", str(root / "resume"),
            "--threads", "1", "--nproc", str(nproc)]
    if task != "gloss2text":
        argv += ["--backbone", str(inputs["backbone"])]
    return argv


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without torchrun's variables (a test may itself run under a launcher)."""
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def run_cli(argv: list[str], env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, env=env or clean_env(), timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def final_weights(root: Path) -> dict[str, torch.Tensor]:
    return torch.load(root / "resume" / "state.pt", map_location="cpu", weights_only=False)["model"]


def max_weight_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) if a[k].numel() else 0.0
               for k in a if a[k].is_floating_point())


def bitwise_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------------------------- demo model
def demo_model(seed: int = 0, task: str = "sign2text_ctc", translator: str = "transformer"):
    """The demo's model (config/config.yaml with demo.overrides: 67 joints, backbone width 8, translator width 64),
    randomly initialised on the CPU, dropout 0 (masks would differ between the runs compared)."""
    from hatl.config import effective_config, load_config
    from hatl.models.checkpoint import new_backbone
    from hatl.models.slt import SLTModel

    cfg = effective_config(load_config(REPO_ROOT / "config" / "config.yaml"), "phoenix14t")
    model_cfg = copy.deepcopy(cfg["model"])
    for name in ("transformer", "adat"):
        model_cfg[name]["dropout"] = 0.0
    torch.manual_seed(seed)
    backbone = new_backbone(cfg)
    return SLTModel(task, translator, backbone, 40, 60, cfg=model_cfg), backbone.num_joints


def demo_batches(num_joints: int, n_batches: int = BF16_STEPS, batch_size: int = 8, seed: int = 0) -> list[dict]:
    """Batches shaped like the demo's (16-40 frames, 2-5 glosses, 4-10 words), through the trainer's collate."""
    from hatl import batches as D

    rng = np.random.default_rng(seed)
    batches = []
    for b in range(n_batches):
        samples = []
        for i in range(batch_size):
            frames, n_gloss, n_text = int(rng.integers(16, 41)), int(rng.integers(2, 6)), int(rng.integers(4, 11))
            kp = rng.normal(0.0, 0.5, (frames, num_joints, 3)).astype(np.float32)
            gloss = rng.integers(D.BLANK + 1, 40, n_gloss)
            text = rng.integers(D.UNK + 1, 60, n_text)
            samples.append(D.Sample(f"b{b}s{i}", kp, gloss, text, " ".join(map(str, gloss)), " ".join(map(str, text))))
        batches.append(D.collate(samples))
    return batches


def step_trace(model: torch.nn.Module, batches: list[dict], device: torch.device,
               autocast: Callable[[], object]) -> tuple[list[float], dict[str, torch.Tensor]]:
    """Losses of successive AdamW steps (clip 1.0, as the trainer) and the first step's gradients by parameter name."""
    from hatl import batches as D

    model = model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98))
    losses: list[float] = []
    first_grads: dict[str, torch.Tensor] = {}
    for batch in batches:
        batch = D.to_device(batch, device)
        with autocast():
            out = model(batch)
            total = model.losses(batch, out)["total"]
        assert total.dtype == torch.float32, f"the loss must stay float32 under autocast, got {total.dtype}"
        opt.zero_grad(set_to_none=True)
        total.backward()
        if not first_grads:
            first_grads = {n: p.grad.detach().double().reshape(-1).cpu() for n, p in model.named_parameters() if p.grad is not None}
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(float(total.detach()))
    return losses, first_grads


def gradient_cosine(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], prefix: str = "", exclude: str | None = None) -> float:
    names = [n for n in a if n.startswith(prefix) and not (exclude and n.startswith(exclude))]
    assert names and all(n in b for n in names), prefix
    va, vb = torch.cat([a[n] for n in names]), torch.cat([b[n] for n in names])
    return float(torch.nn.functional.cosine_similarity(va, vb, dim=0))


def compare_bf16_fp32(device: torch.device, bf16_autocast: Callable[[], object]) -> dict[str, float]:
    """Run the same steps in fp32 and under ``bf16_autocast``; return the agreement figures (asserted by the test)."""
    import contextlib

    model, joints = demo_model()
    batches = demo_batches(joints)
    loss32, grad32 = step_trace(copy.deepcopy(model), batches, device, contextlib.nullcontext)
    loss16, grad16 = step_trace(copy.deepcopy(model), batches, device, bf16_autocast)
    rel = [abs(a - b) / abs(a) for a, b in zip(loss32, loss16)]
    n_layers = len(model.backbone.gcn)
    figures = {
        "loss_rel_first": rel[0], "loss_rel_max": max(rel), "loss_fp32_first": loss32[0], "loss_fp32_last": loss32[-1],
        "translator_grad_cosine": gradient_cosine(grad32, grad16, exclude="backbone."),
        "backbone_grad_cosine": gradient_cosine(grad32, grad16, prefix="backbone."),
    }
    for m in range(n_layers, 0, -1):  # L10 (top) .. L1; data_bn, part of L1, is left out of the per-layer figure
        figures[f"L{m}_grad_cosine"] = gradient_cosine(grad32, grad16, prefix=f"backbone.gcn.{m - 1}.")
    figures["top_layer_grad_cosine"] = figures[f"L{n_layers}_grad_cosine"]
    return figures


# ---------------------------------------------------------------------------------------------- bf16
def test_bf16_autocast_training_steps_agree_with_fp32(true_fp32):
    from hatl.train.precision import autocast, configure_precision

    device = torch.device("cuda", 0)
    if not torch.cuda.is_bf16_supported():
        pytest.skip(f"{torch.cuda.get_device_name(0)} has no native bfloat16: training.precision bf16 runs in fp32 there")
    assert configure_precision({"training": {"precision": "bf16"}}, device) is True
    assert configure_precision({"training": {"precision": "fp32"}}, device) is False
    figures = compare_bf16_fp32(device, lambda: autocast(device, True))
    print("bf16 vs fp32:", json.dumps(figures))
    assert figures["loss_rel_first"] < BF16_LOSS_REL_FIRST, figures
    assert figures["loss_rel_max"] < BF16_LOSS_REL_STEPS, figures
    assert figures["translator_grad_cosine"] > BF16_TRANSLATOR_COSINE, figures
    assert figures["top_layer_grad_cosine"] > BF16_TOP_LAYER_COSINE, figures
    assert figures["backbone_grad_cosine"] > 0.0, figures
    assert figures["loss_fp32_last"] < figures["loss_fp32_first"], "the steps must train (loss falls)"


def test_hatl_train_honours_training_precision(inputs, tmp_path):
    # The same one-epoch run through `hatl train` in bf16 and in fp32: the trainer must say which it uses, the
    # two must really differ (bf16 rounding), and their losses agree within the bf16 tolerance above.
    logs = {}
    for precision in ("bf16", "fp32"):
        config = write_config(inputs, tmp_path / precision, dropout=0.0, max_epochs=1, precision=precision)
        done = run_cli(train_argv(inputs, tmp_path / precision, config, strategy="full"))
        expected = "bf16 autocast" if precision == "bf16" and torch.cuda.is_bf16_supported() else "fp32"
        assert re.search(rf"precision on cuda:\d+: {expected}", done.stderr), \
            f"hatl train does not report training.precision (is configure_precision called by the trainer?): {done.stderr[-1500:]}"
        logs[precision] = json.loads((tmp_path / precision / "out" / "log.jsonl").read_text().splitlines()[0])
    bf16, fp32 = logs["bf16"]["loss_total"], logs["fp32"]["loss_total"]
    print(f"hatl train, 1 epoch, loss_total: bf16 {bf16:.6f}, fp32 {fp32:.6f}")
    if torch.cuda.is_bf16_supported():
        assert bf16 != fp32, "bf16 and fp32 runs are identical: autocast was not applied"
    assert abs(bf16 - fp32) / abs(fp32) < BF16_LOSS_REL_STEPS


# ---------------------------------------------------------------------------------------------- resume
def kill_mid_run(argv: list[str], root: Path, env: dict[str, str], timeout: float = 240) -> dict:
    """Start ``hatl train``, SIGKILL it (by its own pid) once a resume state from epoch 2 on exists; return that progress."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    progress_file = root / "resume" / "progress.json"
    killed_at = None
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                progress = json.loads(progress_file.read_text())
            except (FileNotFoundError, json.JSONDecodeError):
                progress = None
            if progress and progress["epoch"] >= 2 and not progress["finished"]:
                os.kill(proc.pid, signal.SIGKILL)
                killed_at = progress
                break
            time.sleep(0.002)
    finally:
        if proc.poll() is None and killed_at is None:
            os.kill(proc.pid, signal.SIGKILL)
        stderr = proc.communicate(timeout=60)[1]
    assert proc.returncode == -signal.SIGKILL and killed_at is not None, \
        f"the run ended (exit {proc.returncode}) before it could be killed mid-run: {stderr[-2000:]}"
    return killed_at


def test_sigkill_and_resume_on_cuda_gives_the_uninterrupted_weights(inputs, tmp_path):
    # 6 HATL epochs (a release, dropout 0.1 drawn from the CUDA generator), state every 2 steps.
    config = write_config(inputs, tmp_path, max_epochs=6, checkpoint_every_steps=2)
    env = clean_env()
    run_cli(train_argv(inputs, tmp_path / "a", config), env)
    killed_at = kill_mid_run(train_argv(inputs, tmp_path / "c", config), tmp_path / "c", env)
    state = torch.load(tmp_path / "c" / "resume" / "state.pt", map_location="cpu", weights_only=False)
    assert "cuda" in state["rng"] and len(state["rng"]["cuda"]) == torch.cuda.device_count(), "CUDA RNG not captured"
    assert not (tmp_path / "c" / "out" / "summary.json").exists()
    resumed = run_cli(train_argv(inputs, tmp_path / "c", config), env)
    assert "resuming" in resumed.stderr, resumed.stderr[-2000:]
    wa, wc = final_weights(tmp_path / "a"), final_weights(tmp_path / "c")
    if bitwise_equal(wa, wc):
        print(f"resume on CUDA: killed at epoch {killed_at['epoch']} step {killed_at['step_in_epoch']}; bit for bit")
        return  # exact, as on the CPU
    # Not bit for bit: only acceptable if the kernels themselves are not deterministic on this GPU.
    run_cli(train_argv(inputs, tmp_path / "b", config), env)
    wb = final_weights(tmp_path / "b")
    spread, diff = max_weight_diff(wa, wb), max_weight_diff(wa, wc)
    print(f"resume on CUDA: killed at epoch {killed_at['epoch']} step {killed_at['step_in_epoch']}; "
          f"|resumed - uninterrupted| {diff:.3e}, |uninterrupted - uninterrupted| {spread:.3e}")
    assert spread > 0, f"two uninterrupted runs agree bit for bit but the resumed one differs by {diff:.3e}"
    assert diff <= RESUME_SPREAD * spread, (diff, spread)
    # Where the two uninterrupted runs took the same decisions (releases, stop), the resumed one must too.
    summaries = {name: json.loads((tmp_path / name / "out" / "summary.json").read_text()) for name in "abc"}
    for key in ("epochs_run", "release_epochs", "stop_reason"):
        if summaries["a"][key] == summaries["b"][key]:
            assert summaries["c"][key] == summaries["a"][key], key


# ---------------------------------------------------------------------------------------------- DDP / NCCL
class LossOf(torch.nn.Module):
    """What DDP wraps: the model's forward and its total loss in one call (only loss tensors are returned)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict) -> torch.Tensor:
        return self.model.losses(batch, self.model(batch))["total"]


def relative_error(ref: dict[str, torch.Tensor], other: dict[str, torch.Tensor], backbone: bool) -> float:
    """|other - ref| / |ref| over the backbone's (or the rest's) flattened gradients."""
    names = [n for n in ref if n.startswith("backbone.") == backbone]
    a, b = torch.cat([ref[n] for n in names]), torch.cat([other[n] for n in names])
    return float((a - b).norm() / a.norm())


def ddp_world_of_one(device: torch.device, backend: str, store_path: Path) -> dict[str, float]:
    """The demo model's AdamW steps, plain and as DDP with global-statistics batch norm in a one-rank group;
    checks the collectives on the way; returns the largest loss difference and the first step's gradient errors."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from hatl import batches as D
    from hatl.train import distributed as DU
    from hatl.train.state import capture_rng

    dist.init_process_group(backend, store=dist.FileStore(str(store_path), 1), rank=0, world_size=1)
    try:
        assert DU.pick_backend("auto", device) == backend
        assert DU.all_reduce_sum([1.5, -2.0, 3.0]) == [1.5, -2.0, 3.0]
        assert DU.broadcast_object({"bleu4": 12.5, "wer": None}) == {"bleu4": 12.5, "wer": None}
        gathered = DU.gather_objects(capture_rng())
        assert len(gathered) == 1 and ("cuda" in gathered[0]) == (device.type == "cuda")
        model, joints = demo_model(seed=1)
        batches = demo_batches(joints, n_batches=3, seed=1)
        plain, wrapped = copy.deepcopy(model).to(device), copy.deepcopy(model).to(device)
        assert DU.globalise_batchnorm(wrapped, group=dist.new_group()) > 0
        ddp = DistributedDataParallel(LossOf(wrapped), device_ids=[device.index] if device.type == "cuda" else None,
                                      find_unused_parameters=True)
        runs = {"plain": (LossOf(plain), plain), "ddp": (ddp, wrapped)}
        opts = {name: torch.optim.AdamW(m.parameters(), lr=1e-3, eps=ADAM_EPS) for name, (_, m) in runs.items()}
        losses: dict[str, list[float]] = {name: [] for name in runs}
        grads: dict[str, dict[str, torch.Tensor]] = {}
        for batch in batches:
            batch = D.to_device(batch, device, non_blocking=device.type == "cuda")
            for name, (forward, module) in runs.items():
                opts[name].zero_grad(set_to_none=True)
                loss = forward(batch)
                loss.backward()
                grads.setdefault(name, {n: p.grad.detach().double().reshape(-1).cpu()
                                        for n, p in module.named_parameters() if p.grad is not None})
                opts[name].step()
                losses[name].append(float(loss.detach()))
        a, b = plain.state_dict(), wrapped.state_dict()
        assert a.keys() == b.keys() and grads["plain"].keys() == grads["ddp"].keys()
        for k in a:
            if not a[k].is_floating_point():
                assert torch.equal(a[k], b[k]), k  # e.g. batch norm's num_batches_tracked
        return {
            "loss_rel_max": max(abs(x - y) / abs(x) for x, y in zip(losses["plain"], losses["ddp"])),
            "translator_grad_rel": relative_error(grads["plain"], grads["ddp"], backbone=False),
            "backbone_grad_rel": relative_error(grads["plain"], grads["ddp"], backbone=True),
        }
    finally:
        dist.destroy_process_group()


def test_nccl_ddp_world_of_one_matches_the_single_process(tmp_path, true_fp32):
    # One GPU is enough to run the NCCL code paths: the DDP wrapper with device_ids, the global-statistics
    # batch norm (its all-reduces inside forward and backward, on CUDA tensors), and the small collectives the
    # trainer uses (sums, a broadcast, the per-rank RNG gather). With one rank all-reduce is the identity, so
    # the wrapped training must give the plain model's weights up to float64-vs-float32 batch-norm sums.
    device = torch.device("cuda", 0)
    torch.cuda.set_device(device)
    figures = ddp_world_of_one(device, "nccl", tmp_path / "store")
    print("NCCL world of one vs plain:", json.dumps(figures))
    assert figures["translator_grad_rel"] < DDP1_TRANSLATOR_GRAD_REL, figures
    assert figures["backbone_grad_rel"] < DDP1_BACKBONE_GRAD_REL, figures
    assert figures["loss_rel_max"] < DDP1_LOSS_REL, figures


@pytest.mark.skipif(torch.cuda.is_available() and torch.cuda.device_count() < 2,
                    reason="needs 2 or more GPUs: NCCL allows one rank per GPU (the world-of-one test covers 1 GPU)")
def test_hatl_train_nproc_all_gpus_over_nccl_equals_one_process(inputs, tmp_path):
    n = torch.cuda.device_count()
    config = write_config(inputs, tmp_path, dropout=0.0, max_epochs=3, precision="fp32", batch_size=max(4, n),
                          optimizer={"eps": ADAM_EPS}, cache_frozen_prefix=False)
    env = clean_env()
    run_cli(train_argv(inputs, tmp_path / "one", config, nproc=1), env)
    many = run_cli(train_argv(inputs, tmp_path / "many", config, nproc=n), env, timeout=600)
    assert f"launching {n} DDP workers" in many.stderr and "backend nccl" in many.stderr, many.stderr[-2000:]
    diff = max_weight_diff(final_weights(tmp_path / "one"), final_weights(tmp_path / "many"))
    assert diff < DDP_WEIGHT_TOL, diff
    sa = json.loads((tmp_path / "one" / "out" / "summary.json").read_text())
    sb = json.loads((tmp_path / "many" / "out" / "summary.json").read_text())
    assert (sa["world_size"], sb["world_size"]) == (1, n)
    for key in ("best_epoch", "release_epochs", "epochs_run", "final_trainable_layers", "samples"):
        assert sa[key] == sb[key], key
    assert sb["best_metric"] == pytest.approx(sa["best_metric"], rel=DDP_METRIC_REL, abs=1e-7)


# ---------------------------------------------------------------------------------------------- GPU claim
HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import torch
    from hatl.train.gpu_claim import claim_gpu
    index = claim_gpu(int(sys.argv[2]), Path(sys.argv[1]))
    if index is not None:
        torch.cuda.set_device(index)
        x = torch.ones(1024, device="cuda")  # really use the claimed device
        print(index, torch.cuda.current_device(), x.device.index, flush=True)
    else:
        print("none", flush=True)
    sys.stdin.readline()
    """
)


def test_gpu_claim_locks_each_real_device_once(tmp_path):
    # As many holders as GPUs each get a distinct device and can allocate on it; one more finds all taken
    # (the trainer then shares GPU 0 and says so); the locks go with the processes.
    n = torch.cuda.device_count()
    env = clean_env()
    env.pop("CUDA_VISIBLE_DEVICES", None)
    holders = []
    try:
        seen = []
        for _ in range(n + 1):
            proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path), str(n)], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True, env=env)
            holders.append(proc)
            seen.append(proc.stdout.readline().split())
        assert seen[-1] == ["none"]
        claimed = [tuple(int(v) for v in row) for row in seen[:-1]]
        assert sorted(c[0] for c in claimed) == list(range(n))
        assert all(c[0] == c[1] == c[2] for c in claimed), claimed  # set_device took effect
    finally:
        for proc in holders:
            proc.communicate("\n", timeout=60)
    again = subprocess.run([sys.executable, "-c", HOLDER, str(tmp_path), str(n)], input="\n", capture_output=True,
                           text=True, env=env, timeout=120)
    assert again.stdout.split()[0] == "0"


def test_hatl_train_claims_a_gpu_only_when_it_must_choose(inputs, tmp_path):
    # Trainings started side by side without CUDA_VISIBLE_DEVICES: with several GPUs each claims its own;
    # with one GPU there is nothing to choose and no lock is taken.
    from hatl.train.gpu_claim import should_claim

    n = torch.cuda.device_count()
    locks = tmp_path / "locks"
    env = clean_env(HATL_GPU_LOCK_DIR=str(locks))
    env.pop("CUDA_VISIBLE_DEVICES", None)
    config = write_config(inputs, tmp_path, max_epochs=2)
    runs = min(n, 2) if n > 1 else 1
    procs = [subprocess.Popen(train_argv(inputs, tmp_path / f"run{i}", config), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, env=env) for i in range(runs)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), [e[-2000:] for e in errs]
    claims = sorted(line.split("claimed GPU ")[1].split()[0] for e in errs for line in e.splitlines() if "claimed GPU " in line)
    if should_claim(n, env):
        assert claims == [str(i) for i in range(runs)], errs
    else:
        assert n == 1 and claims == [] and not any(locks.glob("*.lock")), errs


def test_supervised_pretraining_trains_and_predicts_on_cuda():
    """backbone.pretrain.supervised.device: cuda. The CPU test's recipe (test_pretrain_supervised.py: 8 of 12 signs
    of an unseen signer on CPU) with every CUDA-touching option on: the model stays on the GPU, the held-out signer
    is still named, and the exported checkpoint holds CPU tensors."""
    from dataclasses import replace

    from test_pretrain_supervised import toy_signs

    from hatl.models.graph import kinect20_graph
    from hatl.models.pretrain import pyskl_state_dict
    from hatl.models.pretrain_supervised import SupervisedConfig, fit, probabilities
    from hatl.models.stgcnpp import STGCNPPConfig

    signs = toy_signs()
    test = signs.signers == "a"
    cfg = SupervisedConfig(frames=8, epochs=12, batch_size=8, lr=0.01, tilt=0.0, axis_scale=0.0, joint_dropout=0.0,
                           label_smoothing=0.0, test_crops=1, device="cuda")
    graph, arch = kinect20_graph(), STGCNPPConfig(in_channels=3, base_channels=6)
    trained = fit(signs.x[~test], signs.y[~test], 3, graph, arch, cfg, seed=0)
    assert all(p.is_cuda for p in trained.model.parameters())
    probs = probabilities(trained.model, signs.x[test], graph, cfg)
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert (probs.argmax(1) == signs.y[test]).mean() >= 0.5
    assert all(not t.is_cuda for t in pyskl_state_dict(trained.model).values())
    mixed = replace(cfg, epochs=2, sample_statistics=0.2, average_from=0.5, mixstyle=0.5)
    both = fit(signs.x[~test], signs.y[~test], 3, graph, arch, mixed, seed=0)
    assert both.averaged is not None and next(both.averaged.parameters()).is_cuda
    assert probabilities(both.model, signs.x[test], graph, mixed).shape == (int(test.sum()), 3)
