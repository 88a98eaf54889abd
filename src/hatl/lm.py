"""A KenLM n-gram model on the normalised training text (``hatl lm``), for shallow fusion at decoding.

The corpus is the text of one run fold's training rows (:mod:`hatl.folds`; never fold K's dev rows, which
would make the LM that fold K decodes with already know its dev sentences), normalised exactly as the text
vocabulary is (:class:`hatl.vocab.TextNormalisation`), one sentence per line, so the LM's words are the
vocabulary's tokens. How ``lmplz`` and ``build_binary`` are run, and why the LM stays over words with
sentencepiece, is in config/README.md (``lm``). The binary is loaded with the ``kenlm`` module to check it
and to report its perplexity on the fold's dev rows and on test, each separately. Both executables are
looked up on PATH and then beside the running Python (the virtualenv's bin).
"""


from __future__ import annotations

import argparse
import logging
import math
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hatl.config import dataset_config, effective_config, load_config
from hatl.datasets.manifest import read_manifest
from hatl.errors import ConfigError, HatlError, InputError
from hatl.io import atomic_path, write_json
from hatl.provenance import provenance
from hatl.folds import MAIN, FoldRows, fold_rows
from hatl.vocab import TextNormalisation

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "build KenLM's executables with `bash scripts/build_kenlm.sh .venv/bin` (scripts/setup.sh does this), "
    "or put lmplz and build_binary on PATH"
)
RESERVED = frozenset({"<s>", "</s>", "<unk>"})  # lmplz refuses these words in its input


class KenLMNotFoundError(HatlError):
    """lmplz or build_binary is not installed where hatl looks for it."""


@dataclass(frozen=True)
class LMConfig:
    order: int = 4
    memory: str = "1G"

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> LMConfig:
        lm = cfg.get("lm", {}) or {}
        return cls(order=int(lm.get("order", 4)), memory=str(lm.get("memory", "1G")))


def tool_dirs() -> list[Path]:
    """Where the executables may live besides PATH: next to the running interpreter (the venv's bin)."""
    return [Path(sys.executable).parent]


def find_tool(name: str) -> Path:
    found = shutil.which(name)
    if found:
        return Path(found)
    for folder in tool_dirs():
        candidate = folder / name
        if candidate.is_file() and candidate.stat().st_mode & 0o111:
            return candidate
    where = ", ".join(str(d) for d in tool_dirs())
    raise KenLMNotFoundError(f"KenLM's `{name}` was not found on PATH or in {where}; {INSTALL_HINT}")


def training_corpus(rows: FoldRows, norm: TextNormalisation, manifest_path: str | Path | None = None) -> list[str]:
    """Normalised, non-empty sentences of the fold's training rows (same tokens as the text vocabulary)."""
    sentences = []
    for sid, text in zip(rows.train["sample_id"], rows.train["text"]):
        sent = norm.apply(text)
        if not sent:
            raise InputError(manifest_path, str(sid), f"empty text (after normalisation) in fold {rows.fold}'s training rows")
        sentences.append(sent)
    return sentences


def _strip_reserved(sentences: Sequence[str]) -> tuple[list[str], int]:
    """Drop the words lmplz reserves (counted, so nothing disappears silently)."""
    out, n = [], 0
    for s in sentences:
        words = s.split()
        kept = [w for w in words if w not in RESERVED]
        n += len(words) - len(kept)
        out.append(" ".join(kept))
    return out, n


def held_out_text(rows: FoldRows, norm: TextNormalisation) -> dict[str, list[str]]:
    """Normalised held-out sentences by role (``dev``: the fold's dev rows, ``test``), empty roles left out.

    Both are text the LM never saw: the fold's dev rows are what its model selects on, test is reported
    beside it (a report, not a choice made on test). Empty and reserved-only sentences carry no words to score.
    """
    out = {}
    for role in ("dev", "test"):
        sents = [s for s in _strip_reserved([norm.apply(t) for t in rows.role(role)["text"]])[0] if s]
        if sents:
            out[role] = sents
    return out


