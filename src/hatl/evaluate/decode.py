"""``hatl decode``: beam-search a trained run on its dev and test splits.

    hatl decode --config config/config.yaml --run-dir RUN --data-dir results/DS/normalised \
        --vocab-dir results/DS/vocab/FOLD --lm results/DS/lm/FOLD/text.4gram.bin --out-dir RUN
    hatl decode --config CFG --run-dir RUN --manifest results/DS/manifest.parquet \
        --vocab-dir results/DS/vocab/FOLD --lm results/DS/lm/FOLD/text.4gram.bin --out-dir RUN      (gloss2text only)

writes ``decoded.dev.jsonl`` and ``decoded.test.jsonl`` (one line per sample: ``id``, ``ref`` (normalised
reference text), ``hyp`` (beam with KenLM fusion), ``hyp_nolm`` (the same beam without fusion, so the effect
of the LM is measurable), ``gloss_ref`` and ``gloss_hyp`` (CTC decoding; sign2gloss2text only, else null)),
plus ``decoded.summary.json`` (settings, counts, skipped samples with reasons, provenance).

The model is rebuilt from ``RUN/best.pt`` (``hatl.models.trained.load_trained``); dev/test come from the same
loader training uses (``hatl.batches``), so references are normalised exactly as the training targets.
Gloss2Text needs no keypoints: with ``--manifest`` (instead of ``--data-dir``) the gloss inputs and the references
are read from the dataset manifest, exactly as ``hatl train --manifest`` reads them (annotation-only datasets such
as PHOENIX14T without video have no normalised keypoints at all). For gloss2text, ``gloss_ref`` holds the
normalised input gloss sequence (there is no gloss hypothesis, so ``gloss_hyp`` stays null and no WER is scored).
``--lm`` may be omitted (or ``decoding.lm_weight: 0``): then ``hyp`` equals ``hyp_nolm``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from hatl.config import effective_config, load_config
from hatl.errors import InputError
from hatl.experiment import BLANK, GLOSS_TASKS
from hatl.evaluate.lm_fusion import WordLM, load_kenlm
from hatl.io import atomic_path, write_json
from hatl.models.beam import BeamConfig, SpecialIds, beam_search, model_step_fn
from hatl.models.ctc_decode import CTCConfig, ctc_decode_batch
from hatl.provenance import provenance

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class DecodeSettings:
    """The ``decoding`` section of a config filled with the schema's defaults."""

    beam: BeamConfig
    ctc: CTCConfig
    batch_size: int

    @classmethod
    def from_config(cls, decoding: dict[str, Any], blank: int = BLANK) -> DecodeSettings:
        return cls(BeamConfig.from_config(decoding), CTCConfig.from_config(decoding, blank), int(decoding["batch_size"]))


def _progress(iterable: Sequence[Any], desc: str):
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is a dependency, but decoding must not fail without a progress bar
        return iterable
    return tqdm(iterable, desc=desc, unit="batch", disable=not sys.stderr.isatty())


@torch.no_grad()
def decode_samples(
    model: Any,
    samples: Sequence[Any],
    task: str,
    text_vocab: Any,
    gloss_vocab: Any | None,
    settings: DecodeSettings,
    lm: WordLM | None = None,
    desc: str = "decode",
) -> list[dict[str, Any]]:
    """Decoded rows in the samples' order. ``samples`` are ``hatl.batches.Sample`` objects."""
    from hatl.batches import collate, eval_batches

    special = SpecialIds(pad=text_vocab.pad, bos=text_vocab.bos, eos=text_vocab.eos)
    plain_cfg = dataclasses.replace(settings.beam, lm_weight=0.0)
    fuse = lm is not None and settings.beam.lm_weight > 0
    rows: dict[int, dict[str, Any]] = {}
    # sort by frames, or by gloss length for text-only samples (n_frames 0): less padding in either case
    batches = eval_batches([s.n_frames or len(s.gloss_ids) for s in samples], settings.batch_size)
    for idxs in _progress(batches, desc):
        batch = collate([samples[i] for i in idxs])
        encoded = model.encode(batch)
        step = model_step_fn(model, encoded, len(idxs))
        plain = beam_search(step, len(idxs), plain_cfg, special)
        fused = beam_search(step, len(idxs), settings.beam, special, lm=lm) if fuse else plain
        glosses: list[str | None] = [None] * len(idxs)
        if task == "sign2gloss2text" and getattr(encoded, "gloss_logprobs", None) is not None and gloss_vocab is not None:
            ids = ctc_decode_batch(encoded.gloss_logprobs, encoded.memory_mask.sum(1).tolist(), settings.ctc)
            glosses = [gloss_vocab.decode(g) for g in ids]
        for j, i in enumerate(idxs):
            sample = samples[i]
            rows[i] = {
                "id": sample.sample_id,
                "ref": sample.text,
                "hyp": text_vocab.decode(fused[j].tokens),
                "hyp_nolm": text_vocab.decode(plain[j].tokens),
                "gloss_ref": sample.gloss if task in GLOSS_TASKS else None,
                "gloss_hyp": glosses[j],
                "score": fused[j].score,
            }
    return [rows[i] for i in range(len(samples))]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="pipeline config (decoding section)")
    parser.add_argument("--run-dir", required=True, type=Path, help="finished run folder with best.pt")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data-dir", type=Path, help="results/<ds>/normalised (keypoint tasks, and gloss2text trained on it)")
    source.add_argument("--manifest", type=Path,
                        help="results/<ds>/manifest.parquet: gloss inputs and references for gloss2text without keypoints")
    parser.add_argument("--vocab-dir", required=True, type=Path, help="results/<ds>/vocab/<fold> (gloss.json, text.json of the run's fold)")
    parser.add_argument("--lm", type=Path, default=None, help="KenLM model (ARPA or binary) for shallow fusion")
    parser.add_argument("--out-dir", required=True, type=Path, help="where decoded.{dev,test}.jsonl go (normally the run folder)")
    parser.add_argument("--splits", nargs="+", default=["dev", "test"], choices=["dev", "test"])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def split_sources_for(args: argparse.Namespace, task: str | None, fold: str) -> dict[str, Any]:
    """dev/test sources: normalised keypoints (``--data-dir``) or, for gloss2text only, the manifest.

    A sign task cannot be decoded from the manifest (it holds no keypoints), so that combination is refused
    by name instead of failing later inside the model.
    """
    from hatl import batches as D

    if getattr(args, "manifest", None) is not None:
        if task != "gloss2text":
            raise InputError(args.manifest, f"run task {task}",
                             "--manifest carries no keypoints: only gloss2text runs can be decoded from it (use --data-dir)")
        if not Path(args.manifest).is_file():
            raise InputError(args.manifest, None, "manifest does not exist")
        return D.manifest_sources(args.manifest, fold)
    return D.split_sources(args.data_dir, fold)


