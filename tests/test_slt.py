"""SLTModel on the real (small) ST-GCN++ backbone: the three tasks, masks, losses, caching and beam-search API."""

from __future__ import annotations

import pytest
import torch

from hatl.errors import InputError
from hatl.experiment import BOS, PAD
from hatl.models.graph import coco_graph
from hatl.models.slt import (
    Encoded,
    ModelConfig,
    SLTModel,
    downsampled_lengths,
    pool_backbone_output,
)
from hatl.models.stgcnpp import STGCNPP, STGCNPPConfig

TINY = {
    "transformer": {"hidden": 32, "heads": 2, "feedforward": 64, "dropout": 0.1},
    "adat": {"hidden": 32, "heads": 2, "feedforward": 64, "dropout": 0.1},
}
GLOSS_VOCAB, TEXT_VOCAB = 10, 12
TEXT_TASKS = ("sign2text_ctc", "sign2text", "gloss2text")
TASKS = (*TEXT_TASKS, "sign2gloss")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These tensors are tiny: a second intra-op thread only adds synchronisation, and on a busy 2-core
    runner the two threads spin against other processes (measured: 0.05 s vs 2 s per training step)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_backbone() -> STGCNPP:
    return STGCNPP(coco_graph().adjacency(), STGCNPPConfig(base_channels=8))


