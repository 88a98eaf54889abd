"""Dev evaluation during training: greedy translations, dev losses, BLEU-4 and gloss WER, and the release metric.

Which dev metric M(e) a run selects on (best checkpoint, early stopping, HATL release) is ``training.metric.<task>``:
BLEU-4 for the translation tasks, the CTC loss for the recogniser (sign2gloss), as docs/training.md reads Table 4.

The decoder and the metrics are the package's own (:func:`hatl.models.beam.greedy_search`,
:mod:`hatl.metrics` with the scoring stage's ``evaluation.bleu`` settings); only the search is greedy and
LM-free, which is what makes evaluating every epoch affordable.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hatl import batches as D
from hatl.experiment import BLANK, CTC_TASKS
from hatl.metrics import BleuSettings, corpus_bleu, log_fields, wer
from hatl.models.beam import SpecialIds, greedy_search, model_step_fn
from hatl.models.ctc_decode import ctc_greedy


@dataclass
class DevResult:
    """One dev pass: ``metrics`` (``bleu4``, ``ce_loss``, ``loss_total``, ``ctc_loss``, ``wer``; None where the task
    has no such value) and the outputs in dev sample order of evaluation, beside their references."""

    metrics: dict[str, float | None]
    sample_ids: list[str]
    hyps: list[str]
    refs: list[str]
    gloss_hyps: list[str]  # tasks with a CTC head (sign2gloss, sign2text_ctc): CTC greedy, else empty
    gloss_refs: list[str]


@torch.no_grad()
def evaluate_dev(model: nn.Module, split: D.SplitData, make_batch: Callable[[Sequence[int]], dict[str, Any]], *, task: str,
                 text_vocab: Any, gloss_vocab: Any, batch_size: int, max_len: int, bleu: BleuSettings,
                 autocast: Callable[[], contextlib.AbstractContextManager], device: torch.device) -> DevResult:
    """Evaluate ``model`` (left in eval mode) on the dev ``split``; ``make_batch(idxs)`` builds a batch of it."""
    model.eval()
    out_rows = DevResult({}, [], [], [], [], [])
    sums = {"ctc": 0.0, "ce": 0.0, "total": 0.0, "n": 0}
    translates = getattr(model, "has_decoder", True)  # sign2gloss: glosses only, no text to translate
    for idxs in D.eval_batches(split.lengths(), batch_size):
        batch = make_batch(idxs)
        with autocast():
            out = model(batch)
            losses = model.losses(batch, out)
            if translates:
                ids = greedy_search(model_step_fn(model, out.encoded, len(idxs)), len(idxs), max_len, SpecialIds(),
                                    min_length=0, forbid_specials=False, device=device)
        n = len(idxs)
        sums["n"] += n
        for k in ("ctc", "ce", "total"):
            sums[k] += float(losses[k].float()) * n
        out_rows.sample_ids += [split.samples[i].sample_id for i in idxs]
        if translates:
            out_rows.hyps += [text_vocab.decode(h) for h in ids]
            out_rows.refs += [split.samples[i].text for i in idxs]
        if task in CTC_TASKS:
            lengths = out.frame_mask.sum(1).tolist()
            for row, i in enumerate(idxs):
                out_rows.gloss_hyps.append(gloss_vocab.decode(ctc_greedy(out.gloss_logprobs[row, : int(lengths[row])].float(), BLANK)))
                out_rows.gloss_refs.append(split.samples[i].gloss)
    out_rows.metrics = {
        "bleu4": corpus_bleu(out_rows.hyps, out_rows.refs, bleu) if translates else None,
        "ce_loss": sums["ce"] / sums["n"] if translates else None,
        "loss_total": sums["total"] / sums["n"],
        "ctc_loss": sums["ctc"] / sums["n"] if task in CTC_TASKS else None,
        "wer": wer(out_rows.gloss_hyps, out_rows.gloss_refs)["wer"] if out_rows.gloss_hyps else None,
        # distinct_outputs / distinct_refs: a collapsed decoder (or recogniser) shows
        **(log_fields(out_rows.hyps, out_rows.refs) if translates else log_fields(out_rows.gloss_hyps, out_rows.gloss_refs)),
    }
    return out_rows


def release_value(metric: str, dev: Mapping[str, float | None]) -> float:
    """M(e) on the scale the thresholds are given in: BLEU-4 and WER as fractions, CTC loss as is."""
    if metric == "bleu4":
        return float(dev["bleu4"] or 0.0) / 100.0
    if metric == "wer":
        return float(dev["wer"] if dev["wer"] is not None else 100.0) / 100.0
    return float(dev["ctc_loss"])  # type: ignore[arg-type]


def epoch_message(line: dict[str, Any]) -> str:
    """The one log message of an epoch (the log.jsonl line ``line`` for people)."""
    parts = [f"epoch {line['epoch']}", f"loss {line['loss_total']:.4f}"]
    if line["metric"] is not None:
        if line["dev_bleu4"] is not None:
            parts.append(f"dev bleu4 {line['dev_bleu4']:.2f}")
        if line["dev_ctc_loss"] is not None:
            parts.append(f"ctc {line['dev_ctc_loss']:.4f} wer {line['dev_wer'] if line['dev_wer'] is not None else float('nan'):.2f}")
        parts.append(f"M {line['metric']:.5f} M̄ {line['metric_avg']:.5f} Δ {line['delta']:.5f}")
    parts += [f"layers {line['trainable_layers']}", f"{line['epoch_time_s']:.1f}s"]
    events = ", ".join(e["type"] + (f" L{e['layer']}" if "layer" in e else "") for e in line["events"])
    return " | ".join(parts) + (f" | {events}" if events else "")
