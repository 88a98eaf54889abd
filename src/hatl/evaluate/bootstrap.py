"""Paired bootstrap resampling (Koehn 2004) between HATL and a baseline on the same test sentences.

Each resample draws sentences with replacement and scores both systems on the *same* draw. The
one-sided p-value is the share of resamples in which the baseline is at least as good as HATL,
``(1 + #{baseline >= hatl}) / (1 + n)`` (the +1 keeps p > 0 with a finite number of resamples).

BLEU is corpus-level, so it is recomputed per resample from sacrebleu's per-sentence sufficient
statistics (match and total n-gram counts, lengths), which is exact; all resamples are scored at once
with numpy (``bleu_batch``), checked against sacrebleu in the tests. ROUGE-L is a mean of
sentence scores. Under cross-validation a system is a list of folds (one model each); every fold is
resampled with the same generator and the statistic is the mean over folds, matching the mean ± sd the
table reports.

Seeds: a fold may hold several runs of the same system (one per training seed, ``training.seeds``). They are
scored on the *same* resample of that fold's sentences and the statistic is their mean, so the bootstrap
compares the seed-averaged systems the table reports (per-seed outputs, each scored on its own, then
averaged; not the sentences of all seeds pooled into one corpus). The systems need not have the same seeds:
seeds are not paired across systems, sentences are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hatl.metrics import BleuSettings, rouge_l_sentences


@dataclass
class SentenceStats:
    """Per-sentence statistics of one system on one fold's sentences."""

    bleu: np.ndarray  # (N, 2 + 2*order): sys_len, ref_len, correct_1..n, total_1..n
    rouge: np.ndarray  # (N,) sentence ROUGE-L F1 in [0, 1]


def sentence_stats(hyps: Sequence[str], refs: Sequence[str], settings: BleuSettings = BleuSettings()) -> SentenceStats:
    metric = settings.metric(4)
    # sacrebleu's own per-sentence statistics (the same its corpus_score sums), so resampled BLEU is exact.
    stats = metric._extract_corpus_statistics(list(hyps), [list(refs)])
    return SentenceStats(
        bleu=np.asarray(stats, dtype=np.int64).reshape(len(hyps), -1),
        rouge=np.asarray(rouge_l_sentences(hyps, refs, settings.lowercase), dtype=np.float64),
    )


def bleu_from_stats(summed: np.ndarray, settings: BleuSettings = BleuSettings()) -> float:
    metric = settings.metric(4)
    return float(metric._compute_score_from_stats([int(x) for x in summed]).score)


def bleu_batch(summed: np.ndarray, settings: BleuSettings = BleuSettings()) -> np.ndarray:
    """BLEU-4 for many summed statistic rows (S, 10) at once.

    Vectorised for the SLT convention (no smoothing), following sacrebleu's ``compute_bleu`` rule for rule:
    orders whose total is 0 end the sum (and with effective order are left out), any included order without
    a match gives 0, and the brevity penalty is exp(1 - ref/sys) for short output. Other smoothing methods
    go through sacrebleu one row at a time.
    """
    summed = np.atleast_2d(summed)
    if settings.smooth_method != "none":
        return np.array([bleu_from_stats(row, settings) for row in summed])
    sys_len, ref_len = summed[:, 0].astype(float), summed[:, 1].astype(float)
    order = (summed.shape[1] - 2) // 2
    correct, total = summed[:, 2:2 + order].astype(float), summed[:, 2 + order:].astype(float)
    valid = np.cumprod(total > 0, axis=1).astype(bool)  # sacrebleu stops at the first order with no n-grams
    eff = valid.sum(axis=1) if settings.effective_order else np.full(len(summed), order)
    included = np.arange(order)[None, :] < eff[:, None]
    matched = valid & (correct > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        logp = np.where(matched, np.log(np.where(matched, correct / np.where(total > 0, total, 1), 1)), 0.0)
    zero = (included & ~matched).any(axis=1) | (eff == 0) | (correct.sum(axis=1) == 0)
    mean_log = logp.sum(axis=1, where=included) / np.maximum(eff, 1)
    with np.errstate(divide="ignore", over="ignore"):
        bp = np.where(sys_len < ref_len, np.exp(1 - ref_len / np.maximum(sys_len, 1)), 1.0)
    bp = np.where(sys_len == 0, 0.0, bp)
    return np.where(zero, 0.0, 100.0 * bp * np.exp(mean_log))


FoldRuns = SentenceStats | Sequence[SentenceStats]  # one run of a fold, or one per seed


def _seed_runs(fold: FoldRuns) -> list[SentenceStats]:
    return [fold] if isinstance(fold, SentenceStats) else list(fold)


def _statistic(stats: Sequence[FoldRuns], weights: Sequence[np.ndarray], metric: str, settings: BleuSettings) -> np.ndarray:
    """Metric (mean over seeds, then over folds) for each resample; ``weights[f]`` (S, N_f) counts how often each
    sentence of fold f was drawn (the same draw for every seed of the fold)."""
    per_fold = []
    for fold, w in zip(stats, weights):
        per_seed = []
        for run in _seed_runs(fold):
            if metric == "bleu4":
                per_seed.append(bleu_batch(w @ run.bleu, settings))
            else:
                per_seed.append(100.0 * (w @ run.rouge) / max(1, len(run.rouge)))
        per_fold.append(np.mean(per_seed, axis=0))
    return np.mean(per_fold, axis=0)


def paired_bootstrap(
    hatl: Sequence[FoldRuns],
    baseline: Sequence[FoldRuns],
    metric: str = "bleu4",
    samples: int = 1000,
    seed: int = 1234,
    settings: BleuSettings = BleuSettings(),
) -> dict[str, float | int]:
    """p-value that HATL beats the baseline on ``metric`` ('bleu4' or 'rouge'); folds are paired by position.

    Each fold entry is one run's statistics or a sequence of them (one per training seed, in any number on
    either side): see the module docstring.
    """
    if metric not in ("bleu4", "rouge"):
        raise ValueError(f"unknown bootstrap metric {metric!r}")
    if len(hatl) != len(baseline) or not hatl:
        raise ValueError(f"paired bootstrap needs the same non-zero number of folds ({len(hatl)} vs {len(baseline)})")
    sizes = []
    for a, b in zip(hatl, baseline):
        runs = _seed_runs(a) + _seed_runs(b)
        if len(_seed_runs(a)) == 0 or len(_seed_runs(b)) == 0:
            raise ValueError("paired bootstrap needs at least one run (seed) of each system in every fold")
        lengths = {len(r.rouge) for r in runs}
        if len(lengths) != 1 or 0 in lengths:
            raise ValueError(f"paired bootstrap needs the same, non-empty sentences in every run of a fold ({sorted(lengths)})")
        sizes.append(lengths.pop())
    rng = np.random.default_rng(seed)
    ones = [np.ones((1, n), dtype=np.int64) for n in sizes]
    observed_hatl = float(_statistic(hatl, ones, metric, settings)[0])
    observed_base = float(_statistic(baseline, ones, metric, settings)[0])
    # a resample of N sentences with replacement = multinomial counts over the N sentences
    weights = [rng.multinomial(n, np.full(n, 1.0 / n), size=samples) for n in sizes]
    diff = _statistic(hatl, weights, metric, settings) - _statistic(baseline, weights, metric, settings)
    not_better = int((diff <= 0).sum())
    return {
        "metric": metric,
        "hatl": observed_hatl,
        "baseline": observed_base,
        "delta": observed_hatl - observed_base,
        "p_value": (1 + not_better) / (1 + samples),
        "samples": samples,
        "seed": seed,
    }