def run(args: argparse.Namespace) -> int:
    from hatl import batches as D
    from hatl.models.trained import load_trained

    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_config(args.config)
    model, blob = load_trained(args.run_dir / "best.pt")
    identity = blob.get("run") or {}
    dataset, task, fold = identity.get("dataset"), identity.get("task"), identity.get("fold", "main")
    if dataset not in config.get("datasets", {}):
        raise InputError(args.run_dir / "best.pt", "run.dataset", f"dataset {dataset!r} is not in {args.config}")
    eff = effective_config(config, dataset)
    gloss_vocab, text_vocab = D.load_vocabularies(args.vocab_dir, fold)
    settings = DecodeSettings.from_config(eff["decoding"], blank=gloss_vocab.blank or BLANK)
    model_limit = getattr(getattr(model, "cfg", None), "max_text_length", None)
    if model_limit is not None and settings.beam.max_length > model_limit - 2:
        # the decoder's input (BOS + tokens) must stay within what the model accepts
        log.warning("decoding.max_length %d exceeds model.max_text_length %d - 2: using %d",
                    settings.beam.max_length, model_limit, model_limit - 2)
        settings = dataclasses.replace(settings, beam=dataclasses.replace(settings.beam, max_length=model_limit - 2))
    lm = None
    if args.lm is not None and settings.beam.lm_weight > 0:
        lm = WordLM(load_kenlm(args.lm), text_vocab.tokens, special_ids=(text_vocab.pad, text_vocab.bos, text_vocab.eos),
                    unk_id=text_vocab.unk, subword=text_vocab.tokenizer == "sentencepiece")
    elif settings.beam.lm_weight > 0:
        log.warning("no --lm given: decoding without LM fusion although decoding.lm_weight=%s", settings.beam.lm_weight)
    sources = split_sources_for(args, task, fold)
    summary: dict[str, Any] = {"run": identity, "inputs": {"data_dir": str(args.data_dir) if args.data_dir else None,
                                                          "manifest": str(args.manifest) if args.manifest else None},
                               "settings": {"beam": dataclasses.asdict(settings.beam),
                               "ctc": dataclasses.asdict(settings.ctc), "batch_size": settings.batch_size},
                               "lm": str(args.lm) if lm is not None else None, "splits": {}}
    outputs: dict[str, list[dict[str, Any]]] = {}
    for split in args.splits:
        data = D.load_split(sources[split], gloss_vocab, text_vocab, **D.split_options(eff["datasets"][dataset], task))
        start = time.perf_counter()
        outputs[split] = decode_samples(model, data.samples, task, text_vocab, gloss_vocab, settings, lm, desc=f"decode {split}")
        seconds = time.perf_counter() - start
        summary["splits"][split] = {"decoded": len(outputs[split]), "skipped": data.skipped, "seconds": round(seconds, 3),
                                    "sentences_per_s": round(len(outputs[split]) / max(seconds, 1e-9), 3)}
        log.info("%s: decoded %d sentence(s) in %.1f s (%d skipped)", split, len(outputs[split]), seconds, len(data.skipped))
    for split, rows in outputs.items():  # write only once every split decoded: no partial output set
        write_jsonl(args.out_dir / f"decoded.{split}.jsonl", rows)
    summary["provenance"] = provenance(eff, run=identity)
    write_json(args.out_dir / "decoded.summary.json", summary)
    return 0
