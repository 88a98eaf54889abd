"""Checkpoint averaging (training.average_checkpoints): the mean itself, the pool of epochs, the trainer's use of it."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from hatl.errors import ConfigError
from hatl.train.averaging import POOL_DIR, AveragingConfig, CheckpointPool, average_state_dicts
from hatl.train.recipe import RunSpec, Trainer, train_run
from hatl.train.state import STATE_FILE
from helpers import Interrupt, interrupting_model_factory
from test_train_data import tiny_run_inputs


# -- the mean ---------------------------------------------------------------------------------------
def test_average_of_two_known_state_dicts():
    a = {"w": torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "b": torch.tensor([0.5]), "steps": torch.tensor(3)}
    b = {"w": torch.tensor([[3.0, 6.0], [-3.0, 0.0]]), "b": torch.tensor([1.5]), "steps": torch.tensor(7)}
    out = average_state_dicts([a, b])
    assert torch.equal(out["w"], torch.tensor([[2.0, 4.0], [0.0, 2.0]]))
    assert torch.equal(out["b"], torch.tensor([1.0]))
    assert out["steps"].item() == 7 and out["steps"].dtype == torch.int64  # a counter: the last state's, not a mean
    assert out["w"].dtype == torch.float32
    assert torch.equal(a["w"], torch.tensor([[1.0, 2.0], [3.0, 4.0]]))  # inputs untouched


def test_average_of_one_state_is_that_state_and_of_three_their_mean():
    states = [{"w": torch.full((2,), float(v))} for v in (1.0, 2.0, 6.0)]
    assert torch.equal(average_state_dicts(states[:1])["w"], torch.tensor([1.0, 1.0]))
    assert torch.equal(average_state_dicts(states)["w"], torch.tensor([3.0, 3.0]))


def test_average_refuses_mismatched_state_dicts():
    with pytest.raises(ValueError, match="other keys"):
        average_state_dicts([{"w": torch.zeros(2)}, {"v": torch.zeros(2)}])
    with pytest.raises(ValueError, match="shapes differ"):
        average_state_dicts([{"w": torch.zeros(2)}, {"w": torch.zeros(3)}])
    with pytest.raises(ValueError, match="nothing to average"):
        average_state_dicts([])


# -- the config and the pool ------------------------------------------------------------------------
def test_config_reads_last_and_best_and_rejects_anything_else():
    assert AveragingConfig.from_config(None) is None
    assert AveragingConfig.from_config({"last": 5}) == AveragingConfig("last", 5)
    assert AveragingConfig.from_config({"best": 3}) == AveragingConfig("best", 3)
    for bad in ({"first": 2}, {"last": 2, "best": 2}, {"last": 0}):
        with pytest.raises(ConfigError, match="average_checkpoints"):
            AveragingConfig.from_config(bad)


def weights(value: float) -> dict[str, torch.Tensor]:
    return {"w": torch.full((3,), value)}


def test_pool_of_the_last_k_keeps_the_newest_files_and_prunes_the_rest(tmp_path):
    pool = CheckpointPool(AveragingConfig("last", 2), tmp_path / POOL_DIR, "max")
    for epoch, metric in ((1, 10.0), (2, 30.0), (3, 20.0)):
        assert pool.offer(epoch, metric, weights(float(epoch)))
    assert pool.epochs() == [2, 3]
    assert sorted(p.name for p in (tmp_path / POOL_DIR).iterdir()) == ["epoch0001.pt", "epoch0002.pt", "epoch0003.pt"]
    assert [p.name for p in pool.prune()] == ["epoch0001.pt"]  # deleted only when asked (after the state is saved)
    assert torch.equal(pool.average()["w"], torch.full((3,), 2.5))


def test_pool_of_the_best_k_ranks_by_the_dev_metric(tmp_path):
    pool = CheckpointPool(AveragingConfig("best", 2), tmp_path / POOL_DIR, "max")
    kept = [pool.offer(epoch, metric, weights(float(epoch))) for epoch, metric in ((1, 10.0), (2, 30.0), (3, 20.0), (4, 5.0))]
    assert kept == [True, True, True, False] and pool.epochs() == [2, 3]
    assert not pool.offer(5, None, weights(5.0))  # an unevaluated epoch cannot be ranked
    pool.prune()
    assert torch.equal(pool.average()["w"], torch.full((3,), 2.5))
    low = CheckpointPool(AveragingConfig("best", 1), tmp_path / "low", "min")  # a loss: lower is better
    for epoch, metric in ((1, 3.0), (2, 1.0), (3, 2.0)):
        low.offer(epoch, metric, weights(float(epoch)))
    assert low.epochs() == [2]


def test_pool_index_round_trips_through_the_resume_state(tmp_path):
    pool = CheckpointPool(AveragingConfig("best", 2), tmp_path, "max")
    pool.offer(1, 1.0, weights(1.0))
    pool.offer(2, 2.0, weights(2.0))
    again = CheckpointPool(AveragingConfig("best", 2), tmp_path, "max")
    again.load(json.loads(json.dumps(pool.to_dict())))
    assert again.entries == pool.entries


# -- in the trainer ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return tiny_run_inputs(tmp_path_factory.mktemp("tiny_avg"))


def averaging_config(inp: dict, section: dict) -> dict:
    cfg = copy.deepcopy(inp["config"])
    cfg["training"].update({"average_checkpoints": section, "max_epochs": 4})
    cfg["training"]["early_stopping"] = {**cfg["training"]["early_stopping"], "patience": 10}  # run all 4 epochs
    return cfg


def spec_for(inp: dict, root: Path) -> RunSpec:
    return RunSpec("tiny", "transformer", "gloss2text", "full", "main", inp["data_dir"], inp["vocab_dir"], None,
                   root / "out", root / "resume", threads=1)


@pytest.fixture(scope="module")
def averaged_run(inputs, tmp_path_factory):
    """One uninterrupted gloss2text run averaging its last 2 epochs, with every epoch's weights recorded."""
    root = tmp_path_factory.mktemp("avg_ref")
    cfg = averaging_config(inputs, {"last": 2})
    epoch_weights: dict[int, dict[str, torch.Tensor]] = {}
    trainer = Trainer(spec_for(inputs, root), cfg)
    real_end = trainer._end_epoch

    def end_epoch(epoch, sums, events):
        line = real_end(epoch, sums, events)
        epoch_weights[epoch] = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        return line

    trainer._end_epoch = end_epoch  # type: ignore[method-assign]
    summary = trainer.run()
    return {"root": root, "cfg": cfg, "summary": summary, "epochs": epoch_weights}


