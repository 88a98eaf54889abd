"""Minimum Bayes risk (MBR) selection over a beam's finished hypotheses.

The beam returns the hypothesis with the best model score; MBR instead returns the candidate with the highest
*expected* utility against all the others, each weighted by its posterior within the list (Kumar & Byrne 2004;
"n-best MBR"). A candidate many near-identical hypotheses agree with wins over an isolated one the model ranks a
little higher, which is what a corpus metric such as BLEU rewards.

Posterior. ``p_j`` is the softmax, divided by ``temperature``, of either the beam's ranking scores (``weights:
score``: model log-prob, with LM fusion where it is on, divided by the length penalty) or the translator's own
sequence log-probabilities (``weights: logprob``), with candidates that detokenise to the same sentence merged
(their probabilities summed). As ``temperature`` goes to 0 all mass sits on the best candidate by those weights and
MBR returns it: with ``score`` that is the beam's best, so the beam is the limit case (tested). Length-penalised
scores are small numbers (a log-prob of -10 over a 13-word sentence is -0.12 at length penalty 4), so with them a
temperature of 1 gives nearly equal weights: choose the temperature on dev. Utility: sacrebleu's sentence BLEU
(exponential smoothing, effective order, so short sentences are not all zero) or sentence chrF, hypothesis against
each candidate taken as reference; the tokenizer is the one the evaluation uses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

UTILITIES = ("bleu", "chrf")
WEIGHTS = ("score", "logprob")  # in the order of a stored candidate's columns after the sentence


@dataclass(frozen=True)
class MBRConfig:
    """The ``decoding.mbr`` config section (null: the beam's best hypothesis, no MBR)."""

    utility: str = "bleu"
    temperature: float = 1.0
    weights: str = "score"  # what the posterior is a softmax of: the beam's ranking score or the model log-prob

    def __post_init__(self) -> None:
        if self.weights not in WEIGHTS:
            raise ValueError(f"MBR weights must be one of {', '.join(WEIGHTS)}, got {self.weights!r}")
        if self.utility not in UTILITIES:
            raise ValueError(f"MBR utility must be one of {', '.join(UTILITIES)}, got {self.utility!r}")
        if not self.temperature > 0:
            raise ValueError(f"MBR temperature must be > 0, got {self.temperature}")

    @classmethod
    def from_config(cls, mbr: dict[str, Any] | None) -> MBRConfig | None:
        if mbr is None:
            return None
        return cls(utility=mbr.get("utility", cls.utility), temperature=float(mbr.get("temperature", cls.temperature)),
                   weights=mbr.get("weights", cls.weights))

    @property
    def column(self) -> int:
        """Where this posterior's weights sit in a stored candidate ``[sentence, score, model_logprob]``."""
        return WEIGHTS.index(self.weights) + 1


Utility = Callable[[str, str], float]


def sentence_utility(name: str, tokenize: str = "none") -> Utility:
    """``utility(hypothesis, reference)`` in [0, 100] from sacrebleu's sentence-level metric ``name``."""
    from sacrebleu.metrics import BLEU, CHRF

    if name == "bleu":
        bleu = BLEU(tokenize=tokenize, effective_order=True, smooth_method="exp")
        return lambda hyp, ref: bleu.sentence_score(hyp, [ref]).score
    if name == "chrf":
        chrf = CHRF()
        return lambda hyp, ref: chrf.sentence_score(hyp, [ref]).score
    raise ValueError(f"MBR utility must be one of {', '.join(UTILITIES)}, got {name!r}")


def posterior(scores: Sequence[float], temperature: float) -> list[float]:
    """Softmax of ``scores / temperature`` (numerically stable; -inf scores get probability 0)."""
    if not scores:
        raise ValueError("posterior of an empty candidate list")
    top = max(scores)
    if top == -math.inf:
        raise ValueError("every candidate has score -inf")
    weights = [math.exp((s - top) / temperature) if s > -math.inf else 0.0 for s in scores]
    total = sum(weights)
    return [w / total for w in weights]


def expected_utilities(candidates: Sequence[str], scores: Sequence[float], utility: Utility,
                       temperature: float) -> tuple[list[str], list[float]]:
    """The distinct candidate sentences (in first-seen order) and the expected utility of each.

    Candidates that are the same sentence are one outcome: their posterior mass is summed.
    """
    if len(candidates) != len(scores):
        raise ValueError(f"{len(candidates)} candidates but {len(scores)} scores")
    probs = posterior(scores, temperature)
    mass: dict[str, float] = {}
    for text, p in zip(candidates, probs):
        mass[text] = mass.get(text, 0.0) + p
    distinct = list(mass)
    expected = [sum(mass[ref] * (100.0 if hyp == ref else utility(hyp, ref)) for ref in distinct if mass[ref] > 0)
                for hyp in distinct]
    return distinct, expected


def mbr_select(candidates: Sequence[str], scores: Sequence[float], utility: Utility, temperature: float) -> str:
    """The candidate with the highest expected utility; ties go to the one the beam ranks first.

    ``candidates`` come best first by beam score (as ``beam_search_nbest`` returns them).
    """
    distinct, expected = expected_utilities(candidates, scores, utility, temperature)
    best = max(range(len(distinct)), key=lambda i: (expected[i], -i))
    return distinct[best]


Candidate = Sequence[Any]  # [sentence, beam score, model log-prob], as hatl decode stores it in ``nbest``


def choose(nbest: Sequence[Candidate], cfg: MBRConfig | None, utility: Utility | None) -> str:
    """The output sentence of one sample's candidates (best beam score first): the beam's best without ``cfg``,
    else the MBR choice under ``cfg`` (``utility``: ``sentence_utility(cfg.utility, ...)``, built once by the
    caller)."""
    if cfg is None or utility is None:
        return nbest[0][0]
    col = cfg.column
    if any(len(c) <= col for c in nbest):
        raise ValueError(f"a candidate has no {cfg.weights} column (expected [sentence, score, model_logprob])")
    return mbr_select([c[0] for c in nbest], [float(c[col]) for c in nbest], utility, cfg.temperature)


def reselect(rows: Sequence[dict[str, Any]], cfg: MBRConfig | None, tokenize: str = "none") -> list[str]:
    """Output sentences for decoded rows that carry ``nbest`` (``hatl decode`` with ``decoding.mbr``), chosen again
    under ``cfg`` (None: the beam's best), without decoding again. A row without candidates (the empty translation
    of an empty cascade recognition) keeps its ``hyp``."""
    utility = sentence_utility(cfg.utility, tokenize) if cfg is not None else None
    out = []
    for i, row in enumerate(rows):
        if "nbest" not in row:
            raise ValueError(f"row {i} ({row.get('id')!r}) has no 'nbest': "
                             "decode with decoding.mbr set to keep the candidates")
        if not row["nbest"]:
            out.append(row["hyp"])
            continue
        try:
            out.append(choose(row["nbest"], cfg, utility))
        except ValueError as err:
            raise ValueError(f"row {i} ({row.get('id')!r}): {err}") from err
    return out
