"""End-to-end training runs on a tiny synthetic dataset: the three strategies, frozen layers, NaN, resume."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hatl.errors import HatlError
from hatl.train.state import PROGRESS_FILE, STATE_FILE
from hatl.models.trained import load_trained
from hatl.train.recipe import RunSpec, Trainer, default_model_factory, train_run
from helpers import Interrupt, interrupting_model_factory
from test_train_data import TINY_TRAINING, tiny_run_inputs

LOG_FIELDS = {
    "epoch", "wall_time_s", "epoch_time_s", "loss_total", "loss_ctc", "loss_ce", "loss_enc", "loss_bb",
    "dev_bleu4", "dev_ctc_loss", "dev_wer", "metric_name", "metric", "metric_avg", "delta", "tau",
    "trainable_layers", "n_trainable_layers", "n_trainable_params", "lr", "events",
    "dev_distinct_outputs", "dev_distinct_refs",
}
SUMMARY_FIELDS = {
    "best_epoch", "best_metric", "metric_name", "epochs_run", "total_hours", "train_time_s", "release_epochs",
    "stop_reason", "final_trainable_layers", "provenance",
}
TIME_FIELDS = ("wall_time_s", "epoch_time_s")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return tiny_run_inputs(tmp_path_factory.mktemp("tiny"))


def make_spec(inp: dict, root: Path, strategy: str, task: str = "sign2text", model: str = "transformer") -> RunSpec:
    return RunSpec("tiny", model, task, strategy, "main", inp["data_dir"], inp["vocab_dir"],
                   inp["backbone"] if task != "gloss2text" else None, root / "out", root / "resume", threads=1)


def with_training(inp: dict, **over) -> dict:
    cfg = copy.deepcopy(inp["config"])
    cfg["training"].update(over)
    return cfg


def read_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text(encoding="utf-8").splitlines()]


def backbone_file_state(inp: dict) -> dict[str, torch.Tensor]:
    return torch.load(inp["backbone"], weights_only=True)["state_dict"]


def layer_keys(trainer: Trainer, m: int) -> list[str]:
    """state_dict keys (parameters AND batch-norm buffers) of backbone layer m, as the backbone names them."""
    ids = {id(t) for t in list(trainer.layers[m - 1].parameters()) + list(trainer.layers[m - 1].buffers())}
    named = dict(trainer.model.backbone.named_parameters()) | dict(trainer.model.backbone.named_buffers())
    return [k for k, t in named.items() if id(t) in ids]


def unchanged(trainer: Trainer, original: dict[str, torch.Tensor], keys: list[str]) -> bool:
    live = trainer.model.backbone.state_dict()
    return all(torch.equal(live[k].cpu(), original[k]) for k in keys)


def test_classical_keeps_the_backbone_bit_for_bit(inputs, tmp_path):
    trainer = Trainer(make_spec(inputs, tmp_path, "classical"), inputs["config"])
    summary = trainer.run()
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "log.jsonl", "summary.json"]
    log = read_log(out)
    assert len(log) == summary["epochs_run"] == 4
    for line in log:
        assert LOG_FIELDS <= set(line), LOG_FIELDS - set(line)
        assert line["trainable_layers"] == [] and line["n_trainable_layers"] == 0
        assert line["cached_backbone_features"] is True
        assert set(line["lr"]) == {"encoder", "decoder"}
    assert SUMMARY_FIELDS <= set(summary)
    assert json.loads((out / "summary.json").read_text())["provenance"]["config"]["training"]["max_epochs"] == 4
    assert summary["release_epochs"] == {} and summary["stop_reason"].startswith("max_epochs")
    # every backbone tensor, batch-norm running statistics included, is exactly the imported one
    original = backbone_file_state(inputs)
    assert unchanged(trainer, original, list(original))
    # the translator did learn
    assert log[-1]["loss_total"] < log[0]["loss_total"]


def test_full_trains_every_layer_from_the_start(inputs, tmp_path):
    trainer = Trainer(make_spec(inputs, tmp_path, "full"), inputs["config"])
    trainer.run()
    log = read_log(tmp_path / "out")
    assert all(line["trainable_layers"] == list(range(1, 11)) for line in log)
    assert not any(line["cached_backbone_features"] for line in log)
    assert set(log[0]["lr"]) == {"encoder", "decoder", *(f"L{m}" for m in range(1, 11))}
    # the paper's full baseline: every layer at the one backbone rate (no layer-wise decay, a HATL mechanism)
    assert len({line["lr"][f"L{m}"] for m in range(1, 11) for line in log[-1:]}) == 1
    assert trainer.summary()["layer_decay"] == 1.0
    # sign2text keeps L_enc / L_bb (the tiny data has glosses), w_ctc = 0
    assert all(line["loss_ctc"] == 0.0 and line["loss_enc"] > 0 and line["loss_bb"] > 0 for line in log)
    original = backbone_file_state(inputs)
    assert not unchanged(trainer, original, layer_keys(trainer, 1))
    assert not unchanged(trainer, original, layer_keys(trainer, 10))


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory):
    """One uninterrupted HATL run (6 epochs, state every 2 steps), shared by the HATL and resume tests.

    Tiny schedule (test_train_data.TINY_TRAINING): warm-up 1, window 2, patience 1, cooldown 1, huge Δ.
    A spy records, right after each release, whether the live model equals the best checkpoint.
    """
    root = tmp_path_factory.mktemp("ref")
    cfg = with_training(inputs, max_epochs=6, checkpoint_every_steps=2)
    trainer = Trainer(make_spec(inputs, root, "hatl"), cfg)
    checks: list[bool] = []
    original_start = trainer._epoch_start

    def spy(epoch: int):
        events = original_start(epoch)
        if any(e["type"] == "release" for e in events):
            live = trainer.model.state_dict()
            checks.append(all(torch.equal(live[k].cpu(), v) for k, v in trainer.best_state.items()))
        return events

    trainer._epoch_start = spy
    summary = trainer.run()
    return {"root": root, "cfg": cfg, "trainer": trainer, "summary": summary, "restore_checks": checks}


def test_hatl_releases_top_down_restores_first_and_keeps_frozen_layers(inputs, reference):
    # Epoch 2 is the first that may count -> L10 released at 3 (cooldown 3) -> stable at 4 -> L9 at 5.
    trainer, summary, root = reference["trainer"], reference["summary"], reference["root"]
    log = read_log(root / "out")
    assert summary["release_epochs"] == {"10": 3, "9": 5}
    assert reference["restore_checks"] == [True, True]
    assert [line["trainable_layers"] for line in log] == [[], [], [10], [10], [9, 10], [9, 10]]
    assert [line["cached_backbone_features"] for line in log] == [True, True, False, False, False, False]
    assert [line["cached_frozen_layers"] for line in log] == [10, 10, 9, 9, 8, 8]
    types = [e["type"] for e in log[2]["events"]]
    assert types.index("restore") < types.index("release") and "cooldown" in types
    assert log[2]["events"][types.index("release")]["layer"] == 10
    # layer-wise LR decay after the warm-up of the rebuilt AdamW: L10 = lr.backbone, L9 = half of it
    assert log[2]["lr"]["L10"] == pytest.approx(1e-3)
    assert log[4]["lr"]["L9"] == pytest.approx(5e-4) and log[4]["lr"]["L10"] == pytest.approx(1e-3)
    assert log[5]["n_trainable_params"] > log[3]["n_trainable_params"] > log[1]["n_trainable_params"]
    original = backbone_file_state(inputs)
    for m in range(1, 9):
        assert unchanged(trainer, original, layer_keys(trainer, m)), f"frozen L{m} changed"
    assert not unchanged(trainer, original, layer_keys(trainer, 10))
    # best.pt rebuilds into a working model without the backbone file
    model, blob = load_trained(root / "out" / "best.pt")
    assert blob["best_epoch"] == summary["best_epoch"]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in blob["model_state"].items())


def test_frozen_prefix_cache_gives_the_backbone_features(reference):
    # L1..L8 frozen (cached), L9-L10 run on top: the same features as the model's own backbone pass.
    trainer = reference["trainer"]
    assert trainer.cache.frozen_prefix() == 8
    trainer.model.eval()
    with torch.no_grad():
        sample = trainer.dev.samples[0]
        kp = torch.from_numpy(sample.keypoints)[None]
        mask = torch.ones((1, sample.n_frames), dtype=torch.bool)
        want, want_mask = trainer.model.backbone_features(kp, mask)
        batch = trainer.cache.make_batch("dev", [0])
    assert torch.equal(batch["backbone_mask"], want_mask)
    torch.testing.assert_close(batch["backbone_features"], want, rtol=1e-5, atol=1e-6)


def test_sign2gloss_adat_uses_the_ctc_release_metric(inputs, tmp_path):
    """The recogniser of Sign2Gloss2Text selects, stops and releases on dev CTC loss (Table 4's CTC threshold);
    it has no text decoder, so no BLEU-4 and no CE term."""
    summary = train_run(make_spec(inputs, tmp_path, "hatl", task="sign2gloss", model="adat"), inputs["config"])
    log = read_log(tmp_path / "out")
    assert summary["metric_name"] == "ctc_loss" and summary["metric_mode"] == "min"
    assert all(line["dev_ctc_loss"] is not None and line["dev_wer"] is not None for line in log)
    assert all(line["dev_bleu4"] is None and line["loss_ce"] == 0.0 for line in log)
    assert all(line["metric"] == pytest.approx(line["dev_ctc_loss"]) for line in log)
    assert log[-1]["loss_ctc"] > 0 and log[-1]["loss_enc"] > 0 and log[-1]["loss_bb"] > 0
    # collapse made visible: distinct greedy dev gloss outputs against distinct dev references, every epoch
    assert all(1 <= line["dev_distinct_outputs"] and line["dev_distinct_refs"] >= 1 for line in log)
    model, _ = load_trained(tmp_path / "out" / "best.pt")
    assert model.decoder is None and model.task == "sign2gloss"


def shipped_config() -> dict:
    from hatl.config import load_config

    return load_config(Path(__file__).resolve().parents[1] / "config" / "config.yaml")  # Table 4's values (no demo overrides)


@pytest.mark.parametrize("task,metric", [("sign2text", "bleu4"), ("gloss2text", "bleu4"), ("sign2text_ctc", "bleu4"),
                                         ("sign2gloss", "ctc_loss")])
def test_selection_metric_per_task_follows_table4(task, metric):
    """Translation tasks select on dev BLEU-4 (threshold 0.002 as a fraction), the recogniser on dev CTC loss (0.003)."""
    from hatl.train.config import TrainConfig

    tc = TrainConfig.from_config(shipped_config(), task)
    assert tc.metric == metric
    want = 0.002 if metric == "bleu4" else 0.003
    assert tc.controller.delta == tc.controller.tau == pytest.approx(want)
    assert tc.controller.mode == ("max" if metric == "bleu4" else "min")


def test_delta_tau_reading_takes_table4_pair_for_every_task():
    """training.hatl.threshold_reading: delta_tau reads Table 4's two values as Algorithm 1's (Δ, τ) pair."""
    from hatl.train.config import TrainConfig

    cfg = shipped_config()
    cfg["training"]["hatl"]["threshold_reading"] = "delta_tau"
    for task in ("sign2text", "sign2gloss"):
        tc = TrainConfig.from_config(cfg, task)
        assert (tc.controller.delta, tc.controller.tau) == (pytest.approx(0.003), pytest.approx(0.002))


def test_sign2gloss2text_is_not_trained_on_its_own(inputs, tmp_path):
    from hatl.errors import ConfigError

    with pytest.raises(ConfigError, match="sign2gloss2text"):
        make_spec(inputs, tmp_path, "hatl", task="sign2gloss2text")


def test_gloss2text_has_no_backbone_to_release(inputs, tmp_path):
    summary = train_run(make_spec(inputs, tmp_path, "hatl", task="gloss2text"), inputs["config"])
    assert summary["n_backbone_layers"] == 0 and summary["release_epochs"] == {}
    assert summary["metric_name"] == "bleu4"


def test_gloss2text_reads_the_manifest_without_keypoints(inputs, tmp_path):
    import pandas as pd

    from hatl.keypoint_store import iter_keypoints

    rows = [{"sample_id": r.sample_id, "split": split, "fold": -1, "signer": "s1", "gloss": r.extra["gloss"],
             "text": r.extra["text"], "source": "x", "source_kind": "demo", "fps": 25.0, "n_frames": r.n_frames, "shard": 0}
            for split in ("train", "dev") for r in iter_keypoints(inputs["data_dir"] / f"{split}.parquet")]
    rows.append({**rows[0], "sample_id": "nogloss", "gloss": ""})
    manifest = tmp_path / "manifest.parquet"
    pd.DataFrame(rows).to_parquet(manifest)
    spec = RunSpec("tiny", "transformer", "gloss2text", "classical", "main", None, inputs["vocab_dir"], None,
                   tmp_path / "out", tmp_path / "resume", threads=1, manifest=manifest)
    summary = train_run(spec, inputs["config"])
    assert summary["samples"] == {"train": 24, "dev": 8}
    assert summary["skipped"]["train"] == [{"record": "nogloss", "reason": "empty gloss (the task needs a gloss input/target)"}]
    assert read_log(tmp_path / "out")[-1]["dev_bleu4"] is not None


def test_gloss2text_with_gloss_word_embeddings_trains_and_reloads(inputs, tmp_path, caplog):
    """model.transformer.gloss_word_embeddings through `hatl train`: the map comes from the run's vocabularies (5 of the
    tiny dataset's 6 glosses spell a text word; NORD is written "im norden"), is logged, and travels in best.pt."""
    import logging

    from hatl.vocab import Vocabulary

    config = copy.deepcopy(inputs["config"])
    config["model"]["transformer"]["gloss_word_embeddings"] = True
    with caplog.at_level(logging.INFO, logger="hatl.train.recipe"):
        train_run(make_spec(inputs, tmp_path, "full", task="gloss2text"), config)
    assert "gloss word embeddings: 5 of 6 glosses spell a text word" in caplog.text
    model, blob = load_trained(tmp_path / "out" / "best.pt")
    gloss = Vocabulary.load(Path(inputs["vocab_dir"]) / "gloss.json")
    text = Vocabulary.load(Path(inputs["vocab_dir"]) / "text.json")
    words = {gloss.tokens[g]: text.tokens[t] for g, t in enumerate(blob["model_args"]["gloss_words"]) if t}
    assert words == {"SONNE": "sonne", "REGEN": "regen", "WIND": "wind", "MORGEN": "morgen", "HEUTE": "heute"}
    assert model.gloss_words.tolist() == blob["model_args"]["gloss_words"]


def test_non_finite_loss_stops_with_a_clear_error_and_keeps_the_last_good_state(inputs, tmp_path):
    calls = {"n": 0}

    def poisoned(trainer: Trainer):
        model = default_model_factory(trainer)
        real = model.losses

        def losses(batch, out):
            result = real(batch, out)
            if model.training:
                calls["n"] += 1
                if calls["n"] == 9:  # epoch 2, step 3
                    result["total"] = result["total"] * float("nan")
            return result

        model.losses = losses
        return model

    spec = make_spec(inputs, tmp_path, "classical")
    with pytest.raises(HatlError, match=r"non-finite training loss at epoch 2, step 3"):
        train_run(spec, inputs["config"], model_factory=poisoned)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    progress = json.loads((tmp_path / "resume" / PROGRESS_FILE).read_text())
    assert progress["epoch"] == 1 and progress["epoch_done"] and not progress["finished"]


def assert_same_run(a_root: Path, b_root: Path) -> None:
    a = torch.load(a_root / "out" / "best.pt", weights_only=False)["model_state"]
    b = torch.load(b_root / "out" / "best.pt", weights_only=False)["model_state"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sa = torch.load(a_root / "resume" / STATE_FILE, weights_only=False)
    sb = torch.load(b_root / "resume" / STATE_FILE, weights_only=False)
    assert all(torch.equal(sa["model"][k], sb["model"][k]) for k in sa["model"])  # final weights, bitwise

    def strip(lines):
        return [{k: v for k, v in line.items() if k not in TIME_FIELDS} for line in lines]

    assert strip(read_log(a_root / "out")) == strip(read_log(b_root / "out"))
    sum_a = json.loads((a_root / "out" / "summary.json").read_text())
    sum_b = json.loads((b_root / "out" / "summary.json").read_text())
    for key in ("best_epoch", "best_metric", "release_epochs", "stop_reason", "epochs_run", "final_trainable_layers"):
        assert sum_a[key] == sum_b[key], key


def test_interrupted_mid_epoch_resumes_to_the_identical_result(inputs, reference, tmp_path):
    cfg = reference["cfg"]
    interrupting = interrupting_model_factory(15)  # epoch 3 (6 steps per epoch), step 3: after the save at step 2
    spec = make_spec(inputs, tmp_path / "cut", "hatl")
    with pytest.raises(Interrupt):
        train_run(spec, cfg, model_factory=interrupting)
    progress = json.loads((tmp_path / "cut" / "resume" / PROGRESS_FILE).read_text())
    assert (progress["epoch"], progress["step_in_epoch"], progress["epoch_done"]) == (3, 2, False)
    assert not (tmp_path / "cut" / "out").exists()
    train_run(spec, cfg)
    assert_same_run(reference["root"], tmp_path / "cut")
    # a finished run asked again re-emits the same outputs from its resume state, without training
    (tmp_path / "cut" / "out" / "best.pt").unlink()
    again = train_run(spec, cfg)
    assert (tmp_path / "cut" / "out" / "best.pt").exists() and again["epochs_run"] == 6


def cli_argv(inp: dict, root: Path, config_path: Path) -> list[str]:
    return [sys.executable, "-m", "hatl.cli", "train", "--config", str(config_path), "--dataset", "tiny",
            "--model", "transformer", "--task", "sign2text", "--strategy", "hatl", "--fold", "main",
            "--data-dir", str(inp["data_dir"]), "--vocab-dir", str(inp["vocab_dir"]), "--backbone", str(inp["backbone"]),
            "--out-dir", str(root / "out"), "--resume-dir", str(root / "resume"), "--threads", "1"]


def test_sigkill_mid_run_then_resume_equals_uninterrupted(inputs, reference, tmp_path):
    import yaml

    # The same run as the in-process reference, through the real `hatl train` command in a subprocess.
    cfg = yaml.safe_load(inputs["config_path"].read_text())
    cfg["training"] = {**copy.deepcopy(TINY_TRAINING), "max_epochs": 6, "checkpoint_every_steps": 2}
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    victim = tmp_path / "victim"
    proc = subprocess.Popen(cli_argv(inputs, victim, config_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    progress_file = victim / "resume" / PROGRESS_FILE
    killed_at = None
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if progress_file.exists():
            progress = json.loads(progress_file.read_text())
            if progress["epoch"] >= 3 and progress["step_in_epoch"] >= 2:
                os.kill(proc.pid, signal.SIGKILL)  # the child we started, by its own pid
                killed_at = progress
                break
        time.sleep(0.005)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed mid-epoch"
    assert killed_at is not None
    assert not (victim / "out" / "summary.json").exists()
    resumed = subprocess.run(cli_argv(inputs, victim, config_path), capture_output=True, text=True, env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming" in resumed.stderr
    assert_same_run(reference["root"], victim)


def test_cli_reports_bad_input_with_exit_code_2(inputs, tmp_path):
    from hatl.cli import main

    argv = cli_argv(inputs, tmp_path, inputs["config_path"])[3:]
    argv[argv.index("--data-dir") + 1] = str(tmp_path / "missing")
    assert main(argv) == 2
    assert not (tmp_path / "out").exists()


def test_sigterm_saves_at_the_next_step_and_the_rerun_finishes_identically(inputs, reference, tmp_path):
    calls = {"n": 0}
    holder: dict = {}

    def terminating(trainer: Trainer):
        holder["trainer"] = trainer
        model = default_model_factory(trainer)
        real = model.forward

        def forward(batch):
            if model.training:
                calls["n"] += 1
                if calls["n"] == 9:  # epoch 2, step 3: as if SLURM sent SIGTERM during this step
                    holder["trainer"].request_termination(signal.SIGTERM)
            return real(batch)

        model.forward = forward
        return model

    spec = make_spec(inputs, tmp_path, "hatl")
    with pytest.raises(HatlError, match=r"terminated by signal at epoch 2, step 3/6"):
        train_run(spec, reference["cfg"], model_factory=terminating)
    progress = json.loads((tmp_path / "resume" / PROGRESS_FILE).read_text())
    assert (progress["epoch"], progress["step_in_epoch"]) == (2, 3)
    train_run(spec, reference["cfg"])
    assert_same_run(reference["root"], tmp_path)


def test_cli_refuses_a_mistyped_demo_override(inputs, tmp_path):
    import yaml

    from hatl.cli import main

    cfg = yaml.safe_load(inputs["config_path"].read_text())
    cfg["datasets"]["tiny"] = {"adapter": "demo", "demo_profile": "phoenix14t"}
    cfg["demo"]["overrides"] = {"training": {"max_epoch": 3}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(cli_argv(inputs, tmp_path, path)[3:]) == 2
    assert not (tmp_path / "resume").exists()


def test_sign2text_on_data_without_glosses_trains_on_text_and_says_so(inputs, tmp_path, caplog):
    """Sign2Text keeps L_enc / L_bb (paper: only w_ctc = 0); a dataset without gloss annotations has no frame
    labels: the frame terms are 0, every sample is counted, the run warns and finishes."""
    import logging

    import numpy as np

    from hatl.keypoint_store import iter_keypoints, write_keypoints
    from test_train_data import LAYOUT

    data = tmp_path / "normalised"
    for split in ("train", "dev", "test"):
        records = list(iter_keypoints(inputs["data_dir"] / f"{split}.parquet"))
        for rec in records:
            rec.extra["gloss"] = ""
            rec.landmarks = np.array(rec.landmarks, copy=True)
        write_keypoints(data / f"{split}.parquet", records, LAYOUT, {"stage": "normalised"})
    spec = RunSpec("tiny", "transformer", "sign2text", "classical", "main", data, inputs["vocab_dir"], inputs["backbone"],
                   tmp_path / "out", tmp_path / "resume", threads=1)
    with caplog.at_level(logging.WARNING, logger="hatl"):
        summary = Trainer(spec, with_training(inputs, max_epochs=1)).run()
    assert any("no training sample has gloss annotations" in r.getMessage() for r in caplog.records)
    line = read_log(tmp_path / "out")[0]
    assert line["loss_enc"] == line["loss_bb"] == line["loss_ctc"] == 0.0 and line["loss_ce"] > 0
    assert line["train_skipped_no_gloss"] == summary["samples"]["train"] == 24


def test_run_fingerprint_follows_what_training_reads_not_decoding(tmp_path):
    """A killed run resumes after a decoding change (e.g. a new decoding option); a training change starts afresh."""
    from hatl.train.state import run_fingerprint

    data = tmp_path / "train.parquet"
    data.write_bytes(b"rows")
    run = {"dataset": "d", "model": "transformer", "task": "gloss2text", "strategy": "full", "fold": "main"}
    config = {"seed": 1, "training": {"max_epochs": 20}, "decoding": {"beam_width": 8, "mbr": None},
              "datasets": {"d": {"root": "x"}, "other": {"root": "y"}}}
    base = run_fingerprint(run, config, "d", [data])
    decoding = copy.deepcopy(config)
    decoding["decoding"] = {"beam_width": 4, "mbr": {"utility": "bleu"}}
    other_dataset = copy.deepcopy(config)
    other_dataset["datasets"]["other"]["root"] = "z"
    assert run_fingerprint(run, decoding, "d", [data]) == base
    assert run_fingerprint(run, other_dataset, "d", [data]) == base
    training = copy.deepcopy(config)
    training["training"]["max_epochs"] = 30
    assert run_fingerprint(run, training, "d", [data]) != base
    data.write_bytes(b"other rows")
    assert run_fingerprint(run, config, "d", [data]) != base
