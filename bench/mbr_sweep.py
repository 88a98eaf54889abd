"""Minimum Bayes risk against the beam's best, on decoded files that kept their candidates (issue 17).

    .venv/bin/python bench/mbr_sweep.py RUN/decoded.dev.jsonl [RUN2/decoded.dev.jsonl ...]
        [--utilities bleu chrf] [--weights score logprob] [--temperatures 0.01 0.03 0.1 0.3 1] [--config CFG]

Each file must come from ``hatl decode`` with ``decoding.mbr`` set: its rows hold ``nbest``, the beam's finished
hypotheses with their scores, so every MBR setting is chosen again from the same candidates
(``hatl.evaluate.mbr.reselect``) without decoding again. For each file and setting it prints corpus BLEU-1..4,
ROUGE-L, the brevity penalty and the distinct outputs, beside the beam's best (``beam``) and the floor: the
constant output (the reference of the file's own split with the best BLEU-4 when repeated, i.e. the floor chosen on
that split, an upper bound of the constant floor a dev choice would give on another split). With several files
(seeds) it prints the mean of each setting. Choose settings on dev files; read test files only afterwards.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from hatl.config import load_config
from hatl.evaluate.collapse import constant_floor
from hatl.evaluate.mbr import UTILITIES, WEIGHTS, MBRConfig, reselect
from hatl.evaluate.score import read_decoded
from hatl.metrics import BleuSettings, bleu_scores, distinct_outputs, rouge_l

ROOT = Path(__file__).resolve().parents[1]


def scores(hyps: list[str], refs: list[str], bleu: BleuSettings) -> dict[str, float | str]:
    b = bleu_scores(hyps, refs, bleu)
    out: dict[str, float | str] = {f"bleu{n}": float(b[f"bleu{n}"]) for n in range(1, 5)}
    out["rouge"] = float(rouge_l(hyps, refs, bleu.lowercase))
    out["bp"] = float(b["bp"])
    out["distinct"] = distinct_outputs(hyps, refs).text()
    return out


def line(name: str, s: dict[str, float | str]) -> str:
    return (f"  {name:<28} BLEU-1..4 {s['bleu1']:6.2f} {s['bleu2']:6.2f} {s['bleu3']:6.2f} {s['bleu4']:6.2f}"
            f"  ROUGE-L {s['rouge']:6.2f}  BP {s['bp']:.3f}  distinct {s['distinct']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("decoded", type=Path, nargs="+", help="decoded.<split>.jsonl files written with decoding.mbr set")
    parser.add_argument("--utilities", nargs="+", choices=UTILITIES, default=list(UTILITIES))
    parser.add_argument("--weights", nargs="+", choices=WEIGHTS, default=list(WEIGHTS))
    parser.add_argument("--temperatures", nargs="+", type=float, default=[0.01, 0.03, 0.1, 0.3, 1.0])
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "examples" / "phoenix14t_gloss2text.yaml",
                        help="its evaluation.bleu is the metric (and the MBR utility's tokenizer)")
    args = parser.parse_args(argv)
    bleu = BleuSettings.from_config(load_config(args.config)["evaluation"])
    settings: list[tuple[str, MBRConfig | None]] = [("beam", None)] + [
        (f"mbr {u} {w} T={t:g}", MBRConfig(u, t, w)) for u in args.utilities for w in args.weights for t in args.temperatures]
    per_setting: dict[str, list[float]] = {name: [] for name, _ in settings}
    for path in args.decoded:
        rows = read_decoded(path)
        refs = [r["ref"] for r in rows]
        floor = constant_floor(refs, {"this": refs}, bleu)
        print(f"{path} ({len(rows)} sentences, {len(set(refs))} distinct references)")
        print(f"  {'floor (constant)':<28} BLEU-4 {floor.scores['this']['bleu4']:6.2f}  ROUGE-L "
              f"{floor.scores['this']['rouge']:6.2f}  distinct 1/{len(set(refs))}")
        for name, cfg in settings:
            start = time.perf_counter()
            try:
                hyps = reselect(rows, cfg, bleu.tokenize)
            except ValueError as err:
                print(f"{path}: {err}", file=sys.stderr)
                return 2
            s = scores(hyps, refs, bleu)
            per_setting[name].append(float(s["bleu4"]))
            print(line(name, s) + f"  ({time.perf_counter() - start:.1f} s)")
    if len(args.decoded) > 1:
        print(f"mean BLEU-4 over {len(args.decoded)} files (sd):")
        for name, values in per_setting.items():
            print(f"  {name:<28} {statistics.mean(values):6.2f} ({statistics.stdev(values):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
