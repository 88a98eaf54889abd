"""HATL's loss terms (paper section 4.2.4): w_ctc*CTC + w_ce*CE + w_enc*L_enc + w_bb*L_bb.

CTC trains the encoder's per-frame gloss distribution, CE the text decoder, and L_enc / L_bb are frame-wise
cross-entropies of a gloss classifier on the encoder output and on the backbone features against frame
labels made from the gloss sequence (docs/losses.md says how, per task, and why the defaults are what they are).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

import torch
import torch.nn.functional as F

from hatl.models.alignment import IGNORE, ctc_forced_align, ctc_min_frames, uniform_segmentation

FRAME_TARGETS = ("viterbi", "uniform")
SIGN2TEXT_FRAME_TARGETS = ("none", "uniform")


@dataclass(frozen=True)
class LossConfig:
    """Config ``model.loss``. The paper gives no weights; these defaults are argued in docs/losses.md."""

    w_ctc: float = 1.0
    w_ce: float = 1.0
    w_enc: float = 0.2
    w_bb: float = 0.1
    label_smoothing: float = 0.1
    rdrop: float = 0.0  # weight of the text decoder's dropout-consistency term (R-Drop); 0 = off
    frame_targets: str = "viterbi"
    sign2text_frame_targets: str = "uniform"  # the paper keeps L_enc / L_bb for Sign2Text; "none" turns them off
    supervise_blank_frames: bool = False

    @classmethod
    def from_dict(cls, section: Mapping[str, Any] | None) -> "LossConfig":
        section = dict(section or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(section) - known)
        if unknown:
            raise ValueError(f"unknown model.loss keys {unknown}; known: {sorted(known)}")
        cfg = cls(**section)
        if cfg.frame_targets not in FRAME_TARGETS:
            raise ValueError(f"model.loss.frame_targets must be one of {FRAME_TARGETS}, got {cfg.frame_targets!r}")
        if cfg.sign2text_frame_targets not in SIGN2TEXT_FRAME_TARGETS:
            raise ValueError(
                f"model.loss.sign2text_frame_targets must be one of {SIGN2TEXT_FRAME_TARGETS}, "
                f"got {cfg.sign2text_frame_targets!r}"
            )
        for name in ("w_ctc", "w_ce", "w_enc", "w_bb"):
            if getattr(cfg, name) < 0:
                raise ValueError(f"model.loss.{name} must be >= 0")
        if not 0.0 <= cfg.label_smoothing < 1.0:
            raise ValueError("model.loss.label_smoothing must be in [0, 1)")
        if cfg.rdrop < 0:
            raise ValueError("model.loss.rdrop must be >= 0")
        return cfg


def frame_loss_coverage(task: str, mode: str | None, with_gloss: int, total: int) -> str | None:
    """A warning when a sign task's frame losses (L_enc, L_bb) are on but some training samples have no
    glosses to make frame labels from: those samples get no frame term (they still train CE, and CTC where
    the task has it), so on a gloss-less dataset L_enc = L_bb = 0 for the whole run. None when nothing is
    missing or the frame losses are off."""
    if mode is None or with_gloss == total:
        return None
    if with_gloss == 0:
        return (f"{task}: no training sample has gloss annotations, so L_enc and L_bb are 0 for this run "
                f"(frame targets '{mode}' need glosses); only the text cross-entropy trains")
    return (f"{task}: {total - with_gloss} of {total} training samples have no glosses; they get no L_enc / L_bb "
            "frame labels (counted per epoch as train_skipped_no_gloss)")


def zero_like_graph(tensor: torch.Tensor) -> torch.Tensor:
    """A 0 that stays attached to ``tensor``'s graph, so ``total.backward()`` works when a term is empty."""
    return tensor.sum() * 0.0