def test_best_pt_holds_the_mean_of_the_last_epochs_and_summary_says_so(averaged_run):
    root, summary, epochs = averaged_run["root"], averaged_run["summary"], averaged_run["epochs"]
    assert summary["epochs_run"] == 4
    avg = summary["averaged"]
    assert avg["selection"] == "last" and avg["count"] == 2 and avg["epochs"] == [3, 4]
    # the metric on the scale of best_metric (BLEU-4 / 100), from the same greedy dev evaluation as every epoch
    assert avg["metric_name"] == "bleu4" and avg["metric"] == pytest.approx(avg["dev"]["bleu4"] / 100)
    written = json.loads((root / "out" / "summary.json").read_text())
    assert written["averaged"]["epochs"] == [3, 4]
    blob = torch.load(root / "out" / "best.pt", weights_only=False)
    assert blob["averaged_epochs"] == [3, 4]
    expected = average_state_dicts([epochs[3], epochs[4]])
    state = blob["model_state"]
    assert state.keys() == expected.keys() and all(torch.equal(state[k], expected[k]) for k in state)
    assert any(not torch.equal(state[k], epochs[4][k]) for k in state if torch.is_floating_point(state[k]))
    # only the averaged epochs' files remain beside the resume state
    assert sorted(p.name for p in (root / "resume" / POOL_DIR).iterdir()) == ["epoch0003.pt", "epoch0004.pt"]


