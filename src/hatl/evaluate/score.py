"""``hatl score``: BLEU-1..4, ROUGE-L, chrF and gloss WER of decoded dev/test files -> scores.json.

    hatl score --config config/config.yaml \
        --decoded RUN/decoded.dev.jsonl RUN/decoded.test.jsonl --out RUN/scores.json

The split name is taken from the file name (``decoded.<split>.jsonl``). When the files live in a run folder
(``.../runs/<dataset>/<model>/<task>/<strategy>/<fold>/seed<N>/``) the run's identity is recorded too. Each line of a
decoded file is a JSON object with at least ``id``, ``ref`` and ``hyp``; ``gloss_ref``/``gloss_hyp`` add gloss
WER and ``hyp_nolm`` adds the same metrics for the beam without LM fusion (key ``nolm``). A recognition run
(sign2gloss) writes ``ref`` and ``hyp`` null: its scores are the gloss WER alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import re
from pathlib import Path
from typing import Any

from hatl import metrics
from hatl.config import load_config
from hatl.errors import InputError
from hatl.experiment import parse_run_dir
from hatl.io import write_json
from hatl.provenance import provenance

log = logging.getLogger(__name__)

_SPLIT_RE = re.compile(r"^decoded\.([A-Za-z0-9_-]+)\.jsonl$")


def split_of(path: Path) -> str:
    match = _SPLIT_RE.match(path.name)
    if not match:
        raise InputError(path, None, "decoded file name must be decoded.<split>.jsonl")
    return match.group(1)


def read_decoded(path: str | Path) -> list[dict[str, Any]]:
    """Lines of a decoded file; a malformed line or duplicate id is an InputError naming the line."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, "decoded file does not exist")
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise InputError(path, f"line {lineno}", f"not valid JSON: {err}") from err
            if not isinstance(row, dict):
                raise InputError(path, f"line {lineno}", "a line must be a JSON object")
            # a recognition run's line has no text: its glosses must be there instead
            needed = ("id", "gloss_ref", "gloss_hyp") if row.get("hyp") is None and row.get("ref") is None else ("id", "ref", "hyp")
            for key in needed:
                if not isinstance(row.get(key), str):
                    raise InputError(path, f"line {lineno}", f"field '{key}' is missing or not a string")
            if row["id"] in seen:
                raise InputError(path, f"line {lineno} id={row['id']}", "duplicate sample id")
            seen.add(row["id"])
            rows.append(row)
    return rows


def score_rows(rows: list[dict[str, Any]], settings: metrics.BleuSettings) -> dict[str, Any]:
    """All metrics of one split (gloss WER alone for a recognition run's rows)."""
    if rows and all(r.get("hyp") is None for r in rows):
        return {"n": len(rows), "bleu_signature": None, "chrf_signature": None,
                **metrics.wer([r["gloss_hyp"] for r in rows], [r["gloss_ref"] for r in rows])}
    if any(r.get("hyp") is None for r in rows):
        raise InputError(None, "hyp", "a decoded file mixes text rows and recognition-only rows")
    hyps = [r["hyp"] for r in rows]
    refs = [r["ref"] for r in rows]
    out: dict[str, Any] = {"n": len(rows)}
    out.update(metrics.bleu_scores(hyps, refs, settings))
    out["rouge"] = metrics.rouge_l(hyps, refs, settings.lowercase)
    out.update(metrics.chrf(hyps, refs, settings.lowercase))
    if rows and all(isinstance(r.get("gloss_hyp"), str) and isinstance(r.get("gloss_ref"), str) for r in rows):
        out.update(metrics.wer([r["gloss_hyp"] for r in rows], [r["gloss_ref"] for r in rows]))
    if rows and all(isinstance(r.get("hyp_nolm"), str) for r in rows):
        nolm = [r["hyp_nolm"] for r in rows]
        bleu = metrics.bleu_scores(nolm, refs, settings)
        out["nolm"] = {f"bleu{n}": bleu[f"bleu{n}"] for n in range(1, 5)}
        out["nolm"]["rouge"] = metrics.rouge_l(nolm, refs, settings.lowercase)
    return out


def score_files(paths: list[Path], config: dict[str, Any]) -> dict[str, Any]:
    settings = metrics.BleuSettings.from_config(config.get("evaluation", {}))
    splits: dict[str, Any] = {}
    for path in paths:
        split = split_of(path)
        if split in splits:
            raise InputError(path, None, f"split '{split}' given twice")
        rows = read_decoded(path)
        splits[split] = score_rows(rows, settings)
        s = splits[split]
        if "bleu4" in s:
            log.info("%s: n=%d BLEU-4 %.2f ROUGE-L %.2f chrF %.2f%s", path, s["n"], s["bleu4"], s["rouge"], s["chrf"],
                     f" WER {s['wer']:.2f}" if s.get("wer") is not None else "")
        else:
            log.info("%s: n=%d gloss WER %.2f", path, s["n"], s["wer"])
    first = next(iter(splits.values()))
    return {
        "run": parse_run_dir(paths[0].parent),
        "splits": splits,
        "bleu_settings": dataclasses.asdict(settings),
        "bleu_signature": first["bleu_signature"],
        "chrf_signature": first["chrf_signature"],
        "rouge_variant": metrics.ROUGE_VARIANT,
        "wer_definition": metrics.WER_DEFINITION,
        "decoded_files": [str(p) for p in paths],
        "provenance": provenance(config),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="config/config.yaml", help="pipeline config (evaluation.bleu settings)")
    parser.add_argument("--decoded", nargs="+", required=True, type=Path, help="decoded.<split>.jsonl files of one run")
    parser.add_argument("--out", required=True, type=Path, help="scores.json to write")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    result = score_files(list(args.decoded), config)
    write_json(args.out, result)
    log.info("wrote %s", args.out)
    return 0
