"""Beam-search throughput (sentences per second) with and without KenLM shallow fusion.

A randomly initialised SLTModel translator (the config's model section; Table 4 sizes by default) decodes
random encoder memories; a KenLM 4-gram is trained with ``lmplz`` on PHOENIX-2014-T training text when
../shared/data is present (else on a small synthetic corpus). A random model's choice of EOS is arbitrary
(and the LM would then end most sentences at once), so EOS is blocked until ``--length`` tokens: every
configuration decodes sentences of exactly that length, which makes the rates comparable. Wall-clock
rates depend on machine load; CPU seconds per sentence (process time) are reported beside them.

    .venv/bin/python bench/beam_bench.py [--batch 16] [--sentences 64] [--length 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from hatl.config import REPO_ROOT, load_config
from hatl.models.beam import BeamConfig, beam_search, model_step_fn
from hatl.evaluate.lm_fusion import WordLM, load_kenlm
from hatl.text import normalise_text

PHOENIX_TRAIN = REPO_ROOT.parent / "shared" / "data" / "phoenix14t" / "manual" / "PHOENIX-2014-T.train.corpus.csv"


def corpus() -> tuple[list[str], str]:
    if PHOENIX_TRAIN.exists():
        with open(PHOENIX_TRAIN, encoding="utf-8", newline="") as fh:
            rows = csv.DictReader(fh, delimiter="|")
            return [normalise_text(r["translation"]) for r in rows], "PHOENIX-2014-T train translations"
    words = "morgen regen sonne wind norden süden osten westen nacht tag wolken schnee kalt warm".split()
    gen = torch.Generator().manual_seed(0)
    sents = [" ".join(words[int(i)] for i in torch.randint(len(words), (8,), generator=gen)) for _ in range(2000)]
    return sents, "synthetic corpus"


def build_lm(sentences: list[str], workdir: Path) -> Path:
    lmplz = Path(sys.executable).with_name("lmplz")
    lmplz = str(lmplz) if lmplz.exists() else shutil.which("lmplz")
    if lmplz is None:
        raise SystemExit("lmplz not found (build KenLM's binaries into the venv)")
    arpa = workdir / "bench.4gram.arpa"
    with open(arpa, "wb") as out:
        subprocess.run([lmplz, "-o", "4", "-S", "500M", "--discount_fallback"], input="\n".join(sentences).encode(),
                       stdout=out, stderr=subprocess.DEVNULL, check=True)
    return arpa


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--sentences", type=int, default=64)
    parser.add_argument("--length", type=int, default=20, help="output tokens per sentence (PHOENIX14T mean is ~13)")
    parser.add_argument("--frames", type=int, default=50, help="encoder positions per sentence")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--config", default=str(REPO_ROOT / "config" / "config.yaml"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = load_config(args.config)

    from hatl.models.slt import SLTModel

    sentences, source = corpus()
    itos = ["<pad>", "<s>", "</s>", "<unk>"] + sorted({w for s in sentences for w in s.split()})
    model = SLTModel("gloss2text", "transformer", None, gloss_vocab_size=8, text_vocab_size=len(itos),
                     cfg=config.get("model", {})).eval()
    hidden = model.hidden
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        lm = WordLM(load_kenlm(build_lm(sentences, Path(tmp))), itos)
        lm_build = time.perf_counter() - t0
    print(f"LM: 4-gram on {len(sentences)} sentences ({source}), built+loaded in {lm_build:.1f} s; vocab {len(itos)}")
    print(f"model: random SLTModel transformer, hidden {hidden}, decoder layers {model.cfg.transformer.decoder_layers}; "
          f"threads {args.threads}; batch {args.batch}; {args.length} output tokens; {args.frames} encoder positions")
    base = config["decoding"]
    # the same runs with a lookup-table "model" (log-probs of the next token given the last one): what remains
    # is the cost of the search and the LM fusion themselves
    gen = torch.Generator().manual_seed(1)
    table = torch.log_softmax(torch.randn(len(itos), len(itos), generator=gen), dim=-1)
    models = [("lookup table (search cost only)", lambda enc, b: (lambda rows, prefix: table[prefix[:, -1]])),
              (f"SLTModel transformer (hidden {hidden})", lambda enc, b: model_step_fn(model, enc, b))]
    for name, make_step in models:
        print(f"-- {name}")
        run_configs(make_step, base, args, hidden, lm)


def run_configs(make_step, base, args, hidden: int, lm: WordLM) -> None:
    from hatl.models.slt import Encoded

    for width in (1, base["beam_width"]):
        for weight in (0.0, base["lm_weight"]):
            cfg = BeamConfig(beam_width=width, max_length=args.length, length_penalty=base["length_penalty"],
                             lm_weight=weight, lm_candidates=base["lm_candidates"])
            done, lengths = 0, []
            wall, cpu = time.perf_counter(), time.process_time()
            while done < args.sentences:
                b = min(args.batch, args.sentences - done)
                enc = Encoded(torch.randn(b, args.frames, hidden), torch.ones(b, args.frames, dtype=torch.bool))
                hyps = beam_search(fixed_length(make_step(enc, b), args.length), b, cfg,
                                   lm=lm if weight > 0 else None)
                lengths += [len(h.tokens) for h in hyps]
                done += b
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(f"beam {width:2d}  lm_weight {weight:.1f}: {done / wall:7.2f} sentences/s wall, "
                  f"{cpu / done * 1000:7.1f} ms CPU per sentence ({done} sentences of {sum(lengths) / len(lengths):.0f} tokens)")


def fixed_length(step, length: int, eos: int = 2):
    """Block EOS before ``length`` tokens (see the module docstring)."""

    def wrapped(rows: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        out = step(rows, prefix)
        if prefix.shape[1] <= length:
            out = out.clone()
            out[:, eos] = -float("inf")
        return out

    return wrapped

if __name__ == "__main__":
    with torch.no_grad():
        main()