def test_killed_run_resumes_to_the_identical_averaged_model(inputs, averaged_run, tmp_path):
    cfg = averaged_run["cfg"]
    interrupting = interrupting_model_factory(6 * 3 + 3)  # epoch 4 (6 steps per epoch), step 3: epochs 1-3 are saved
    spec = spec_for(inputs, tmp_path)
    with pytest.raises(Interrupt):
        train_run(spec, cfg, model_factory=interrupting)
    state = torch.load(tmp_path / "resume" / STATE_FILE, weights_only=False)
    assert [e[0] for e in state["averaging"]["entries"]] == [2, 3]
    summary = train_run(spec, cfg)
    assert summary["averaged"]["epochs"] == [3, 4]
    a = torch.load(averaged_run["root"] / "out" / "best.pt", weights_only=False)["model_state"]
    b = torch.load(tmp_path / "out" / "best.pt", weights_only=False)["model_state"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert summary["averaged"]["dev"] == averaged_run["summary"]["averaged"]["dev"]
    # a finished run asked again writes the same averaged best.pt from the files beside its resume state
    (tmp_path / "out" / "best.pt").unlink()
    assert train_run(spec, cfg)["averaged"]["epochs"] == [3, 4]
    c = torch.load(tmp_path / "out" / "best.pt", weights_only=False)["model_state"]
    assert all(torch.equal(a[k], c[k]) for k in a)


def test_without_averaging_best_pt_is_the_best_dev_epoch(inputs, tmp_path):
    cfg = averaging_config(inputs, None)
    summary = train_run(spec_for(inputs, tmp_path), cfg)
    assert "averaged" not in summary
    assert not (tmp_path / "resume" / POOL_DIR).exists()
    assert torch.load(tmp_path / "out" / "best.pt", weights_only=False)["averaged_epochs"] is None


# -- the benchmark's use of it ----------------------------------------------------------------------
def test_bench_budget_stop_exports_the_mean_of_the_epochs_averaged_so_far(tmp_path):
    from helpers import load_bench

    bench = load_bench("phoenix_gloss2text")
    pool = CheckpointPool(AveragingConfig("last", 3), tmp_path / POOL_DIR, "max")
    for epoch in (1, 2):
        pool.offer(epoch, float(epoch), weights(float(epoch)))
    state = {"averaging": pool.to_dict()}
    mean, epochs = bench.averaged_so_far({"training": {"average_checkpoints": {"last": 3}}}, state, tmp_path)
    assert epochs == [1, 2] and torch.equal(mean["w"], torch.full((3,), 1.5))
    assert bench.averaged_so_far({"training": {"average_checkpoints": None}}, state, tmp_path) is None


def test_bench_prints_the_constant_floor_and_distinct_outputs(tmp_path):
    from helpers import load_bench

    bench = load_bench("phoenix_gloss2text")
    run = bench.run_folder(tmp_path, 7)
    run.mkdir(parents=True)
    refs = ["es regnet", "morgen sonne im norden", "es regnet im sueden", "wind aus west"]
    for split in ("dev", "test"):
        rows = [{"id": str(i), "ref": r, "hyp": "es regnet", "hyp_nolm": "es regnet" if i % 2 else "wind"} for i, r in enumerate(refs)]
        (run / f"decoded.{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (line,) = bench.floor_and_distinct(tmp_path, 7)
    assert line.startswith("seed 7 floor: constant output ")
    assert "dev 2 for 4 distinct references" in line and "test 2 for 4 distinct references" in line
    assert bench.floor_and_distinct(tmp_path, 8) == []  # nothing decoded yet: nothing to say
