"""The optimisation step, one code path for a single process and for N DDP ranks.

A rank computes the losses of its shard of the global batch (the whole batch in a single process). Under
DDP each loss term, a mean over its own unit (``SLTModel.losses`` counts them), is rescaled by the rank's
share of the term's global count, so the gradient DDP averages is the single-process gradient of the
global batch (:mod:`hatl.train.distributed`). Then: backward, clipping, the LR schedule, AdamW.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hatl.errors import HatlError
from hatl.models.slt import LOSS_TERMS, paired_for_rdrop
from hatl.train import distributed as DU

LOSS_KEYS = ("total", *LOSS_TERMS)
COUNT_KEYS = ("skipped_no_gloss", "skipped_too_short")


def new_sums() -> dict[str, float]:
    """An epoch's running sums: samples, loss values times samples, skipped-row counts."""
    return {"n": 0, **{k: 0.0 for k in LOSS_KEYS}, **{k: 0 for k in COUNT_KEYS}}


class LossForward(nn.Module):
    """The model's forward and its losses in one call: what a step runs, and what DDP wraps. Only tensors
    that feed a loss are returned, so DDP's search for unused parameters sees exactly the parameters the
    step trains (heads a task does not use get no gradient)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        if self.model.training and self.model.uses_rdrop():
            batch = paired_for_rdrop(batch)
        return self.model.losses(batch, self.model(batch))


@dataclass
class StepLosses:
    total: torch.Tensor  # what to backpropagate
    sums: dict[str, float]  # this rank's part of the epoch sums (summed over ranks: the global batch's)
    stop: bool  # DDP: a termination was requested on some rank (every rank gets the same answer); else False


def step_losses(forward: nn.Module, make_batch: Callable[..., dict[str, Any]], idxs: Sequence[int], dist: DU.DistContext,
                autocast: Callable[[], contextlib.AbstractContextManager], loss_weights: dict[str, float],
                stop_requested: Callable[[], bool], where: str, resume_dir: Any) -> StepLosses:
    """Forward and losses of this rank's share of the global batch ``idxs``.

    A rank whose shard is empty (a global batch smaller than the world) runs one real sample with weight 0,
    because every rank must take part in DDP's gradient all-reduce. ``where`` names the step in errors, which
point to ``resume_dir``.
    """
    mine = DU.shard(idxs, dist.rank, dist.world_size)
    batch = make_batch(mine or list(idxs[:1]), pad_like=idxs)
    with autocast():
        losses = forward(batch)
    counts = [float(losses[f"n_{k}"]) if mine else 0.0 for k in LOSS_TERMS] if dist.enabled else []
    finite = bool(torch.isfinite(losses["total"].detach()))
    bad_ranks, stop = 0.0 if finite else 1.0, False
    if dist.enabled:  # one all-reduce: the global counts, and whether any rank failed or was told to stop
        reduced = DU.all_reduce_sum([*counts, bad_ranks, 1.0 if stop_requested() else 0.0])
        global_counts, bad_ranks, stop = reduced[: len(LOSS_TERMS)], reduced[-2], reduced[-1] > 0
    if bad_ranks > 0:  # under DDP every rank raises together, so none is left waiting in a collective
        values = {k: float(losses[k].detach()) for k in LOSS_KEYS if k in losses}
        samples = f"samples {batch['sample_ids'][:4]}..."
        what = (f"on {int(bad_ranks)} rank(s) (this rank {dist.rank}: {samples}, {values})" if dist.enabled
                else f"({samples}): {values}")
        raise HatlError(f"non-finite training loss at {where} {what}; the resume state in {resume_dir} keeps the last good state")
    n = len(mine)
    sums: dict[str, float] = {"n": n}
    if not dist.enabled:
        total = losses["total"]
        sums.update({k: float(losses[k].detach().float()) * n for k in LOSS_KEYS})
    else:
        # total = Σ w_k · s_k · term_k; summed over ranks, the sums are what one process adds for this batch
        world, n_global = dist.world_size, len(idxs)
        scales = DU.term_scales(counts, global_counts, world)
        terms = [losses[k] for k in LOSS_TERMS]
        total = sum(loss_weights[k] * s * t for k, s, t in zip(LOSS_TERMS, scales, terms))
        sums["total"] = float(total.detach().float()) / world * n_global
        sums.update({k: float(t.detach().float()) * s / world * n_global for k, s, t in zip(LOSS_TERMS, scales, terms)})
    if mine:
        sums.update({k: int(losses[k]) for k in COUNT_KEYS if k in losses})
    return StepLosses(total, sums, stop)


def add_sums(sums: dict[str, float], part: dict[str, float]) -> None:
    for k, v in part.items():
        sums[k] += v


def optimizer_update(total: torch.Tensor, params: list[nn.Parameter], optimizer: torch.optim.Optimizer, grad_clip: float,
                     set_lr: Callable[[], None], where: str) -> None:
    """Backward, clip (a non-finite gradient stops the run), the scheduled LR, AdamW step. Under DDP,
    backward all-reduces the gradients."""
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    if grad_clip > 0:
        try:
            torch.nn.utils.clip_grad_norm_(params, grad_clip, error_if_nonfinite=True)
        except RuntimeError as err:
            raise HatlError(f"non-finite gradient at {where}: {err}; the resume state keeps the last good state") from err
    set_lr()
    optimizer.step()
