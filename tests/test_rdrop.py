"""R-Drop (``model.loss.rdrop``): the symmetric KL between two dropout passes of each training sample."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from hatl.config import validate_config
from hatl.errors import ConfigError
from hatl.experiment import PAD
from hatl.models.losses import LossConfig, symmetric_kl, text_cross_entropy
from hatl.models.slt import RDROP_PAIRS, paired_for_rdrop
from hatl.train.recipe import RunSpec, train_run
from hatl.train.step import LossForward
from test_slt import TINY, make_batch, make_model
from test_train_data import tiny_run_inputs


def with_loss(rdrop: float, dropout: float = 0.1) -> dict:
    cfg = {name: {**section, "dropout": dropout} for name, section in TINY.items()}
    return {**cfg, "loss": {"rdrop": rdrop}}


def test_symmetric_kl_by_hand():
    # one real position, two-word vocabulary: p = (0.5, 0.5), q = softmax(log 3, 0) = (0.75, 0.25)
    a = torch.tensor([[[0.0, 0.0], [5.0, -5.0]]])
    b = torch.tensor([[[math.log(3.0), 0.0], [-5.0, 5.0]]])
    targets = torch.tensor([[1, PAD]])  # the second position is padding and must not count
    kl_pq = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    kl_qp = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert symmetric_kl(a, b, targets, PAD).item() == pytest.approx(0.5 * (kl_pq + kl_qp), rel=1e-6)
    assert symmetric_kl(b, a, targets, PAD).item() == pytest.approx(symmetric_kl(a, b, targets, PAD).item())
    assert symmetric_kl(a, a, targets, PAD).item() == pytest.approx(0.0, abs=1e-7)
    assert symmetric_kl(a, b, torch.full_like(targets, PAD), PAD).item() == 0.0


def test_paired_batch_repeats_every_row_once():
    batch = make_batch()
    paired = paired_for_rdrop(batch)
    assert paired[RDROP_PAIRS] is True and RDROP_PAIRS not in batch
    assert paired["sample_ids"] == ["a", "b", "c", "a", "b", "c"]
    for key in ("keypoints", "gloss", "text_in", "text_out"):
        assert torch.equal(paired[key][:3], batch[key]) and torch.equal(paired[key][3:], batch[key])
    with pytest.raises(TypeError, match="'flag'"):
        paired_for_rdrop({**batch, "flag": 3})


def test_training_step_adds_the_weighted_kl_to_the_cross_entropy():
    model = make_model("gloss2text", cfg=with_loss(2.5)).train()
    batch = make_batch()
    torch.manual_seed(5)
    losses = LossForward(model)(batch)
    # the same step by hand: one doubled pass (same dropout draws), CE over both copies + 2.5 x KL of the halves
    torch.manual_seed(5)
    paired = paired_for_rdrop(batch)
    logits = model(paired).text_logits
    ce = text_cross_entropy(logits, paired["text_out"], PAD, 0.1)
    kl = symmetric_kl(logits[:3], logits[3:], batch["text_out"], PAD)
    assert kl.item() > 1e-4  # dropout 0.1 gives the two passes different outputs
    assert losses["ce"].item() == pytest.approx((ce + 2.5 * kl).item(), rel=1e-6)
    assert losses["total"].item() == pytest.approx(losses["ce"].item(), rel=1e-6)
    assert int(losses["n_ce"]) == 2 * int((batch["text_out"] != PAD).sum())


def test_without_dropout_the_two_passes_agree_and_rdrop_changes_nothing():
    batch = make_batch()
    plain = make_model("gloss2text", cfg=with_loss(0.0, dropout=0.0)).train()
    paired = make_model("gloss2text", cfg=with_loss(2.5, dropout=0.0)).train()
    a, b = LossForward(plain)(batch), LossForward(paired)(batch)
    assert a["ce"].item() == pytest.approx(b["ce"].item(), rel=1e-5)


def test_evaluation_and_the_default_never_pair_the_batch():
    batch = make_batch()
    model = make_model("gloss2text", cfg=with_loss(2.5)).eval()
    out = LossForward(model)(batch)
    assert int(out["n_ce"]) == int((batch["text_out"] != PAD).sum())  # eval: one pass, plain CE
    default = make_model("gloss2text").train()
    assert not default.uses_rdrop()
    assert int(LossForward(default)(batch)["n_ce"]) == int((batch["text_out"] != PAD).sum())


def test_sign_tasks_count_skipped_rows_once_and_sign2gloss_has_nothing_to_pair():
    batch = make_batch((16, 11, 3))
    batch["gloss"] = torch.tensor([[5, 6, 7], [0, 0, 0], [8, 9, 0]])
    batch["gloss_lengths"] = torch.tensor([3, 0, 2])
    losses = LossForward(make_model("sign2text_ctc", cfg=with_loss(1.0)).train())(batch)
    assert int(losses["skipped_no_gloss"]) == 1 and int(losses["skipped_too_short"]) == 1
    assert torch.isfinite(losses["total"])
    assert not make_model("sign2gloss", cfg=with_loss(1.0)).uses_rdrop()


def test_negative_weight_is_refused():
    with pytest.raises(ValueError, match="rdrop"):
        LossConfig.from_dict({"rdrop": -0.5})


def test_a_gloss2text_run_trains_with_rdrop_from_a_validated_config(tmp_path):
    inputs = tiny_run_inputs(tmp_path)
    cfg = copy.deepcopy(inputs["config"])
    assert cfg["model"]["loss"]["rdrop"] == 0.0  # the schema's default: off, as in the paper
    cfg["model"]["loss"]["rdrop"] = 1.0
    cfg["training"]["max_epochs"] = 2
    validate_config(cfg)
    spec = RunSpec("tiny", "transformer", "gloss2text", "full", "main", inputs["data_dir"], inputs["vocab_dir"], None,
                   tmp_path / "out", tmp_path / "resume", threads=1)
    summary = train_run(spec, cfg)
    assert summary["epochs_run"] == 2 and (tmp_path / "out" / "best.pt").is_file()
    bad = copy.deepcopy(cfg)
    bad["model"]["loss"]["rdrop"] = -1.0
    with pytest.raises(ConfigError, match="rdrop"):
        validate_config(bad)
