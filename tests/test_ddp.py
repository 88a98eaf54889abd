"""Multi-process training (DDP over gloo on CPU): 2 ranks give the result of 1 process with the same global batch.

The 2-rank runs go through the real launch path, ``hatl train --nproc 2`` (which re-runs the command under
``torch.distributed.run``), and are compared with an in-process single-process run of the same config.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from hatl import batches as D
from hatl.train import distributed as DU
from hatl.train.recipe import RunSpec, train_run
from hatl.train.state import DRILL_PAUSE_ENV, STATE_FILE
from test_train_data import TINY_MODEL, TINY_TRAINING, tiny_run_inputs

TIME_FIELDS = ("wall_time_s", "epoch_time_s")
# The 1-rank and 2-rank runs differ only in floating-point summation order (DDP sums two half-batch
# gradients where one process sums the whole batch; global batch-norm statistics are float64 sums per
# rank): ~1e-8 relative per step. The tests run AdamW with eps 1e-3 instead of 1e-8: with eps 1e-8, the
# parameters whose true gradient is zero (a conv bias right before a batch norm, an attention key bias)
# receive pure round-off as gradient, which Adam's g/sqrt(v) normalisation turns into lr-sized steps in
# arbitrary directions (measured: up to 5e-3 after 4 epochs, in 1 process vs 2 alike); they change no
# output, but they would make a weight comparison meaningless. With eps 1e-3 every weight agrees to
# < 6e-6 (measured: 4 HATL epochs, 2 full sign2text_ctc epochs), so the tolerance below is tight: a wrong loss scaling, a missing
# shard or per-rank batch-norm statistics move weights by 1e-4 or more within one epoch.
EPS = 1e-3
WEIGHT_ATOL, WEIGHT_RTOL = 1e-5, 1e-5
METRIC_REL = 1e-5  # losses and dev metrics: measured differences up to 2e-6 relative


def training(**changes) -> dict:
    tr = copy.deepcopy(TINY_TRAINING)
    tr["optimizer"] = {"eps": EPS}
    tr.update(changes)
    return tr


def no_dropout_config(inputs: dict, tr: dict, root: Path) -> tuple[Path, dict]:
    """The tiny config with dropout 0 (dropout masks are drawn per rank, so they cannot match) and ``tr``."""
    from hatl.config import load_config

    cfg = yaml.safe_load(inputs["config_path"].read_text())
    cfg["training"] = tr
    cfg["model"] = {name: {**sizes, "dropout": 0.0} for name, sizes in copy.deepcopy(TINY_MODEL).items()}
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, load_config(path)


def cli_argv(inputs: dict, root: Path, config_path: Path, task: str, strategy: str, model: str, nproc: int) -> list[str]:
    argv = [sys.executable, "-m", "hatl.cli", "train", "--config", str(config_path), "--dataset", "tiny",
            "--model", model, "--task", task, "--strategy", strategy, "--fold", "main",
            "--data-dir", str(inputs["data_dir"]), "--vocab-dir", str(inputs["vocab_dir"]),
            "--out-dir", str(root / "out"), "--resume-dir", str(root / "resume"), "--threads", "1", "--nproc", str(nproc)]
    if task != "gloss2text":
        argv += ["--backbone", str(inputs["backbone"])]
    return argv


def run_pair(inputs: dict, root: Path, tr: dict, task: str, strategy: str, model: str) -> tuple[Path, Path, str]:
    """The same run once in this process (1 rank) and once as `hatl train --nproc 2` (2 gloo ranks)."""
    config_path, cfg = no_dropout_config(inputs, tr, root)
    one, two = root / "one", root / "two"
    train_run(RunSpec("tiny", model, task, strategy, "main", inputs["data_dir"], inputs["vocab_dir"],
                      inputs["backbone"], one / "out", one / "resume", threads=1), cfg)
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    done = subprocess.run(cli_argv(inputs, two, config_path, task, strategy, model, 2), capture_output=True, text=True,
                          env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return one, two, done.stderr


def read_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def assert_same_numbers(a, b, path: str = "") -> None:
    """Equal structure; numbers within METRIC_REL (relative) of each other, everything else equal."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            assert_same_numbers(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_numbers(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and not isinstance(b, bool):
        assert b == pytest.approx(a, rel=METRIC_REL, abs=1e-7), path
    else:
        assert a == b, path


