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
(:class:`hatl.evaluate.metrics.BleuSettings`), so a floor is comparable with the runs beside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

COLLAPSE_RATIO = 0.5  # distinct outputs / distinct references below this on test: the run is flagged


@dataclass(frozen=True)
class DistinctOutputs:
    """Distinct hypotheses vs distinct references over the same ``n`` sentences."""

    n: int
    outputs: int  # distinct hypotheses
    references: int  # distinct references

    @property
    def ratio(self) -> float:
        """outputs / references, capped at 1 (more variety than the references is not better); 0 if empty."""
        if self.references == 0:
            return 0.0
        return min(1.0, self.outputs / self.references)

    @property
    def collapsed(self) -> bool:
        return self.n > 0 and self.ratio < COLLAPSE_RATIO

    def text(self) -> str:
        return f"{self.outputs}/{self.references}"


def distinct_outputs(hyps: Sequence[str], refs: Sequence[str]) -> DistinctOutputs:
    """Count distinct hypotheses and distinct references (whitespace-normalised strings)."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")

    def norm(s: str) -> str:
        return " ".join(s.split())

    return DistinctOutputs(len(hyps), len({norm(h) for h in hyps}), len({norm(r) for r in refs}))


def log_fields(hyps: Sequence[str], refs: Sequence[str]) -> dict[str, int]:
    """The per-epoch fields training logs for its dev set (``dev_`` is prefixed by the trainer)."""
    d = distinct_outputs(hyps, refs)
    return {"distinct_outputs": d.outputs, "distinct_refs": d.references}


def collapse_warning(summary: Mapping[str, Any]) -> str | None:
    """A warning for the end of ``hatl train`` when the best epoch's dev outputs are collapsed, else None."""
    best = summary.get("best_dev") or {}
    outputs, refs = best.get("distinct_outputs"), best.get("distinct_refs")
    if outputs is None or not refs:
        return None
    d = DistinctOutputs(int(refs), int(outputs), int(refs))
    if not d.collapsed:
        return None
    return (f"collapsed output: the best epoch ({summary.get('best_epoch')}) decodes {outputs} distinct dev "
            f"sentences for {refs} distinct references (< {COLLAPSE_RATIO:.0%}); its scores are what a few fixed "
            "sentences score (compare the constant-output floor in tables 5-7)")


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
    from hatl.evaluate.metrics import BleuSettings

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
    from hatl.evaluate.metrics import BleuSettings, bleu_scores, rouge_l

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
