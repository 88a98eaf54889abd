"""Translation and recognition metrics: cumulative BLEU-1..4, ROUGE-L F1, chrF, gloss WER.

Conventions (recorded beside every score so numbers stay comparable):

* BLEU comes from sacrebleu. SLT papers (signjoey, SLRT) scored already-tokenised, lowercased text with
  ``tokenize='none'``, no smoothing and effective order, and report BLEU-n as the *cumulative* score
  (geometric mean of the 1..n-gram precisions times the brevity penalty). We do the same by default;
  ``evaluation.bleu`` in the config changes tokenisation, casing and smoothing, and the sacrebleu
  signature of each BLEU-n is stored with the score.
* ROUGE-L is rouge-score's ``rougeL`` F-measure (beta = 1), averaged over sentences. With beta = 1,
  F = 2PR/(P+R) with P = LCS/|hyp| and R = LCS/|ref| reduces to 2·LCS/(|hyp|+|ref|), the HATL paper's
  formula. rouge-score's default tokenizer drops every non-[a-z0-9] character (German umlauts, Arabic
  script), so we pass a whitespace tokenizer that keeps words as they are.
* chrF is sacrebleu's chrF (character 6-grams, beta 2).
* WER is the word-level Levenshtein distance summed over the corpus divided by the summed reference length.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sacrebleu.metrics import BLEU, CHRF

ROUGE_VARIANT = (
    "ROUGE-L F1 (rouge-score 'rougeL' F-measure, beta=1, whitespace tokenizer keeping non-ASCII words, "
    "mean of sentence scores x100) = 2*LCS/(|hyp|+|ref|), the HATL paper's formula"
)
WER_DEFINITION = "gloss WER = sum of word-level Levenshtein distances / sum of reference lengths x100"


@dataclass(frozen=True)
class BleuSettings:
    """How BLEU is computed; mirrors ``evaluation.bleu`` in the config."""

    tokenize: str = "none"
    lowercase: bool = False
    smooth_method: str = "none"
    effective_order: bool = True

    @classmethod
    def from_config(cls, evaluation: dict[str, Any]) -> BleuSettings:
        bleu = evaluation.get("bleu", {})
        return cls(
            tokenize=bleu.get("tokenize", cls.tokenize),
            lowercase=bleu.get("lowercase", cls.lowercase),
            smooth_method=bleu.get("smooth_method", cls.smooth_method),
            effective_order=bleu.get("effective_order", cls.effective_order),
        )

    def metric(self, order: int) -> BLEU:
        return BLEU(
            max_ngram_order=order,
            tokenize=self.tokenize,
            lowercase=self.lowercase,
            smooth_method=self.smooth_method,
            effective_order=self.effective_order,
        )


def corpus_bleu(hyps: Sequence[str], refs: Sequence[str], settings: BleuSettings = BleuSettings(), order: int = 4) -> float:
    """Cumulative corpus BLEU-``order`` (0-100) alone: what training's dev evaluation tracks."""
    _check_parallel(hyps, refs)
    return float(settings.metric(order).corpus_score(list(hyps), [list(refs)]).score)


def bleu_scores(hyps: Sequence[str], refs: Sequence[str], settings: BleuSettings = BleuSettings()) -> dict[str, Any]:
    """Cumulative BLEU-1..4 (0-100) with the sacrebleu signature of each, plus precisions and brevity penalty."""
    _check_parallel(hyps, refs)
    out: dict[str, Any] = {}
    signatures = {}
    for n in range(1, 5):
        metric = settings.metric(n)
        score = metric.corpus_score(list(hyps), [list(refs)])
        out[f"bleu{n}"] = float(score.score)
        signatures[f"bleu{n}"] = str(metric.get_signature())
        if n == 4:
            out["precisions"] = [float(p) for p in score.precisions]
            out["bp"] = float(score.bp)
            out["sys_len"] = int(score.sys_len)
            out["ref_len"] = int(score.ref_len)
    out["bleu_signature"] = signatures
    return out


class WhitespaceTokenizer:
    """rouge-score tokenizer that splits on whitespace and keeps every character of a word.

    Lowercasing is optional because references and hypotheses are normally already normalised by
    ``hatl.text.normalise_text``; it exists so ROUGE can follow ``evaluation.bleu.lowercase``.
    """

    def __init__(self, lowercase: bool = False) -> None:
        self.lowercase = lowercase

    def tokenize(self, text: str) -> list[str]:
        return (text.lower() if self.lowercase else text).split()


def rouge_l_sentences(hyps: Sequence[str], refs: Sequence[str], lowercase: bool = False) -> list[float]:
    """Sentence ROUGE-L F1 values in [0, 1] (reference first, as rouge-score expects)."""
    _check_parallel(hyps, refs)
    from rouge_score import rouge_scorer  # imported here: it pulls in nltk, seconds per process

    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=WhitespaceTokenizer(lowercase))
    return [float(scorer.score(ref, hyp)["rougeL"].fmeasure) for hyp, ref in zip(hyps, refs)]


def rouge_l(hyps: Sequence[str], refs: Sequence[str], lowercase: bool = False) -> float:
    """Corpus ROUGE-L: mean sentence F1 x100 (0 for an empty corpus)."""
    values = rouge_l_sentences(hyps, refs, lowercase)
    return 100.0 * sum(values) / len(values) if values else 0.0


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Longest common subsequence length (used by tests to check ROUGE-L by hand)."""
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def chrf(hyps: Sequence[str], refs: Sequence[str], lowercase: bool = False) -> dict[str, Any]:
    _check_parallel(hyps, refs)
    metric = CHRF(lowercase=lowercase)
    score = metric.corpus_score(list(hyps), [list(refs)])
    return {"chrf": float(score.score), "chrf_signature": str(metric.get_signature())}


def edit_distance(hyp: Sequence[str], ref: Sequence[str]) -> int:
    """Levenshtein distance over tokens (substitutions, insertions, deletions all cost 1)."""
    prev = list(range(len(ref) + 1))
    for i, h in enumerate(hyp, start=1):
        cur = [i]
        for j, r in enumerate(ref, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (h != r)))
        prev = cur
    return prev[-1]


def wer(hyps: Sequence[str], refs: Sequence[str]) -> dict[str, float | int | None]:
    """Corpus WER x100 plus the raw counts; undefined (None) when there are no reference words but some output."""
    _check_parallel(hyps, refs)
    errors = sum(edit_distance(h.split(), r.split()) for h, r in zip(hyps, refs))
    ref_words = sum(len(r.split()) for r in refs)
    value: float | None
    if ref_words == 0:
        value = 0.0 if errors == 0 else None
    else:
        value = 100.0 * errors / ref_words
    return {"wer": value, "wer_errors": errors, "wer_ref_words": ref_words}


def _check_parallel(hyps: Sequence[str], refs: Sequence[str]) -> None:
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")


# ---------------------------------------------------------------------------------- distinct outputs
# How many distinct sentences a system emits against the distinct references (hatl.evaluate.collapse
# builds the constant-output floor on these; training logs them for its dev set every epoch).
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