def make_batch(frames: tuple[int, ...] = (16, 11, 6), seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    total = max(frames)
    lengths = torch.tensor(frames)
    return {
        "keypoints": torch.randn(len(frames), total, 17, 3, generator=gen),
        "frame_mask": torch.arange(total)[None] < lengths[:, None],
        "gloss": torch.tensor([[5, 6, 7], [6, 6, 0], [8, 0, 0]])[: len(frames)],
        "gloss_lengths": torch.tensor([3, 2, 1])[: len(frames)],
        "text_in": torch.tensor([[BOS, 5, 6, 7], [BOS, 8, 9, PAD], [BOS, 5, PAD, PAD]])[: len(frames)],
        "text_out": torch.tensor([[5, 6, 7, 2], [8, 9, 2, PAD], [5, 2, PAD, PAD]])[: len(frames)],
        "sample_ids": ["a", "b", "c"][: len(frames)],
    }


def make_model(task: str, translator: str = "transformer", cfg: dict | None = None, seed: int = 0) -> SLTModel:
    torch.manual_seed(seed)
    backbone = None if task == "gloss2text" else tiny_backbone()
    return SLTModel(task, translator, backbone, GLOSS_VOCAB, TEXT_VOCAB, cfg or TINY)


@pytest.mark.parametrize("translator", ["transformer", "adat"])
@pytest.mark.parametrize("task", TASKS)
def test_each_task_loss_falls(task: str, translator: str):
    model = make_model(task, translator)
    batch = make_batch()
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    history = []
    for _ in range(30):
        losses = model.losses(batch, model(batch))
        optimiser.zero_grad()
        losses["total"].backward()
        optimiser.step()
        history.append({k: float(v.detach()) for k, v in losses.items()})
    first, last = history[0], history[-1]
    assert last["total"] < 0.6 * first["total"]
    if task == "sign2gloss":  # recognition only: no text decoder, no CE term
        assert first["ce"] == last["ce"] == 0.0 and int(first["n_ce"]) == 0
    else:
        assert last["ce"] < first["ce"]
    if task in ("sign2text_ctc", "sign2gloss"):
        assert first["ctc"] > 0 and last["ctc"] < 0.5 * first["ctc"]
        assert first["enc"] > 0 and first["bb"] > 0
    elif task == "sign2text":  # w_ctc = 0; the frame terms train (uniform labels from the glosses)
        assert last["ctc"] == 0.0 and last["enc"] < first["enc"] and last["bb"] < first["bb"]
    else:
        assert last["ctc"] == last["enc"] == last["bb"] == 0.0


def test_frame_mask_after_backbone():
    model = make_model("sign2text").eval()
    batch = make_batch((24, 17, 9))
    out = model(batch)
    expected = [6, 5, 3]  # ceil(ceil(n/2)/2)
    assert out.frame_mask.sum(1).tolist() == expected
    assert out.frame_mask.shape[1] == 6
    assert downsampled_lengths(torch.tensor([1, 2, 3, 4, 5, 8, 9])).tolist() == [1, 1, 1, 1, 2, 2, 3]
    assert out.gloss_logprobs.shape == (3, 6, GLOSS_VOCAB) and out.bb_frame_logits.shape == (3, 6, GLOSS_VOCAB)
    assert torch.allclose(out.gloss_logprobs.exp().sum(-1), torch.ones(3, 6), atol=1e-5)


@pytest.mark.parametrize("translator", ["transformer", "adat"])
def test_padded_frames_do_not_change_outputs(translator: str):
    model = make_model("sign2text_ctc", translator).eval()
    batch = make_batch()
    before = model(batch)
    batch2 = dict(batch)
    keypoints = batch["keypoints"].clone()
    keypoints[1, 11:] = 100.0
    keypoints[2, 6:] = -7.0
    batch2["keypoints"] = keypoints
    after = model(batch2)
    assert torch.allclose(before.text_logits, after.text_logits, atol=1e-5)
    real = before.frame_mask
    assert torch.allclose(before.gloss_logprobs[real], after.gloss_logprobs[real], atol=1e-5)
    assert torch.allclose(before.bb_frame_logits[real], after.bb_frame_logits[real], atol=1e-5)


@pytest.mark.parametrize("task", TEXT_TASKS)
def test_no_peeking_at_later_target_tokens(task: str):
    model = make_model(task, "adat").eval()
    batch = make_batch()
    before = model(batch).text_logits
    batch2 = dict(batch)
    text_in = batch["text_in"].clone()
    text_in[0, 2:] = torch.tensor([9, 10])
    batch2["text_in"] = text_in
    after = model(batch2).text_logits
    assert torch.allclose(before[0, :2], after[0, :2], atol=1e-5)
    assert not torch.allclose(before[0, 2:], after[0, 2:])
    assert torch.allclose(before[1:], after[1:], atol=1e-5)


def test_gloss2text_ignores_padded_gloss_tokens():
    model = make_model("gloss2text", "transformer").eval()
    batch = make_batch()
    before = model(batch).text_logits
    batch2 = dict(batch)
    gloss = batch["gloss"].clone()
    gloss[2, 1:] = 7
    batch2["gloss"] = gloss
    assert torch.allclose(before, model(batch2).text_logits, atol=1e-5)


@pytest.mark.parametrize("trainable", [False, True])
def test_gradients_reach_backbone_only_when_trainable(trainable: bool):
    model = make_model("sign2text_ctc")
    for p in model.backbone.parameters():
        p.requires_grad_(trainable)
    batch = make_batch()
    model.losses(batch, model(batch))["total"].backward()
    backbone_grads = [p.grad for p in model.backbone.parameters()]
    if trainable:
        assert all(g is not None for g in backbone_grads)
        assert any(float(g.abs().sum()) > 0 for g in backbone_grads)
    else:
        assert all(g is None for g in backbone_grads)
    assert model.project.weight.grad is not None and model.decoder.output.weight.grad is not None


def test_partially_frozen_backbone_trains_only_unfrozen_layers():
    model = make_model("sign2text")
    layers = model.backbone.layers()
    for layer in layers[:-1]:
        for p in layer.parameters():
            p.requires_grad_(False)
    batch = make_batch()
    model.losses(batch, model(batch))["total"].backward()
    assert all(p.grad is None for p in layers[0].parameters())
    assert all(p.grad is not None for p in layers[-1].parameters())


def test_cached_backbone_features_give_the_same_outputs():
    model = make_model("sign2text_ctc", "adat").eval()
    batch = make_batch()
    direct = model(batch)
    feats, mask = model.backbone_features(batch["keypoints"], batch["frame_mask"])
    cached = {k: v for k, v in batch.items() if k not in ("keypoints", "frame_mask")}
    cached.update(backbone_features=feats, backbone_mask=mask)
    via_cache = model(cached)
    assert torch.allclose(direct.text_logits, via_cache.text_logits, atol=1e-6)
    assert torch.equal(direct.frame_mask, via_cache.frame_mask)
    # a model built without a backbone runs from cached features alone
    headless = SLTModel("sign2text", "adat", None, GLOSS_VOCAB, TEXT_VOCAB, TINY, backbone_channels=feats.shape[-1])
    assert headless(cached).text_logits.shape == direct.text_logits.shape


def test_pool_backbone_output_matches_frame_features():
    backbone = tiny_backbone().eval()
    keypoints = torch.randn(2, 12, 17, 3)
    assert torch.allclose(pool_backbone_output(backbone(keypoints.unsqueeze(1))), backbone.frame_features(keypoints))


@pytest.mark.parametrize("task", ["sign2text_ctc", "gloss2text"])
def test_next_token_logprobs_and_beam_rows(task: str):
    model = make_model(task, "transformer").eval()
    batch = make_batch()
    out = model(batch)
    encoded = model.encode(batch)
    assert isinstance(encoded, Encoded)
    prefix = batch["text_in"][:, :3]
    step = model.next_token_logprobs(encoded, prefix)
    assert step.shape == (3, TEXT_VOCAB)
    assert torch.allclose(step, out.text_logits[:, 2].log_softmax(-1), atol=1e-5)
    beams = encoded.repeat_interleave(2)
    assert beams.memory.shape[0] == 6 and beams.lengths.tolist() == encoded.lengths.repeat_interleave(2).tolist()
    picked = encoded.index_select(torch.tensor([2, 0]))
    step_picked = model.next_token_logprobs(picked, prefix[[2, 0]])
    assert torch.allclose(step_picked, step[[2, 0]], atol=1e-5)
    if task == "gloss2text":
        assert encoded.gloss_logprobs is None
    else:
        assert picked.gloss_logprobs.shape[0] == 2


# The paper's loss (equation after Algorithm 1): Sign2Text sets only w_CTC to 0; L_enc and L_bb stay.
PAPER_WEIGHTS = {
    "sign2gloss": {"ctc": 1.0, "ce": 0.0, "enc": 0.2, "bb": 0.1},  # the recognition half of the cascade
    "sign2text_ctc": {"ctc": 1.0, "ce": 1.0, "enc": 0.2, "bb": 0.1},  # the joint ablation: all four terms
    "sign2text": {"ctc": 0.0, "ce": 1.0, "enc": 0.2, "bb": 0.1},
    "gloss2text": {"ctc": 0.0, "ce": 1.0, "enc": 0.0, "bb": 0.0},
}


@pytest.mark.parametrize("task", TASKS)
def test_loss_terms_per_task_follow_the_paper(task: str):
    model = make_model(task)
    assert model.loss_weights() == PAPER_WEIGHTS[task]
    batch = make_batch()
    losses = model.losses(batch, model(batch))
    for term, weight in PAPER_WEIGHTS[task].items():
        assert (losses[term].item() > 0) == (weight > 0), term  # a term is computed exactly where it weighs
    expected = sum(w * losses[t].item() for t, w in PAPER_WEIGHTS[task].items())
    assert losses["total"].item() == pytest.approx(expected, rel=1e-6)
    if task == "sign2text":  # uniform frame labels from the glosses: every real encoder frame is labelled
        assert int(losses["n_enc"]) == int(model(batch).frame_mask.sum()) and losses["ctc"].item() == 0.0


def test_sign2text_ignores_the_ctc_weight():
    model = make_model("sign2text", cfg={**TINY, "loss": {"w_ctc": 5.0}})
    batch = make_batch()
    losses = model.losses(batch, model(batch))
    assert losses["ctc"].item() == 0.0 and model.loss_weights()["ctc"] == 0.0


def test_sign2text_frame_losses_switch_off():
    cfg = {**TINY, "loss": {"sign2text_frame_targets": "none", "w_enc": 3.0, "w_bb": 3.0}}
    model = make_model("sign2text", cfg=cfg)
    batch = make_batch()
    losses = model.losses(batch, model(batch))
    assert losses["ctc"].item() == losses["enc"].item() == losses["bb"].item() == 0.0
    assert model.loss_weights() == {"ctc": 0.0, "ce": 1.0, "enc": 0.0, "bb": 0.0}
    assert losses["total"].item() == pytest.approx(losses["ce"].item())


def test_sign2text_without_glosses_trains_on_text_alone():
    """A dataset without gloss annotations: the frame terms are an exact 0, every row is counted, no crash."""
    model = make_model("sign2text")
    batch = {k: v for k, v in make_batch().items() if k not in ("gloss", "gloss_lengths")}
    losses = model.losses(batch, model(batch))
    assert losses["enc"].item() == losses["bb"].item() == 0.0 and int(losses["n_enc"]) == 0
    assert int(losses["skipped_no_gloss"]) == 3
    assert losses["total"].item() == pytest.approx(losses["ce"].item())
    losses["total"].backward()  # the zero terms stay on the graph
    assert model.decoder.output.weight.grad is not None


def test_frame_loss_coverage_warns_when_glosses_are_missing():
    from hatl.models.losses import frame_loss_coverage

    assert frame_loss_coverage("sign2text", "uniform", 10, 10) is None
    assert frame_loss_coverage("sign2text", None, 0, 10) is None
    assert "L_enc and L_bb are 0" in frame_loss_coverage("sign2text", "uniform", 0, 10)
    assert "3 of 10 training samples" in frame_loss_coverage("sign2text", "uniform", 7, 10)


def test_sign2text_uniform_frame_targets():
    cfg = {**TINY, "loss": {"sign2text_frame_targets": "uniform", "w_enc": 0.5, "w_bb": 0.25}}
    model = make_model("sign2text", cfg=cfg)
    batch = make_batch()
    losses = model.losses(batch, model(batch))
    assert losses["ctc"].item() == 0.0 and losses["enc"].item() > 0 and losses["bb"].item() > 0
    expected = losses["ce"] + 0.5 * losses["enc"] + 0.25 * losses["bb"]
    assert losses["total"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_rows_without_usable_glosses_are_counted():
    model = make_model("sign2text_ctc")
    batch = make_batch((16, 11, 3))  # row 2: 1 frame after the backbone
    batch["gloss"] = torch.tensor([[5, 6, 7], [0, 0, 0], [8, 9, 0]])
    batch["gloss_lengths"] = torch.tensor([3, 0, 2])
    losses = model.losses(batch, model(batch))
    assert int(losses["skipped_no_gloss"]) == 1 and int(losses["skipped_too_short"]) == 1
    assert torch.isfinite(losses["total"]) and losses["ctc"].item() > 0
    no_gloss = {k: v for k, v in batch.items() if k not in ("gloss", "gloss_lengths")}
    losses = model.losses(no_gloss, model(no_gloss))
    assert int(losses["skipped_no_gloss"]) == 3 and losses["ctc"].item() == 0.0
    assert losses["total"].item() == pytest.approx(losses["ce"].item())


def test_bad_samples_are_refused_by_name():
    model = make_model("sign2text")
    batch = make_batch()
    batch["frame_mask"] = batch["frame_mask"].clone()
    batch["frame_mask"][1] = False
    with pytest.raises(InputError, match=r"\[b\].*no frames"):
        model(batch)
    small = make_model("sign2text", cfg={**TINY, "max_frames": 12})
    with pytest.raises(InputError, match=r"\[a\].*max_frames"):
        small(make_batch())
    short_text = make_model("sign2text", cfg={**TINY, "max_text_length": 3})
    with pytest.raises(InputError, match=r"\[a\].*max_text_length"):
        short_text(make_batch())
    g2t = make_model("gloss2text")
    batch = make_batch()
    batch["gloss_lengths"] = torch.tensor([3, 0, 1])
    with pytest.raises(InputError, match=r"\[b\]"):
        g2t(batch)


def test_construction_errors_and_parameter_groups():
    with pytest.raises(ValueError, match="task"):
        SLTModel("sign2glos", "adat", tiny_backbone(), GLOSS_VOCAB, TEXT_VOCAB, TINY)
    with pytest.raises(ValueError, match="trained tasks"):  # a cascade is two models, never one
        SLTModel("sign2gloss2text", "adat", tiny_backbone(), GLOSS_VOCAB, TEXT_VOCAB, TINY)
    with pytest.raises(ValueError, match="translator"):
        SLTModel("sign2text", "lstm", tiny_backbone(), GLOSS_VOCAB, TEXT_VOCAB, TINY)
    with pytest.raises(ValueError, match="no backbone"):
        SLTModel("gloss2text", "adat", tiny_backbone(), GLOSS_VOCAB, TEXT_VOCAB, TINY)
    model = make_model("sign2text_ctc", "adat")
    groups = model.parameter_groups()
    assert sum(len(g) for g in groups.values()) == len(list(model.parameters()))
    assert len(groups["backbone"]) == len(list(model.backbone.parameters()))
    assert len(groups["decoder"]) == len(list(model.decoder.parameters()))
    assert model.cfg == ModelConfig.from_dict(TINY)


def test_eval_features_of_a_padded_batch_equal_each_sample_alone():
    """Issue 11: batch norm turns zeroed padding into constants that the temporal convolutions carry into a
    shorter clip's last frames. Training caches frozen features per sample, unpadded; decoding batches
    samples of different lengths. In eval mode each sample must get the features it gets alone."""
    from hatl.models.slt import pool_backbone_output

    model = make_model("sign2text_ctc").eval()
    gen = torch.Generator().manual_seed(3)
    for module in model.backbone.modules():  # trained statistics: a fresh BN would map 0 to 0 and hide the leak
        if isinstance(module, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=gen))
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=gen) + 0.5)
    batch = make_batch((16, 11, 6))
    with torch.no_grad():
        feats, mask = model.backbone_features(batch["keypoints"], batch["frame_mask"])
        padded = pool_backbone_output(model.backbone(
            (batch["keypoints"] * batch["frame_mask"][:, :, None, None]).unsqueeze(1)))
        for row, n in enumerate((16, 11, 6)):
            alone, alone_mask = model.backbone_features(batch["keypoints"][row : row + 1, :n],
                                                        batch["frame_mask"][row : row + 1, :n])
            k = int(alone_mask.sum())
            assert int(mask[row].sum()) == k
            assert torch.allclose(feats[row, :k], alone[0, :k], atol=1e-5)
        # the plain padded pass is what differs (the shortest clip's last real step)
        assert not torch.allclose(padded[2, :2], feats[2, :2], atol=1e-4)


def test_sign2gloss_has_no_text_decoder():
    """The recogniser of the cascade ends in glosses: no decoder parameters, no text logits, and its gloss
    classifier is what a Sign2Gloss2Text decode reads (the text comes from the gloss2text run)."""
    model = make_model("sign2gloss").eval()
    assert model.decoder is None and not model.has_decoder and model.parameter_groups()["decoder"] == []
    out = model(make_batch())
    assert out.text_logits is None and out.gloss_logprobs.shape[-1] == GLOSS_VOCAB
    assert model.loss_weights()["ce"] == 0.0 and model.loss_weights()["ctc"] > 0
    with pytest.raises(ValueError, match="no text decoder"):
        model.next_token_logprobs(out.encoded, torch.tensor([[BOS]] * 3))
