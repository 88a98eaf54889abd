"""Which reference words a translator writes, by how often it saw them in training.

Corpus BLEU says how many n-grams match, not which words are missing. On a small corpus the usual failure is
that a translator writes only its frequent words: a reference word seen a handful of times in training is never
produced, and the frequent ones stand in for it. This module makes that visible: the reference tokens of a split
are put in bands by their count in the training text, and for each band it reports

* ``ref_tokens``: reference tokens in the band;
* ``matched``: of those, how many the hypothesis of the same sentence contains (clipped per sentence, as BLEU-1
  counts matches: a word twice in the reference and once in the hypothesis matches once);
* ``recall``: ``matched / ref_tokens``;
* ``hyp_tokens``: hypothesis tokens whose word falls in the band (all of them, matched or not): a band the
  model over-writes has ``hyp_tokens`` above ``ref_tokens``.

Words are whitespace tokens of the normalised text (what the scorer reads with ``tokenize: none``). Pure
functions on strings and counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Training-count bands: never seen, rare, uncommon, common, frequent. The upper bound None is open.
DEFAULT_BANDS: tuple[tuple[int, int | None], ...] = ((0, 0), (1, 4), (5, 19), (20, 99), (100, None))


@dataclass(frozen=True)
class BandRecall:
    low: int
    high: int | None  # inclusive; None: no upper bound
    ref_tokens: int
    matched: int
    hyp_tokens: int

    @property
    def recall(self) -> float | None:
        return self.matched / self.ref_tokens if self.ref_tokens else None

    @property
    def label(self) -> str:
        if self.high is None:
            return f"{self.low}+"
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"


def training_counts(texts: Iterable[str]) -> Counter[str]:
    """How often each whitespace word occurs in the training texts."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(text.split())
    return counts


def check_bands(bands: Sequence[tuple[int, int | None]]) -> None:
    """Bands must start at 0, follow each other without gap or overlap, and only the last may be open."""
    if not bands:
        raise ValueError("no frequency bands given")
    expected = 0
    for i, (low, high) in enumerate(bands):
        if low != expected:
            raise ValueError(f"frequency band {i} starts at {low}, expected {expected} (bands must start at 0 and be contiguous)")
        if high is None:
            if i != len(bands) - 1:
                raise ValueError(f"frequency band {i} is open-ended but is not the last band")
            return
        if high < low:
            raise ValueError(f"frequency band {i} ends at {high}, below its start {low}")
        expected = high + 1


def band_index(count: int, bands: Sequence[tuple[int, int | None]]) -> int | None:
    """The band a training count falls in; None above a closed last band."""
    for i, (low, high) in enumerate(bands):
        if count >= low and (high is None or count <= high):
            return i
    return None


def recall_by_frequency(hyps: Sequence[str], refs: Sequence[str], counts: Counter[str],
                        bands: Sequence[tuple[int, int | None]] = DEFAULT_BANDS) -> list[BandRecall]:
    """Per band of training count: reference tokens, clipped matches and hypothesis tokens (module docstring).

    Words above a closed last band are not counted anywhere.
    """
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references")
    check_bands(bands)
    ref_tokens = [0] * len(bands)
    matched = [0] * len(bands)
    hyp_tokens = [0] * len(bands)
    for hyp, ref in zip(hyps, refs):
        in_hyp = Counter(hyp.split())
        for word, n in Counter(ref.split()).items():
            if (i := band_index(counts[word], bands)) is not None:
                ref_tokens[i] += n
                matched[i] += min(n, in_hyp[word])
        for word, n in in_hyp.items():
            if (i := band_index(counts[word], bands)) is not None:
                hyp_tokens[i] += n
    return [BandRecall(low, high, ref_tokens[i], matched[i], hyp_tokens[i]) for i, (low, high) in enumerate(bands)]


def format_recall(rows: Sequence[BandRecall]) -> str:
    """One line: ``seen 1-4 times: recall 0.000 of 133 reference tokens, 0 written; ...``."""
    parts = []
    for row in rows:
        recall = "n/a" if row.recall is None else f"{row.recall:.3f}"
        parts.append(f"seen {row.label} times: recall {recall} of {row.ref_tokens} reference tokens, {row.hyp_tokens} written")
    return "; ".join(parts)