def assert_same_run(one: Path, two: Path) -> None:
    wa = torch.load(one / "resume" / STATE_FILE, weights_only=False)["model"]  # final weights
    wb = torch.load(two / "resume" / STATE_FILE, weights_only=False)["model"]
    assert wa.keys() == wb.keys()
    for k in wa:
        if wa[k].is_floating_point():
            torch.testing.assert_close(wb[k], wa[k], atol=WEIGHT_ATOL, rtol=WEIGHT_RTOL, msg=lambda m, k=k: f"{k}: {m}")
        else:
            assert torch.equal(wa[k], wb[k]), k
    ba = torch.load(one / "out" / "best.pt", weights_only=False)["model_state"]
    bb = torch.load(two / "out" / "best.pt", weights_only=False)["model_state"]
    for k in ba:
        if ba[k].is_floating_point():
            torch.testing.assert_close(bb[k], ba[k], atol=WEIGHT_ATOL, rtol=WEIGHT_RTOL)

    def strip(lines):
        # event reasons print metrics to 6 digits, which may round apart: compare what happened instead
        return [{**{k: v for k, v in line.items() if k not in TIME_FIELDS},
                 "events": [(e["type"], e.get("layer")) for e in line["events"]]} for line in lines]

    assert_same_numbers(strip(read_log(one / "out")), strip(read_log(two / "out")))
    sa = json.loads((one / "out" / "summary.json").read_text())
    sb = json.loads((two / "out" / "summary.json").read_text())
    assert (sa["world_size"], sb["world_size"]) == (1, 2)
    assert sa["global_batch_size"] == sb["global_batch_size"]
    for key in ("best_epoch", "release_epochs", "stop_reason", "epochs_run", "final_trainable_layers", "samples"):
        assert sa[key] == sb[key], key
    assert sb["best_metric"] == pytest.approx(sa["best_metric"], rel=METRIC_REL, abs=1e-7)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return tiny_run_inputs(tmp_path_factory.mktemp("tiny_ddp"))


# ---------------------------------------------------------------------------------------------- 2 ranks
def test_two_ranks_hatl_release_equals_one_process(inputs, tmp_path):
    # HATL releases L10 at epoch 3 (the DDP wrapper is rebuilt and L10's batch norm trains on global
    # statistics); the frozen-prefix cache is off so the whole backbone runs on every (shard-)batch, which
    # is where padding shards like their global batch matters. Mid-epoch saves exercise the reduced sums.
    tr = training(max_epochs=4, checkpoint_every_steps=2, cache_frozen_prefix=False)
    one, two, stderr = run_pair(inputs, tmp_path, tr, "sign2text", "hatl", "transformer")
    assert_same_run(one, two)
    log = read_log(two / "out")
    assert [line["trainable_layers"] for line in log] == [[], [], [10], [10]]
    assert log[0]["cached_backbone_features"] is True  # each rank built its own frozen-feature cache
    assert "launching 2 DDP workers" in stderr and "rank 0 of 2" in stderr
    # rank 0 alone writes: one set of outputs, one resume state, and only rank 0's INFO lines in the log
    assert sorted(p.name for p in (two / "out").iterdir()) == ["best.pt", "log.jsonl", "summary.json"]
    assert sorted(p.name for p in (two / "resume").iterdir()) == ["progress.json", "state.pt"]
    assert "rank 1 of 2" not in stderr
    state = torch.load(two / "resume" / STATE_FILE, weights_only=False)
    assert state["world_size"] == 2 and len(state["rng_ranks"]) == 2 and state["finished"]


def test_two_ranks_sign2text_ctc_full_equals_one_process(inputs, tmp_path):
    # Every backbone layer trains (batch norm everywhere), ADAT, and all four loss terms: CTC (mean over
    # usable rows), text CE (over tokens) and the two frame losses (over Viterbi-labelled frames), each
    # rescaled by its own global count. batch_size 6 on 24 samples with pools of 2 batches.
    # Layer-wise decay on (the full baseline's ablation switch): the paper's full baseline trains L1 at the
    # top rate, and there 1 and 2 ranks differ by up to 0.7 of an Adam step in L1 after one step (measured
    # 3.6e-4 at lr 5e-4; with decay L1 trains at lr/512 and every weight agrees to < 1e-5). Suspected cause:
    # each rank pads its shard to its own longest clip, and padded frames enter the batch-norm statistics
    # (a follow-up of issue 12, reported to the lead); this test pins the loss scaling and the shard.
    lr = {**TINY_TRAINING["lr"], "full_layer_decay": True}
    tr = training(max_epochs=2, batch_size=6, lr=lr)
    one, two, _ = run_pair(inputs, tmp_path, tr, "sign2text_ctc", "full", "adat")
    assert_same_run(one, two)
    log = read_log(two / "out")
    assert all(line["loss_ctc"] > 0 and line["loss_enc"] > 0 for line in log)


