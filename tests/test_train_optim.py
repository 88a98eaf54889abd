"""Parameter groups, layer-wise LR decay, the AdamW build and the LR warm-up."""

from __future__ import annotations

import pytest
import torch

from hatl.train.optim import (
    apply_lr,
    build_groups,
    build_optimizer,
    current_lrs,
    decay_factor,
    layer_lr,
    warmup_factor,
    warmup_steps,
)
from helpers import schema_train_config
from test_train_data import LAYOUT, TINY_MODEL


def tiny_model():
    from hatl.models.graph import mediapipe_graph
    from hatl.models.slt import SLTModel
    from hatl.models.stgcnpp import STGCNPP, STGCNPPConfig

    torch.manual_seed(0)
    backbone = STGCNPP(mediapipe_graph(LAYOUT).adjacency(), STGCNPPConfig(base_channels=6))
    return SLTModel("sign2text_ctc", "transformer", backbone, 12, 14, cfg={"transformer": TINY_MODEL["transformer"]})


def test_layer_wise_decay_reads_table4():
    # Ln gets the backbone LR (1e-5 = 0.1 x the decoder's 1e-4); each layer further down halves it.
    assert layer_lr(1e-5, 0.5, 10, 10) == pytest.approx(1e-5)
    assert layer_lr(1e-5, 0.5, 10, 9) == pytest.approx(5e-6)
    assert layer_lr(1e-5, 0.5, 10, 1) == pytest.approx(1e-5 / 2**9)
    with pytest.raises(ValueError):
        layer_lr(1e-5, 0.5, 10, 11)


def test_groups_cover_trainable_parameters_once():
    model = tiny_model()
    layers = model.backbone.layers()
    assert len(layers) == 10
    for m, layer in enumerate(layers, start=1):
        for p in layer.parameters():
            p.requires_grad_(m in (9, 10))
    cfg = schema_train_config().optim
    groups = build_groups(model, layers, cfg)
    assert [g.name for g in groups] == ["encoder", "decoder", "L9", "L10"]
    ids = [id(p) for g in groups for p in g.params]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for p in model.decoder.parameters()} == {id(p) for p in groups[1].params}
    lrs = {g.name: g.lr for g in groups}
    assert lrs == {"encoder": 5e-5, "decoder": 1e-4, "L9": pytest.approx(5e-6), "L10": pytest.approx(1e-5)}
    opt = build_optimizer(groups, cfg)
    assert opt.defaults["betas"] == (0.9, 0.98) and opt.defaults["eps"] == 1e-8
    assert current_lrs(opt)["L10"] == pytest.approx(1e-5)


def test_warmup_schedule():
    cfg = schema_train_config().optim
    assert warmup_steps(1000, cfg) == 200  # max(200, 0.02 x 1000 = 20)
    assert warmup_steps(50_000, cfg) == 1000  # 0.02 x 50000
    assert warmup_factor(0, 4) == 0.25 and warmup_factor(3, 4) == 1.0 and warmup_factor(10, 4) == 1.0
    assert warmup_factor(0, 0) == 1.0
    model = tiny_model()
    opt = build_optimizer(build_groups(model, model.backbone.layers(), cfg), cfg)
    apply_lr(opt, 0, 200)
    assert current_lrs(opt)["decoder"] == pytest.approx(1e-4 / 200)
    apply_lr(opt, 500, 200)
    assert current_lrs(opt)["decoder"] == pytest.approx(1e-4)


def test_cosine_decay_runs_from_the_target_to_the_final_factor():
    assert decay_factor(0, 100, "constant", 0.0) == 1.0 and decay_factor(99, 100, "constant", 0.0) == 1.0
    assert decay_factor(0, 101, "cosine", 0.1) == pytest.approx(1.0)
    assert decay_factor(50, 101, "cosine", 0.1) == pytest.approx(0.55)  # half-way: the mean of 1 and 0.1
    assert decay_factor(100, 101, "cosine", 0.1) == pytest.approx(0.1)
    assert decay_factor(500, 101, "cosine", 0.1) == pytest.approx(0.1)  # past the end: held at the floor
    factors = [decay_factor(k, 101, "cosine", 0.0) for k in range(101)]
    assert all(a >= b for a, b in zip(factors, factors[1:]))
    with pytest.raises(ValueError, match="unknown LR schedule"):
        decay_factor(0, 10, "linear", 0.0)
    model = tiny_model()
    cfg = schema_train_config().optim
    opt = build_optimizer(build_groups(model, model.backbone.layers(), cfg), cfg)
    apply_lr(opt, 500, 200, decay_factor(50, 101, "cosine", 0.1))  # warm-up over: only the decay applies
    assert current_lrs(opt)["decoder"] == pytest.approx(1e-4 * 0.55)
    apply_lr(opt, 0, 200, 0.5)  # a rebuilt optimizer (HATL release) warms up again under the decayed target
    assert current_lrs(opt)["decoder"] == pytest.approx(1e-4 / 200 * 0.5)


def _backbone_lrs(strategy: str, **lr) -> dict[str, float]:
    """Per-layer target LRs of a strategy's optimiser with every backbone layer trainable."""
    model = tiny_model()
    layers = model.backbone.layers()
    cfg = schema_train_config(lr=lr).optim_for(strategy)
    groups = build_groups(model, layers, cfg)
    return {g.name: g.lr for g in groups if g.name.startswith("L")}


def test_full_baseline_has_one_backbone_rate_and_hatl_keeps_its_decay():
    # The paper's full fine-tuning trains every layer "from the start"; LLRD is HATL's (section 4.2.2).
    full = _backbone_lrs("full")
    assert len(full) == 10 and set(full.values()) == {1e-5}
    hatl = _backbone_lrs("hatl")
    assert hatl["L10"] == pytest.approx(1e-5) and hatl["L9"] == pytest.approx(5e-6)
    assert hatl["L1"] == pytest.approx(1e-5 / 2**9)
    assert len(set(hatl.values())) == 10


def test_full_layer_decay_switch_is_the_ablation():
    ablation = _backbone_lrs("full", full_layer_decay=True)
    assert ablation == pytest.approx(_backbone_lrs("hatl"))
    # the switch touches the full baseline only
    assert _backbone_lrs("hatl", full_layer_decay=True) == pytest.approx(_backbone_lrs("hatl"))
    assert schema_train_config(lr={"full_layer_decay": True}).optim_for("classical").layer_decay == 0.5
