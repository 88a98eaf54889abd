"""Output collapse made visible: how many distinct sentences a system emits, and the constant-output floor.

A translator that has not learned to read its input emits the same one or few sentences for every input.
Its BLEU is then what a fixed sentence scores, and a table of such runs compares noise. Two measures make
that visible wherever a score is shown:

* **distinct outputs**: the number of distinct hypotheses against the number of distinct references on the
  same sentences. The ratio is capped at 1; a run whose test ratio is below :data:`COLLAPSE_RATIO` (50%) is
  *collapsed* (flagged in tables 5-7, the report and at the end of ``hatl train``).
* **constant-output floor**: the best single sentence among the dev references, chosen by dev corpus
  BLEU-4 (that sentence repeated for every dev input), then scored on each split like a system
  (cumulative BLEU-1..4, ROUGE-L). A model must beat it to show it reads its input at all.

Pure functions on strings; sacrebleu and rouge-score do the scoring with the scoring stage's settings
(:class:`hatl.metrics.BleuSettings`), so a floor is comparable with the runs beside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# distinct outputs are plain string counts that training logs too: they live below both, in hatl.metrics
from hatl.metrics import COLLAPSE_RATIO, DistinctOutputs, collapse_warning, distinct_outputs, log_fields  # noqa: F401


# ------------------------------------------------------------------------------------------ the floor
@dataclass(frozen=True)
class ConstantFloor:
    sentence: str  # the chosen dev reference
    dev_bleu4: float  # its dev corpus BLEU-4 when emitted for every dev input (the selection criterion)
    scores: dict[str, dict[str, float]]  # split -> bleu1..bleu4, rouge


def best_constant_sentence(dev_refs: Sequence[str], settings: Any = None) -> tuple[str, float]:
    """The dev reference that, repeated for every dev input, has the highest dev corpus BLEU-4.

    Ties go to the lexicographically first sentence, so the choice does not depend on the input order.
    BLEU comes from sacrebleu's own sufficient statistics, summed (exactly its corpus score).
    """
    from hatl.evaluate.bootstrap import bleu_from_stats
    from hatl.metrics import BleuSettings

    settings = settings or BleuSettings()
    refs = list(dev_refs)
    if not refs:
        raise ValueError("no dev references to choose a constant output from")
    best, best_score = "", -1.0
    for candidate in sorted(set(refs)):
        score = bleu_from_stats(_summed_bleu_stats([candidate] * len(refs), refs, settings), settings)
        if score > best_score:
            best, best_score = candidate, score
    return best, best_score


def _summed_bleu_stats(hyps: list[str], refs: list[str], settings: Any) -> Any:
    """sacrebleu's corpus statistics (lengths, n-gram matches and totals), summed over the sentences: no
    ROUGE work, which the selection over every candidate does not need."""
    import numpy as np

    stats = settings.metric(4)._extract_corpus_statistics(hyps, [refs])
    return np.asarray(stats, dtype=np.int64).reshape(len(hyps), -1).sum(axis=0)


def score_constant(sentence: str, refs: Sequence[str], settings: Any = None) -> dict[str, float]:
    """BLEU-1..4 and ROUGE-L of ``sentence`` emitted for every one of ``refs``."""
    from hatl.metrics import BleuSettings, bleu_scores, rouge_l

    settings = settings or BleuSettings()
    hyps = [sentence] * len(refs)
    bleu = bleu_scores(hyps, list(refs), settings)
    out = {f"bleu{n}": float(bleu[f"bleu{n}"]) for n in range(1, 5)}
    out["rouge"] = float(rouge_l(hyps, list(refs), settings.lowercase))
    return out


def constant_floor(dev_refs: Sequence[str], split_refs: Mapping[str, Sequence[str]], settings: Any = None) -> ConstantFloor:
    """The constant-output floor: chosen on ``dev_refs``, scored on every split of ``split_refs``."""
    sentence, dev_bleu4 = best_constant_sentence(dev_refs, settings)
    scores = {split: score_constant(sentence, refs, settings) for split, refs in split_refs.items() if len(refs)}
    return ConstantFloor(sentence, dev_bleu4, scores)


__all__ = ["COLLAPSE_RATIO", "DistinctOutputs", "distinct_outputs", "log_fields", "collapse_warning",
           "ConstantFloor", "best_constant_sentence", "score_constant", "constant_floor"]