# ---------------------------------------------------------------------------------------------- pieces
def test_shard_splits_every_global_batch_contiguously():
    batch = [7, 3, 9, 1, 4]
    parts = [DU.shard(batch, r, 2) for r in range(2)]
    assert parts == [[7, 3, 9], [1, 4]]
    assert [DU.shard(batch[:1], r, 2) for r in range(2)] == [[7], []]  # rank 0 is never empty
    assert sum((DU.shard(batch, r, 3) for r in range(3)), []) == batch


def test_term_scales_turn_rank_means_into_global_mean_shares():
    # two ranks with 3 and 1 tokens of losses 2.0 and 6.0: global token mean = (3*2 + 1*6) / 4 = 3
    s0 = DU.term_scales([3.0, 0.0], [4.0, 0.0], 2)
    s1 = DU.term_scales([1.0, 0.0], [4.0, 0.0], 2)
    assert (s0[0] * 2.0 + s1[0] * 6.0) / 2 == pytest.approx(3.0)  # DDP averages over the 2 ranks
    assert s0[1] == s1[1] == 0.0  # a term without any unit contributes nothing


def test_collate_pads_a_shard_like_its_global_batch():
    rng = torch.Generator().manual_seed(0)

    def sample(sid: str, frames: int, n_text: int) -> D.Sample:
        kp = torch.rand((frames, 2, 3), generator=rng).numpy()
        return D.Sample(sid, kp, torch.arange(5, 5 + n_text).numpy(), torch.arange(5, 5 + n_text).numpy(), "", "")

    short, long = sample("a", 3, 1), sample("b", 7, 4)
    alone = D.collate([short])
    padded = D.collate([short], [short, long])
    whole = D.collate([short, long])
    assert alone["keypoints"].shape[1] == 3
    for key in ("keypoints", "frame_mask", "gloss", "text_in", "text_out", "gloss_lengths"):
        assert torch.equal(padded[key][0], whole[key][0]), key
    assert D.collate([short, long], None)["keypoints"].shape == whole["keypoints"].shape


