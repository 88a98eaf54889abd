"""CTC gloss decoding (greedy and prefix beam search) with Table 4's blank penalty.

Adjustment before decoding, per frame (Table 4: bias 0.4, temperature 0.9):

1. temperature: ``log_softmax(scores / T)``. The input may be logits or log-probabilities: they differ by a
   per-frame constant, which the log-softmax removes, so both give the same result.
2. blank bias: ``bias`` is *subtracted* from the blank's log-probability, i.e. the blank's probability is
   multiplied by exp(-bias). A positive bias therefore makes the decoder emit more glosses; models trained
   with CTC over-predict blanks, which is what the penalty counteracts. The frame is not renormalised:
   a per-frame constant shifts every path equally, so neither the greedy path nor the beam ranking changes.

Prefix beam search keeps, for each collapsed prefix, the log-probability of the paths ending in blank
(``pb``) and in a non-blank (``pnb``). To bound the Python work, each frame only extends with its
``prune_top_k`` most likely non-blank glosses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hatl.experiment import BLANK

NEG_INF = -math.inf


@dataclass(frozen=True)
class CTCConfig:
    """Mirrors ``decoding.ctc`` in the config."""

    method: str = "beam"  # beam | greedy
    beam_width: int = 8
    blank_bias: float = 0.4
    temperature: float = 0.9
    prune_top_k: int = 16
    blank: int = BLANK

    def __post_init__(self) -> None:
        if self.method not in ("beam", "greedy"):
            raise ValueError(f"CTC method must be 'beam' or 'greedy', got {self.method!r}")
        if self.temperature <= 0:
            raise ValueError(f"CTC temperature must be > 0, got {self.temperature}")
        for name in ("beam_width", "prune_top_k"):  # 0 would keep no prefix: every output empty, silently
            if getattr(self, name) < 1:
                raise ValueError(f"CTC {name} must be >= 1, got {getattr(self, name)}")

    @classmethod
    def from_config(cls, decoding: dict[str, Any], blank: int = BLANK) -> CTCConfig:
        ctc = decoding.get("ctc", {})
        return cls(
            method=ctc.get("method", cls.method),
            beam_width=ctc.get("beam_width", cls.beam_width),
            blank_bias=ctc.get("blank_bias", cls.blank_bias),
            temperature=ctc.get("temperature", cls.temperature),
            prune_top_k=ctc.get("prune_top_k", cls.prune_top_k),
            blank=blank,
        )


def adjust_logprobs(scores: torch.Tensor, blank: int, bias: float, temperature: float) -> torch.Tensor:
    """Temperature-scaled log-softmax over the last axis, then ``bias`` subtracted from the blank column."""
    out = torch.log_softmax(scores.float() / temperature, dim=-1)
    out[..., blank] = out[..., blank] - bias
    return out


def collapse(path: Sequence[int], blank: int) -> list[int]:
    """CTC collapse: merge repeats, then drop blanks."""
    out: list[int] = []
    prev = None
    for tok in path:
        if tok != prev and tok != blank:
            out.append(int(tok))
        prev = tok
    return out


def ctc_greedy(logprobs: torch.Tensor, blank: int) -> list[int]:
    """Best path for one sequence (T, G)."""
    return collapse(logprobs.argmax(dim=-1).tolist(), blank)


def _logadd(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def ctc_prefix_beam(logprobs: torch.Tensor, blank: int, beam_width: int = 8, prune_top_k: int = 16) -> list[int]:
    """Prefix beam search for one sequence (T, G) of (adjusted) log-probabilities."""
    lp = logprobs.detach().cpu().numpy().astype(np.float64)
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, NEG_INF)}  # prefix -> (pb, pnb)
    k = min(prune_top_k, lp.shape[1])
    for frame in lp:
        top = np.argpartition(-frame, k - 1)[:k] if k < len(frame) else np.arange(len(frame))
        candidates = [int(c) for c in top if c != blank]
        nxt: dict[tuple[int, ...], list[float]] = {}

        def add(prefix: tuple[int, ...], pb: float, pnb: float) -> None:
            cur = nxt.setdefault(prefix, [NEG_INF, NEG_INF])
            cur[0] = _logadd(cur[0], pb)
            cur[1] = _logadd(cur[1], pnb)

        p_blank = frame[blank]
        for prefix, (pb, pnb) in beams.items():
            total = _logadd(pb, pnb)
            add(prefix, total + p_blank, NEG_INF)  # a blank keeps the prefix
            last = prefix[-1] if prefix else None
            for c in candidates:
                p = frame[c]
                if c == last:
                    add(prefix, NEG_INF, pnb + p)  # repeat without blank: collapses
                    add(prefix + (c,), NEG_INF, pb + p)  # repeat after blank: a new gloss
                else:
                    add(prefix + (c,), NEG_INF, total + p)
        ranked = sorted(nxt.items(), key=lambda kv: _logadd(kv[1][0], kv[1][1]), reverse=True)
        beams = {prefix: (v[0], v[1]) for prefix, v in ranked[:beam_width]}
    best = max(beams.items(), key=lambda kv: _logadd(kv[1][0], kv[1][1]))
    return list(best[0])


def ctc_decode_batch(gloss_scores: torch.Tensor, lengths: Sequence[int], cfg: CTCConfig) -> list[list[int]]:
    """Decode (B, T, G) gloss logits/log-probs with per-sample valid lengths into gloss id lists."""
    adjusted = adjust_logprobs(gloss_scores, cfg.blank, cfg.blank_bias, cfg.temperature)
    out = []
    for i, length in enumerate(lengths):
        seq = adjusted[i, : int(length)]
        if cfg.method == "greedy" or cfg.beam_width == 1:
            out.append(ctc_greedy(seq, cfg.blank))
        else:
            out.append(ctc_prefix_beam(seq, cfg.blank, cfg.beam_width, cfg.prune_top_k))
    return out
