"""CTC forced alignment (Viterbi) against brute force, and uniform segmentation."""

from __future__ import annotations

import itertools

import pytest
import torch

from hatl.models.alignment import (
    IGNORE,
    ctc_forced_align,
    ctc_min_frames,
    extended_targets,
    uniform_segmentation,
)

BLANK = 0


def collapse(path: tuple[int, ...], blank: int) -> list[int]:
    out: list[int] = []
    previous = None
    for label in path:
        if label != previous and label != blank:
            out.append(label)
        previous = label
    return out


def brute_force_best(log_probs: torch.Tensor, target: list[int], blank: int) -> tuple[float, tuple[int, ...] | None]:
    """Best-scoring frame labelling (over all C^T) that CTC-collapses to ``target``."""
    frames, classes = log_probs.shape
    best_score, best_path = float("-inf"), None
    for path in itertools.product(range(classes), repeat=frames):
        if collapse(path, blank) != target:
            continue
        score = float(sum(log_probs[t, c] for t, c in enumerate(path)))
        if score > best_score:
            best_score, best_path = score, path
    return best_score, best_path


def test_extended_targets_interleaves_blanks():
    ext = extended_targets(torch.tensor([[5, 6]]), blank=4)
    assert ext.tolist() == [[4, 5, 4, 6, 4]]


def test_min_frames_counts_repeats():
    targets = torch.tensor([[1, 1, 2, 2], [1, 2, 3, 0], [3, 3, 0, 0]])
    lengths = torch.tensor([4, 3, 1])
    # row 0: 4 glosses + 2 repeated pairs; row 1: no repeats; row 2: the repeat lies in the padding
    assert ctc_min_frames(targets, lengths).tolist() == [6, 3, 1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_viterbi_equals_brute_force(seed: int):
    gen = torch.Generator().manual_seed(seed)
    classes, frames = 4, 6
    log_probs = torch.randn(4, frames, classes, generator=gen).log_softmax(-1)
    targets = torch.tensor([[1, 2, 0], [2, 2, 3], [3, 0, 0], [1, 3, 1]])
    target_lengths = torch.tensor([2, 3, 1, 3])
    input_lengths = torch.tensor([6, 6, 4, 5])  # rows 2 and 3 are padded in time
    result = ctc_forced_align(log_probs, input_lengths, targets, target_lengths, BLANK)
    for row in range(4):
        n = int(input_lengths[row])
        target = targets[row, : int(target_lengths[row])].tolist()
        score, path = brute_force_best(log_probs[row, :n], target, BLANK)
        assert result.feasible[row]
        assert float(result.score[row]) == pytest.approx(score, abs=1e-5)
        assert result.labels[row, :n].tolist() == list(path)
        assert (result.labels[row, n:] == IGNORE).all()
        # the returned path really collapses to the target and scores what it claims
        assert collapse(tuple(result.labels[row, :n].tolist()), BLANK) == target


def test_states_follow_ctc_transitions():
    gen = torch.Generator().manual_seed(5)
    log_probs = torch.randn(2, 12, 6, generator=gen).log_softmax(-1)
    targets = torch.tensor([[1, 2, 2, 5], [3, 4, 0, 0]])
    result = ctc_forced_align(log_probs, torch.tensor([12, 9]), targets, torch.tensor([4, 2]), BLANK)
    for row, n in ((0, 12), (1, 9)):
        states = result.states[row, :n].tolist()
        assert states[0] in (0, 1)
        assert states[-1] in (2 * int([4, 2][row]), 2 * int([4, 2][row]) - 1)
        assert all(0 <= b - a <= 2 for a, b in zip(states, states[1:]))


def test_infeasible_rows_are_flagged_not_labelled():
    log_probs = torch.randn(3, 4, 5).log_softmax(-1)
    targets = torch.tensor([[1, 1, 2], [1, 2, 3], [0, 0, 0]])
    # row 0 needs 4 frames (a blank between the repeated 1s) and has 3; row 2 has no glosses
    result = ctc_forced_align(log_probs, torch.tensor([3, 4, 4]), targets, torch.tensor([3, 3, 0]), BLANK)
    assert result.feasible.tolist() == [False, True, False]
    assert (result.labels[0] == IGNORE).all() and (result.labels[2] == IGNORE).all()
    assert collapse(tuple(result.labels[1].tolist()), BLANK) == [1, 2, 3]
    assert torch.isinf(result.score[0]) and torch.isfinite(result.score[1])


def test_alignment_needs_no_grad_and_accepts_grad_inputs():
    log_probs = torch.randn(1, 5, 4, requires_grad=True).log_softmax(-1)
    result = ctc_forced_align(log_probs, torch.tensor([5]), torch.tensor([[1, 2]]), torch.tensor([2]), BLANK)
    assert not result.labels.requires_grad and not result.score.requires_grad


def test_uniform_segmentation():
    targets = torch.tensor([[7, 8, 9], [5, 0, 0], [6, 6, 0]])
    labels = uniform_segmentation(torch.tensor([6, 3, 0]), targets, torch.tensor([3, 1, 2]), frames=6)
    assert labels[0].tolist() == [7, 7, 8, 8, 9, 9]
    assert labels[1].tolist() == [5, 5, 5, IGNORE, IGNORE, IGNORE]
    assert (labels[2] == IGNORE).all()  # no frames