def test_global_stats_batchnorm_matches_batchnorm_in_a_one_rank_group(tmp_path):
    import torch.distributed as dist

    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        ref = torch.nn.BatchNorm2d(4)
        ref.weight.data.uniform_(0.5, 1.5)
        ref.bias.data.uniform_(-0.5, 0.5)
        glob = copy.deepcopy(ref)
        assert DU.globalise_batchnorm(torch.nn.Sequential(glob)) == 1
        assert isinstance(glob, DU.GlobalStatsBatchNorm) and isinstance(glob, torch.nn.BatchNorm2d)
        assert glob.state_dict().keys() == ref.state_dict().keys()
        x = (torch.randn(3, 4, 5, 6) * 0.1 + 2.0).requires_grad_(True)  # large mean: the float64 sums matter
        x2 = x.detach().clone().requires_grad_(True)
        y_ref, y = ref(x), glob(x2)
        torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)
        w = torch.randn_like(y_ref)
        (y_ref * w).sum().backward()
        (y * w).sum().backward()
        torch.testing.assert_close(x2.grad, x.grad, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(glob.weight.grad, ref.weight.grad, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(glob.running_mean, ref.running_mean)
        torch.testing.assert_close(glob.running_var, ref.running_var)
        glob.eval(), ref.eval()
        torch.testing.assert_close(glob(x.detach()), ref(x.detach()))
    finally:
        dist.destroy_process_group()


def test_context_and_relaunch_command():
    assert DU.context_from_env({}) == DU.DistContext(0, 1, 0)
    ctx = DU.context_from_env({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"})
    assert ctx.enabled and not ctx.is_main
    with pytest.raises(Exception, match="inconsistent"):
        DU.context_from_env({"WORLD_SIZE": "2", "RANK": "2"})
    args = argparse.Namespace(config="c.yaml", dataset="ds", data_dir=Path("n"), manifest=None, threads=2, nproc=2)
    argv = DU.relaunch_command(args, 2)
    assert argv[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc_per_node=2"]
    assert argv[6:] == ["-m", "hatl.cli", "train", "--config", "c.yaml", "--dataset", "ds", "--data-dir", "n", "--threads", "2"]
    assert DU.pick_backend("auto", torch.device("cpu")) == "gloo"
    with pytest.raises(Exception, match="nccl"):
        DU.pick_backend("nccl", torch.device("cpu"))


def test_nproc_refuses_a_batch_smaller_than_the_world(inputs, tmp_path):
    from hatl.cli import main

    config_path, _ = no_dropout_config(inputs, training(batch_size=1), tmp_path)
    argv = cli_argv(inputs, tmp_path, config_path, "sign2text", "classical", "transformer", 2)[3:]
    assert main(argv) == 2
    assert not (tmp_path / "out").exists() and not (tmp_path / "resume").exists()


@pytest.mark.slow
def test_sigterm_stops_every_rank_at_the_same_step_and_the_rerun_resumes_exactly(inputs, tmp_path):
    # torchrun forwards SIGTERM (a SLURM walltime) to the workers; each rank saves at the same step and exits;
    # rerunning resumes mid-epoch (reduced loss sums, per-rank RNG) and ends where the single process ends.
    # Deterministic: HATL_DRILL_PAUSE holds both ranks before the first save of epoch 2 at step >= 2; the
    # signal is sent there, and the ranks go on only once both have logged it.
    import signal
    import threading
    import time

    tr = training(max_epochs=4, checkpoint_every_steps=2, cache_frozen_prefix=False)
    config_path, cfg = no_dropout_config(inputs, tr, tmp_path)
    one = tmp_path / "one"
    train_run(RunSpec("tiny", "transformer", "sign2text", "hatl", "main", inputs["data_dir"], inputs["vocab_dir"],
                      inputs["backbone"], one / "out", one / "resume", threads=1), cfg)
    argv = cli_argv(inputs, tmp_path / "cut", config_path, "sign2text", "hatl", "transformer", 2)
    args = argparse.Namespace(**{flag[2:].replace("-", "_"): value for flag, value in zip(argv[4::2], argv[5::2])})
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", DRILL_PAUSE_ENV)}
    gate = tmp_path / "gate"
    gate.mkdir()
    proc = subprocess.Popen(DU.relaunch_command(args, 2), env={**env, DRILL_PAUSE_ENV: f"2:2:{gate}"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()

    def wait_for(what: str, done) -> None:
        deadline = time.monotonic() + 240
        while not done():
            assert proc.poll() is None, f"the run ended while waiting for {what}:\n" + "".join(lines[-40:])
            assert time.monotonic() < deadline, f"timed out waiting for {what}:\n" + "".join(lines[-40:])
            time.sleep(0.02)

    try:
        paused = [gate / "paused.rank0", gate / "paused.rank1"]
        wait_for("both ranks at the drill pause", lambda: all(p.exists() for p in paused))
        positions = {tuple(p.read_text().split()) for p in paused}
        assert len(positions) == 1, positions  # both ranks hold at the same save
        epoch, step = map(int, positions.pop())
        proc.send_signal(signal.SIGTERM)  # the torchrun launcher we started, by its own pid
        wait_for("both ranks to receive SIGTERM", lambda: sum("signal 15 received" in line for line in lines) == 2)
        (gate / "go").write_text("")
        proc.wait(timeout=120)
    finally:  # a failed check must not leave torchrun and its ranks waiting at the gate
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    reader.join(timeout=10)
    stderr = "".join(lines)
    assert proc.returncode != 0, "the run finished although it was stopped"
    stops = [line for line in stderr.splitlines() if "terminated by signal at epoch" in line]
    assert len(stops) == 2, stderr[-3000:]
    assert all(f"terminated by signal at epoch {epoch}, step {step}/" in line for line in stops), stops
    assert stops[0].split("ERROR")[1] == stops[1].split("ERROR")[1]
    state = json.loads((tmp_path / "cut" / "resume" / "progress.json").read_text())
    assert (state["epoch"], state["step_in_epoch"], state["finished"]) == (epoch, step, False)
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"resuming {tmp_path / 'cut' / 'resume'} at epoch {epoch}, step {step}" in done.stderr
    assert_same_run(one, tmp_path / "cut")
