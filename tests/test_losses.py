"""Loss terms: CTC as torch computes it, text CE, frame-wise CE and frame targets, and the config section."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hatl.config import load_config, validate_config
from hatl.errors import ConfigError
from hatl.models.alignment import IGNORE, ctc_forced_align
from hatl.models.losses import (
    LossConfig,
    ctc_loss,
    ctc_usable,
    frame_cross_entropy,
    frame_targets,
    text_cross_entropy,
)
from hatl.models.slt import ModelConfig, model_config

BLANK = 4


def test_ctc_matches_torch_usage():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 10, 9, generator=gen, requires_grad=True)
    log_probs = logits.log_softmax(-1)
    gloss = torch.tensor([[5, 6, 7], [8, 8, 0], [6, 0, 0]])
    gloss_lengths = torch.tensor([3, 2, 1])
    frame_lengths = torch.tensor([10, 7, 4])
    usable = ctc_usable(frame_lengths, gloss_lengths, gloss)
    assert usable.all()
    ours = ctc_loss(log_probs, frame_lengths, gloss, gloss_lengths, BLANK, usable)
    reference = F.ctc_loss(log_probs.transpose(0, 1), gloss, frame_lengths, gloss_lengths, blank=BLANK)
    assert ours.item() == pytest.approx(reference.item(), rel=1e-6)
    ours.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_ctc_leaves_out_unusable_rows_instead_of_zeroing_them():
    log_probs = torch.randn(3, 5, 9).log_softmax(-1)
    gloss = torch.tensor([[5, 6], [7, 7], [0, 0]])
    gloss_lengths = torch.tensor([2, 2, 0])
    frame_lengths = torch.tensor([5, 2, 5])  # row 1 needs 3 frames (repeat); row 2 has no glosses
    usable = ctc_usable(frame_lengths, gloss_lengths, gloss)
    assert usable.tolist() == [True, False, False]
    ours = ctc_loss(log_probs, frame_lengths, gloss, gloss_lengths, BLANK, usable)
    only_row0 = F.ctc_loss(log_probs[:1].transpose(0, 1), gloss[:1], frame_lengths[:1], gloss_lengths[:1], blank=BLANK)
    assert ours.item() == pytest.approx(only_row0.item(), rel=1e-6)
    none = ctc_loss(log_probs, frame_lengths, gloss, gloss_lengths, BLANK, torch.zeros(3, dtype=torch.bool))
    assert none.item() == 0.0


def test_text_cross_entropy_ignores_pad_and_smooths():
    logits = torch.randn(2, 4, 7)
    targets = torch.tensor([[5, 6, 2, 0], [4, 2, 0, 0]])
    plain = text_cross_entropy(logits, targets, pad_id=0, label_smoothing=0.0)
    keep = targets != 0
    manual = -logits.log_softmax(-1)[keep].gather(1, targets[keep][:, None]).mean()
    assert plain.item() == pytest.approx(manual.item(), rel=1e-6)
    changed = logits.clone()
    changed[0, 3] += 10.0
    changed[1, 2:] -= 5.0  # logits at PAD targets do not count
    assert text_cross_entropy(changed, targets, 0, 0.0).item() == pytest.approx(plain.item(), rel=1e-6)
    smoothed = text_cross_entropy(logits, targets, 0, 0.1)
    logp = logits.log_softmax(-1)[keep]
    manual_smooth = (0.9 * -logp.gather(1, targets[keep][:, None])[:, 0] + 0.1 * -logp.mean(-1)).mean()
    assert smoothed.item() == pytest.approx(manual_smooth.item(), rel=1e-5)


def test_frame_cross_entropy_over_labelled_frames_only():
    logits = torch.randn(2, 3, 7, requires_grad=True)
    labels = torch.tensor([[5, IGNORE, 6], [IGNORE, IGNORE, 5]])
    loss = frame_cross_entropy(logits, labels)
    picked = torch.stack([logits[0, 0], logits[0, 2], logits[1, 2]])
    assert loss.item() == pytest.approx(F.cross_entropy(picked, torch.tensor([5, 6, 5])).item(), rel=1e-6)
    empty = frame_cross_entropy(logits, torch.full((2, 3), IGNORE))
    assert empty.item() == 0.0
    empty.backward()  # stays on the graph, so a total with an empty term still back-propagates
    assert logits.grad is not None and (logits.grad == 0).all()


def test_viterbi_frame_targets_drop_blanks_unless_asked():
    gen = torch.Generator().manual_seed(3)
    log_probs = torch.randn(2, 8, 9, generator=gen).log_softmax(-1)
    gloss = torch.tensor([[5, 6, 7], [8, 0, 0]])
    gloss_lengths = torch.tensor([3, 1])
    frame_lengths = torch.tensor([8, 6])
    usable = torch.tensor([True, False])
    path = ctc_forced_align(log_probs, frame_lengths, gloss, gloss_lengths, BLANK).labels
    with_blank = frame_targets("viterbi", log_probs, frame_lengths, gloss, gloss_lengths, BLANK, usable, True)
    without = frame_targets("viterbi", log_probs, frame_lengths, gloss, gloss_lengths, BLANK, usable, False)
    assert with_blank[0].tolist() == path[0].tolist()
    assert without[0].tolist() == [IGNORE if v == BLANK else v for v in path[0].tolist()]
    assert (with_blank[1] == IGNORE).all()  # not usable: no labels
    uniform = frame_targets("uniform", log_probs, frame_lengths, gloss, gloss_lengths, BLANK,
                            torch.tensor([True, True]), False)
    assert uniform[1].tolist() == [8] * 6 + [IGNORE] * 2


def test_loss_config_validation():
    assert LossConfig.from_dict({}) == LossConfig()
    for bad in ({"w_ce": -1.0}, {"frame_targets": "greedy"}, {"sign2text_frame_targets": "viterbi"},
                {"label_smoothing": 1.0}, {"weight": 1.0}):
        with pytest.raises(ValueError):
            LossConfig.from_dict(bad)


def test_config_section_defaults_match_dataclasses(tmp_path):
    config = load_config("config/config.yaml")
    assert model_config(config) == ModelConfig()
    minimal = validate_config({"datasets": {"d": {"adapter": "demo"}}})
    assert model_config(minimal) == ModelConfig()
    assert minimal["model"]["loss"]["label_smoothing"] == 0.1
    with pytest.raises(ConfigError, match="model"):
        validate_config({"datasets": {"d": {"adapter": "demo"}}, "model": {"adat": {"hiden": 64}}})
    tiny = validate_config({"datasets": {"d": {"adapter": "demo"}},
                            "model": {"adat": {"hidden": 64, "heads": 2, "feedforward": 128}}})
    assert model_config(tiny).adat.hidden == 64 and model_config(tiny).adat.encoder_layers == 3