def _run(cmd: list[str], what: str) -> None:
    log.info("running %s", " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise HatlError(f"{what} failed (exit {proc.returncode}):\n{tail}")


def train_arpa(sentences: Sequence[str], arpa: Path, order: int, memory: str, lmplz: Path, workdir: Path) -> None:
    corpus = workdir / "corpus.txt"
    corpus.write_text("".join(s + "\n" for s in sentences), encoding="utf-8")
    _run(
        [str(lmplz), "-o", str(order), "-S", memory, "-T", str(workdir / "lmplz_"), "--discount_fallback",
         "--text", str(corpus), "--arpa", str(arpa)],
        "lmplz",
    )


def binarise(arpa: Path, binary: Path, build_binary: Path) -> None:
    _run([str(build_binary), str(arpa), str(binary)], "build_binary")


def evaluate_lm(model_path: str | Path, sentences: Sequence[str]) -> dict[str, Any]:
    """Load with the kenlm module; corpus perplexity (per word, end-of-sentence counted) and OOV words."""
    import kenlm

    model = kenlm.Model(str(model_path))
    log10 = 0.0
    words = oov = 0
    for s in sentences:
        log10 += model.score(s, bos=True, eos=True)
        toks = s.split()
        words += len(toks) + 1  # + </s>, as kenlm's perplexity does
        oov += sum(1 for w in toks if w not in model)
    ppl = 10.0 ** (-log10 / words) if words else math.nan
    return {"order": int(model.order), "sentences": len(sentences), "words": words, "oov_words": oov, "perplexity": ppl}


def _order_in_name(path: Path) -> int | None:
    m = re.search(r"\.(\d+)gram\.", path.name)
    return int(m.group(1)) if m else None


def build_lm(
    manifest_path: str | Path,
    out_arpa: str | Path,
    out_binary: str | Path,
    cfg: dict[str, Any],
    dataset: str,
    report_path: str | Path | None = None,
    fold: str = MAIN,
) -> dict[str, Any]:
    """Train, binarise and verify the LM on ``fold``'s training rows; all outputs appear only once the binary has loaded."""
    out_arpa, out_binary = Path(out_arpa), Path(out_binary)
    lcfg = LMConfig.from_config(cfg)
    for p in (out_arpa, out_binary):
        named = _order_in_name(p)
        if named is not None and named != lcfg.order:
            raise ConfigError(f"output {p} names a {named}-gram but lm.order is {lcfg.order}")
    lmplz, build_binary = find_tool("lmplz"), find_tool("build_binary")
    ds_cfg = dataset_config(cfg, dataset)
    norm = TextNormalisation.from_dataset(ds_cfg)
    manifest = read_manifest(manifest_path)
    rows = fold_rows(manifest, fold, manifest_path)
    described = rows.description
    sentences, n_reserved = _strip_reserved(training_corpus(rows, norm, manifest_path))
    if n_reserved:
        log.warning("removed %d occurrence(s) of the reserved words <s>, </s>, <unk> from the training text", n_reserved)
    held_out = held_out_text(rows, norm)

    report_path = Path(report_path) if report_path else out_binary.with_suffix(".json")
    out_arpa.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".lm.", dir=out_arpa.parent) as work:
        with atomic_path(out_arpa) as tmp_arpa, atomic_path(out_binary) as tmp_bin:
            train_arpa(sentences, tmp_arpa, lcfg.order, lcfg.memory, lmplz, Path(work))
            binarise(tmp_arpa, tmp_bin, build_binary)
            if held_out:
                evaluation = {role: {"rows": described[role], "held_out": True, **evaluate_lm(tmp_bin, sents)}
                              for role, sents in held_out.items()}
            else:  # nothing held out: still load and score the binary, and say the figure is not a held-out one
                evaluation = {"train": {"rows": f"{described['train']} (first 100 sentences; no held-out rows, so not "
                                                "a held-out figure)", "held_out": False, **evaluate_lm(tmp_bin, sentences[:100])}}
            orders = {ev["order"] for ev in evaluation.values()}
            if orders != {lcfg.order}:
                raise HatlError(f"KenLM binary has order {sorted(orders)}, expected {lcfg.order}")
    words = sum(len(s.split()) for s in sentences)
    report = {
        "dataset": dataset,
        "fold": fold,
        "arpa": str(out_arpa),
        "binary": str(out_binary),
        "order": lcfg.order,
        "memory": lcfg.memory,
        "discount_fallback": True,
        "text_normalisation": norm.to_dict(),
        "unit": "words (also with a sentencepiece text vocabulary: fusion happens at word boundaries)",
        "training": {"rows": described["train"], "sentences": len(sentences), "words": words,
                     "reserved_words_removed": n_reserved},
        "evaluation": evaluation,
        "provenance": provenance(cfg, dataset=dataset, fold=fold),
    }
    write_json(report_path, report)
    figures = "; ".join(f"{role} ({ev['rows']}) perplexity {ev['perplexity']:.2f}, {ev['oov_words']} OOV words"
                        for role, ev in evaluation.items())
    log.info("KenLM %d-gram, fold %s, on %d sentences of %s (%d words): binary loads; %s",
             lcfg.order, fold, len(sentences), described["train"], words, figures)
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="pipeline config YAML")
    parser.add_argument("--dataset", required=True, help="dataset name (a key of datasets: in the config)")
    parser.add_argument("--manifest", required=True, help="results/{ds}/manifest.parquet")
    parser.add_argument("--out-arpa", required=True, help="results/{ds}/lm/{fold}/text.{order}gram.arpa")
    parser.add_argument("--out-binary", required=True, help="results/{ds}/lm/{fold}/text.{order}gram.bin")
    parser.add_argument("--out-report", default=None, help="JSON report (default: the binary's path with .json)")
    parser.add_argument("--fold", default=MAIN, help="run fold whose training rows are the LM corpus: 'main' "
                        "(the train split) or 'foldK' (cross-validation: trainval rows with fold != K); default main")


def run(args: argparse.Namespace) -> int:
    cfg = effective_config(load_config(args.config), args.dataset)
    build_lm(args.manifest, args.out_arpa, args.out_binary, cfg, args.dataset, args.out_report, args.fold)
    return 0