def ctc_usable(
    frame_lengths: torch.Tensor, gloss_lengths: torch.Tensor, gloss: torch.Tensor
) -> torch.Tensor:
    """(B,) True where CTC is defined: some glosses, and enough frames for them and their repeats."""
    return (gloss_lengths > 0) & (frame_lengths >= ctc_min_frames(gloss, gloss_lengths))


def ctc_loss(
    gloss_logprobs: torch.Tensor,
    frame_lengths: torch.Tensor,
    gloss: torch.Tensor,
    gloss_lengths: torch.Tensor,
    blank: int,
    usable: torch.Tensor,
) -> torch.Tensor:
    """torch's CTC (per-row loss divided by its gloss count, then averaged) over the usable rows only.

    Unusable rows are left out rather than zeroed by ``zero_infinity``, so they do not dilute the mean;
    the caller counts them.
    """
    if not bool(usable.any()):
        return zero_like_graph(gloss_logprobs)
    rows = usable.nonzero(as_tuple=True)[0]
    return F.ctc_loss(
        gloss_logprobs[rows].transpose(0, 1),  # torch wants (T, B, C)
        gloss[rows],
        frame_lengths[rows],
        gloss_lengths[rows],
        blank=blank,
        reduction="mean",
        zero_infinity=False,
    )


def text_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, pad_id: int, label_smoothing: float
) -> torch.Tensor:
    """Token-level CE of (B, S, V) logits against (B, S) targets, averaged over the non-PAD tokens (paper eq. 9)."""
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        targets.reshape(-1),
        ignore_index=pad_id,
        label_smoothing=label_smoothing,
    )


def symmetric_kl(logits_a: torch.Tensor, logits_b: torch.Tensor, targets: torch.Tensor, pad_id: int) -> torch.Tensor:
    """R-Drop's consistency term (Liang et al. 2021): ½(KL(p‖q) + KL(q‖p)) between two (B, S, V) next-token
    distributions of the same rows, averaged over the non-PAD target positions of ``targets`` (B, S)."""
    keep = targets != pad_id
    if not bool(keep.any()):
        return zero_like_graph(logits_a)
    log_p = F.log_softmax(logits_a[keep].float(), dim=-1)
    log_q = F.log_softmax(logits_b[keep].float(), dim=-1)
    both = F.kl_div(log_p, log_q, reduction="none", log_target=True) + F.kl_div(log_q, log_p, reduction="none", log_target=True)
    return 0.5 * both.sum(-1).mean()


def frame_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean CE over the labelled frames (paper eqs. 10-11: the set M); 0 when no frame has a label."""
    if not bool((labels != IGNORE).any()):
        return zero_like_graph(logits)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE)


def frame_targets(
    mode: str,
    gloss_logprobs: torch.Tensor,
    frame_lengths: torch.Tensor,
    gloss: torch.Tensor,
    gloss_lengths: torch.Tensor,
    blank: int,
    usable: torch.Tensor,
    supervise_blank: bool,
) -> torch.Tensor:
    """(B, T) frame labels for L_enc / L_bb, IGNORE on frames without one.

    ``viterbi``: the best CTC path of the gloss sequence through the current gloss log-probs (no grad);
    frames on a blank are left unlabelled unless ``supervise_blank`` (CTC paths are mostly blank, and
    labelling those would teach the frame heads to say blank). ``uniform``: equal runs per gloss.
    Rows that are not ``usable`` get no labels.
    """
    frames = gloss_logprobs.shape[1]
    if mode == "viterbi":
        labels = ctc_forced_align(gloss_logprobs, frame_lengths, gloss, gloss_lengths, blank).labels
        if not supervise_blank:
            labels = labels.masked_fill(labels == blank, IGNORE)
    elif mode == "uniform":
        labels = uniform_segmentation(frame_lengths, gloss, gloss_lengths, frames)
    else:
        raise ValueError(f"unknown frame target mode {mode!r}")
    return labels.masked_fill(~usable.unsqueeze(1), IGNORE)
