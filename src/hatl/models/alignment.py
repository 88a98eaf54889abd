"""Frame labels from a gloss sequence: CTC forced alignment (Viterbi) and uniform segmentation.

torchaudio (whose ``forced_align`` does the same job) is not installed in this environment and would be a
large dependency for one function, so the Viterbi pass over the CTC extended label sequence is written
here: one vectorised step per frame over the whole batch and every state, then a vectorised backtrack.

Label convention of every function here: (B, T) int64 with a gloss id on aligned frames and ``IGNORE``
(-100, the ``ignore_index`` of torch's cross-entropy) where a frame gets no label.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

IGNORE = -100


@dataclass
class ForcedAlignment:
    """Result of ``ctc_forced_align`` for a batch.

    labels: (B, T) gloss id (or blank) of the best path at each real frame, IGNORE on padding and on
        infeasible rows. states: (B, T) index into the extended sequence (-1 where labels is IGNORE).
    score: (B,) log-probability of the best path (-inf when infeasible).
    feasible: (B,) False where no CTC path exists (too few frames for the glosses and their repeats,
        no glosses, or no frames).
    """

    labels: torch.Tensor
    states: torch.Tensor
    score: torch.Tensor
    feasible: torch.Tensor


def extended_targets(targets: torch.Tensor, blank: int) -> torch.Tensor:
    """(B, U) -> (B, 2U + 1): blank, y1, blank, y2, ..., yU, blank (padding slots keep whatever they hold)."""
    batch, length = targets.shape
    ext = torch.full((batch, 2 * length + 1), blank, dtype=torch.long, device=targets.device)
    ext[:, 1::2] = targets
    return ext


def ctc_min_frames(targets: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
    """(B,) fewest frames a CTC path needs: one per gloss plus a blank between each repeated pair."""
    positions = torch.arange(targets.shape[1], device=targets.device).unsqueeze(0)
    inside = positions < target_lengths.unsqueeze(1)
    repeats = (targets[:, 1:] == targets[:, :-1]) & inside[:, 1:]
    return target_lengths + repeats.sum(1)


@torch.no_grad()
def ctc_forced_align(
    log_probs: torch.Tensor,
    input_lengths: torch.Tensor,
    targets: torch.Tensor,
    target_lengths: torch.Tensor,
    blank: int,
) -> ForcedAlignment:
    """Best CTC path (Viterbi) of each row's gloss sequence through its per-frame log-probabilities.

    log_probs (B, T, C) (log-softmax over C), input_lengths (B,), targets (B, U) padded, target_lengths (B,).
    """
    log_probs = log_probs.detach().float()
    batch, frames, _ = log_probs.shape
    device = log_probs.device
    input_lengths = input_lengths.to(device)
    target_lengths = target_lengths.to(device)
    if targets.shape[1] == 0:
        targets = torch.zeros(batch, 1, dtype=torch.long, device=device)
    targets = targets.to(device)
    ext = extended_targets(targets, blank)  # (B, L)
    n_states = ext.shape[1]
    state_ids = torch.arange(n_states, device=device).unsqueeze(0)
    row_states = 2 * target_lengths + 1
    state_ok = state_ids < row_states.unsqueeze(1)
    # s may jump from s-2 when it is a gloss different from the gloss two states back (skipping a blank).
    skip_ok = torch.zeros_like(state_ok)
    skip_ok[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    neg_inf = torch.tensor(float("-inf"), device=device)
    emissions = log_probs.gather(2, ext.unsqueeze(1).expand(batch, frames, n_states))  # (B, T, L)
    emissions = torch.where(state_ok.unsqueeze(1), emissions, neg_inf)

    alpha = torch.full((batch, n_states), float("-inf"), device=device)
    if frames:
        alpha[:, :2] = emissions[:, 0, :2]
        alpha = torch.where(state_ok & (state_ids < 2), alpha, neg_inf)
    backptr = torch.zeros(batch, frames, n_states, dtype=torch.long, device=device)
    for t in range(1, frames):
        from_prev = torch.cat([alpha.new_full((batch, 1), float("-inf")), alpha[:, :-1]], dim=1)
        from_skip = torch.cat([alpha.new_full((batch, 2), float("-inf")), alpha[:, :-2]], dim=1)
        from_skip = torch.where(skip_ok, from_skip, neg_inf)
        best, step = torch.stack([alpha, from_prev, from_skip]).max(dim=0)  # step: how many states back
        updated = best + emissions[:, t]
        active = (t < input_lengths).unsqueeze(1)
        # Rows whose frames have ended keep their alpha and point back to the same state.
        alpha = torch.where(active, updated, alpha)
        backptr[:, t] = torch.where(active, step, torch.zeros_like(step))

    last = (row_states - 1).clamp_min(0)
    second = (row_states - 2).clamp_min(0)
    end_scores = torch.stack([alpha.gather(1, last[:, None])[:, 0], alpha.gather(1, second[:, None])[:, 0]])
    score, which = end_scores.max(dim=0)
    state = torch.where(which == 0, last, second)
    feasible = torch.isfinite(score) & (input_lengths > 0) & (target_lengths > 0)
    score = torch.where(feasible, score, neg_inf)

    states = torch.empty(batch, frames, dtype=torch.long, device=device)
    for t in range(frames - 1, -1, -1):
        states[:, t] = state
        # clamp: an infeasible row's arbitrary pointers must not index before state 0 (its labels are dropped).
        state = (state - backptr[:, t].gather(1, state[:, None])[:, 0]).clamp_min(0)
    labels = ext.gather(1, states.clamp_min(0)) if frames else states.clone()
    real = (torch.arange(frames, device=device).unsqueeze(0) < input_lengths.unsqueeze(1)) & feasible[:, None]
    return ForcedAlignment(
        labels=torch.where(real, labels, torch.full_like(labels, IGNORE)),
        states=torch.where(real, states, torch.full_like(states, -1)),
        score=score,
        feasible=feasible,
    )


def uniform_segmentation(
    input_lengths: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor, frames: int
) -> torch.Tensor:
    """(B, T) labels that split each row's real frames into U equal consecutive runs, one per gloss, in order.

    Frame t of a row with n frames and U glosses gets gloss floor(t * U / n). Rows with no frames or no
    glosses get IGNORE everywhere.
    """
    device = targets.device
    input_lengths = input_lengths.to(device)
    target_lengths = target_lengths.to(device)
    t = torch.arange(frames, device=device).unsqueeze(0)
    slot = (t * target_lengths.unsqueeze(1)) // input_lengths.clamp_min(1).unsqueeze(1)
    if targets.shape[1] == 0:
        return torch.full((targets.shape[0], frames), IGNORE, dtype=torch.long, device=device)
    labels = targets.gather(1, slot.clamp(max=targets.shape[1] - 1))
    real = (t < input_lengths.unsqueeze(1)) & (target_lengths > 0).unsqueeze(1)
    return torch.where(real, labels, torch.full_like(labels, IGNORE))
