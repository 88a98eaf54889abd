"""``hatl decode``: beam-search a trained run on its dev and test splits, or a Sign2Gloss2Text cascade of two runs.

    hatl decode --config config/config.yaml --run-dir RUN --data-dir results/DS/normalised \
        --vocab-dir results/DS/vocab/FOLD --lm results/DS/lm/FOLD/text.4gram.bin --out-dir RUN
    hatl decode --config CFG --run-dir RUN --manifest results/DS/manifest.parquet \
        --vocab-dir results/DS/vocab/FOLD --lm results/DS/lm/FOLD/text.4gram.bin --out-dir RUN      (gloss2text only)
    hatl decode --config CFG --run-dir SIGN2GLOSS_RUN --translator-run GLOSS2TEXT_RUN --data-dir results/DS/normalised \
        --vocab-dir results/DS/vocab/FOLD --lm results/DS/lm/FOLD/text.4gram.bin --out-dir CASCADE_RUN   (Sign2Gloss2Text)

writes ``decoded.dev.jsonl`` and ``decoded.test.jsonl`` (one line per sample: ``id``, ``ref`` (normalised
reference text), ``hyp`` (beam with KenLM fusion), ``hyp_nolm`` (the same beam without fusion, so the effect
of the LM is measurable), ``gloss_ref`` and ``gloss_hyp`` (CTC decoding of the runs with a CTC head, else null)),
plus ``decoded.summary.json`` (settings, counts, skipped samples with reasons, provenance).
With ``decoding.mbr`` set, ``hyp`` and ``hyp_nolm`` are each chosen by minimum Bayes risk among their beam's
finished hypotheses (``hatl.evaluate.mbr``) instead of being the beam's best; the rows then also carry
``hyp_beam`` (the beam's best for ``hyp``, what it would have been without MBR) and ``nbest`` (``[sentence,
beam score, model log-prob]`` of ``hyp``'s beam, best first), so MBR settings can be compared without decoding
again.

Sign2Gloss2Text is a cascade, as the paper (section 1: it "relies on gloss annotations during translation")
and the released ADAT pipeline have it: the sign2gloss run recognises the glosses (CTC with Table 4's blank
bias and temperature, prefix beam or greedy per ``decoding.ctc.method``), and the gloss2text run of the same
dataset, translator and fold (trained on the ground-truth glosses of the same training split) translates the
recognised glosses with the text beam and KenLM fusion. A sample whose recognition is empty gets the empty
translation (counted in the summary as ``empty_recognitions``). A sign2gloss run decoded alone writes
``hyp`` / ``ref`` null: ``hatl score`` then reports gloss WER only.

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
from hatl.experiment import BLANK, BOS, CASCADES, CTC_TASKS, EOS, GLOSS_TASKS, PAD
from hatl.evaluate.lm_fusion import WordLM, load_kenlm
from hatl.evaluate.mbr import MBRConfig, Utility, choose, sentence_utility
from hatl.io import atomic_path, write_json
from hatl.models.beam import BeamConfig, Hypothesis, SpecialIds, beam_search_nbest, model_step_fn
from hatl.models.ctc_decode import CTCConfig, ctc_decode_batch
from hatl.provenance import provenance

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class DecodeSettings:
    """The ``decoding`` section of a config filled with the schema's defaults."""

    beam: BeamConfig
    ctc: CTCConfig
    batch_size: int
    mbr: MBRConfig | None = None
    mbr_tokenize: str = "none"  # sacrebleu tokenizer of the MBR utility: the evaluation's (evaluation.bleu.tokenize)

    @classmethod
    def from_config(cls, decoding: dict[str, Any], blank: int = BLANK, bleu_tokenize: str = "none") -> DecodeSettings:
        return cls(BeamConfig.from_config(decoding), CTCConfig.from_config(decoding, blank), int(decoding["batch_size"]),
                   MBRConfig.from_config(decoding.get("mbr")), bleu_tokenize)


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
    from hatl.batches import collate

    special = SpecialIds(pad=text_vocab.pad, bos=text_vocab.bos, eos=text_vocab.eos)
    plain_cfg = dataclasses.replace(settings.beam, lm_weight=0.0)
    fuse = lm is not None and settings.beam.lm_weight > 0
    translates = getattr(model, "has_decoder", True)  # sign2gloss: glosses only
    mbr = settings.mbr
    utility = sentence_utility(mbr.utility, settings.mbr_tokenize) if mbr is not None else None
    rows: dict[int, dict[str, Any]] = {}
    for idxs in _progress(_batches(samples, settings.batch_size), desc):
        batch = collate([samples[i] for i in idxs])
        encoded = model.encode(batch)
        if translates:
            step = model_step_fn(model, encoded, len(idxs))
            plain_lists = beam_search_nbest(step, len(idxs), plain_cfg, special)
            fused_lists = beam_search_nbest(step, len(idxs), settings.beam, special, lm=lm) if fuse else plain_lists
            plain = [_choose(hyps, text_vocab, mbr, utility) for hyps in plain_lists]
            fused = [_choose(hyps, text_vocab, mbr, utility) for hyps in fused_lists] if fuse else plain
        glosses: list[str | None] = [None] * len(idxs)
        if task in CTC_TASKS and getattr(encoded, "gloss_logprobs", None) is not None and gloss_vocab is not None:
            glosses = [gloss_vocab.decode(g) for g in _ctc_ids(encoded, settings)]
        for j, i in enumerate(idxs):
            sample = samples[i]
            rows[i] = {
                "id": sample.sample_id,
                "ref": sample.text if translates else None,
                "hyp": fused[j][0] if translates else None,
                "hyp_nolm": plain[j][0] if translates else None,
                "gloss_ref": sample.gloss if task in GLOSS_TASKS else None,
                "gloss_hyp": glosses[j],
                "score": fused_lists[j][0].score if translates else None,
            }
            if translates and mbr is not None:
                rows[i]["hyp_beam"] = fused[j][1][0][0]
                rows[i]["nbest"] = fused[j][1]
    return [rows[i] for i in range(len(samples))]


def _choose(hyps: list[Hypothesis], text_vocab: Any, mbr: MBRConfig | None,
            utility: Utility | None) -> tuple[str, list[tuple[str, float, float]]]:
    """The output sentence of one sample's finished hypotheses (best first), and with MBR the candidate list it
    came from as ``(sentence, beam score, model log-prob)``. Without MBR only the beam's best is detokenised (the
    list stays empty): the other hypotheses are not needed."""
    if mbr is None:
        return text_vocab.decode(hyps[0].tokens), []
    nbest = [(text_vocab.decode(h.tokens), h.score, h.model_logprob) for h in hyps]
    return choose(nbest, mbr, utility), nbest


def _batches(samples: Sequence[Any], batch_size: int) -> list[list[int]]:
    # sort by frames, or by gloss length for text-only samples (n_frames 0): less padding in either case
    from hatl.batches import eval_batches

    return eval_batches([s.n_frames or len(s.gloss_ids) for s in samples], batch_size)


def _ctc_ids(encoded: Any, settings: DecodeSettings) -> list[list[int]]:
    """CTC-decoded gloss ids of a batch (Table 4's blank bias and temperature, greedy or prefix beam)."""
    return ctc_decode_batch(encoded.gloss_logprobs, encoded.memory_mask.sum(1).tolist(), settings.ctc)


@torch.no_grad()
def recognise_glosses(recogniser: Any, samples: Sequence[Any], settings: DecodeSettings,
                      desc: str = "recognise") -> list[list[int]]:
    """The first stage of the cascade: CTC-decoded gloss ids per sample, in the samples' order (specials
    other than UNK removed: what the translator's gloss embedding reads, as a ground-truth gloss sequence)."""
    from hatl.batches import collate

    dropped = {PAD, BOS, EOS, settings.ctc.blank}
    out: dict[int, list[int]] = {}
    for idxs in _progress(_batches(samples, settings.batch_size), desc):
        ids = _ctc_ids(recogniser.encode(collate([samples[i] for i in idxs])), settings)
        for j, i in enumerate(idxs):
            out[i] = [int(g) for g in ids[j] if int(g) not in dropped]
    return [out[i] for i in range(len(samples))]


def gloss_inputs(samples: Sequence[Any], recognised: Sequence[Sequence[int]], gloss_vocab: Any) -> list[Any]:
    """Text-only samples (as the gloss2text loader builds them) whose input glosses are the recognised ones;
    reference text and reference glosses stay the sample's own."""
    import numpy as np

    from hatl.batches import Sample

    return [Sample(s.sample_id, np.zeros((0, 1, 3), np.float32), np.asarray(ids, dtype=np.int64), s.text_ids,
                   gloss_vocab.decode(ids), s.text) for s, ids in zip(samples, recognised)]


@torch.no_grad()
def decode_cascade(recogniser: Any, translator: Any, samples: Sequence[Any], text_vocab: Any, gloss_vocab: Any,
                   settings: DecodeSettings, lm: WordLM | None = None, desc: str = "cascade",
                   recognised: Sequence[Sequence[int]] | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Sign2Gloss2Text rows: recognise glosses with ``recogniser`` (a sign2gloss model), translate them with
    ``translator`` (a gloss2text model). ``recognised`` replaces the first stage (tests, ablations).

    Returns the rows (the fields of :func:`decode_samples`; ``gloss_hyp`` is what the translator read) and the
    ids of samples whose recognition was empty: they get the empty translation (and are scored as such).
    """
    if recognised is None:
        recognised = recognise_glosses(recogniser, samples, settings, desc=f"{desc}: recognise")
    inputs = gloss_inputs(samples, recognised, gloss_vocab)
    keep = [i for i, ids in enumerate(recognised) if len(ids) > 0]
    translated = decode_samples(translator, [inputs[i] for i in keep], "gloss2text", text_vocab, gloss_vocab, settings,
                                lm, desc=f"{desc}: translate") if keep else []
    by_index = dict(zip(keep, translated))
    rows, empty = [], []
    for i, sample in enumerate(samples):
        row = by_index.get(i)
        if row is None:
            empty.append(sample.sample_id)
            row = {"id": sample.sample_id, "ref": sample.text, "hyp": "", "hyp_nolm": "", "score": None}
            if settings.mbr is not None:
                row.update(hyp_beam="", nbest=[])
        rows.append({**row, "gloss_ref": sample.gloss, "gloss_hyp": inputs[i].gloss})
    return rows, empty


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="pipeline config (decoding section)")
    parser.add_argument("--run-dir", required=True, type=Path, help="finished run folder with best.pt")
    parser.add_argument("--translator-run", type=Path, default=None,
                        help="Sign2Gloss2Text: the gloss2text run (best.pt) that translates the glosses --run-dir (a "
                             "sign2gloss run) recognises; same dataset, translator and fold")
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


def load_cascade(run_dir: Path, translator_run: Path) -> tuple[Any, Any, dict[str, Any]]:
    """(recogniser, translator, identity of the cascade): a sign2gloss and a gloss2text run of the same dataset,
    translator and fold, refused by name otherwise."""
    from hatl.models.trained import load_trained

    recogniser, rblob = load_trained(run_dir / "best.pt")
    translator, tblob = load_trained(translator_run / "best.pt")
    rid, tid = rblob.get("run") or {}, tblob.get("run") or {}
    recognition, translation = CASCADES["sign2gloss2text"]
    if rid.get("task") != recognition:
        raise InputError(run_dir / "best.pt", "run.task", f"the cascade's first stage must be a {recognition} run, not {rid.get('task')!r}")
    if tid.get("task") != translation:
        raise InputError(translator_run / "best.pt", "run.task",
                         f"the cascade's second stage must be a {translation} run, not {tid.get('task')!r}")
    for key in ("dataset", "model", "fold"):
        if rid.get(key) != tid.get(key):
            raise InputError(translator_run / "best.pt", f"run.{key}",
                             f"{tid.get(key)!r} differs from the recognition run's {rid.get(key)!r} ({run_dir}): "
                             "the cascade pairs runs of one dataset, translator and fold")
    if rblob["model_args"]["gloss_vocab_size"] != tblob["model_args"]["gloss_vocab_size"]:
        raise InputError(translator_run / "best.pt", "model_args.gloss_vocab_size",
                         "gloss vocabulary differs from the recognition run's: the runs were built on other vocabularies")
    identity = {**rid, "task": "sign2gloss2text", "stages": {"recognition": str(run_dir), "translation": str(translator_run)}}
    return recogniser, translator, identity


def run(args: argparse.Namespace) -> int:
    from hatl import batches as D
    from hatl.models.trained import load_trained

    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_config(args.config)
    translator = None
    if args.translator_run is not None:
        model, translator, identity = load_cascade(args.run_dir, args.translator_run)
    else:
        model, blob = load_trained(args.run_dir / "best.pt")
        identity = blob.get("run") or {}
    dataset, task, fold = identity.get("dataset"), identity.get("task"), identity.get("fold", "main")
    if dataset not in config.get("datasets", {}):
        raise InputError(args.run_dir / "best.pt", "run.dataset", f"dataset {dataset!r} is not in {args.config}")
    eff = effective_config(config, dataset)
    gloss_vocab, text_vocab = D.load_vocabularies(args.vocab_dir, fold)
    settings = DecodeSettings.from_config(eff["decoding"], blank=gloss_vocab.blank or BLANK,
                                          bleu_tokenize=eff["evaluation"]["bleu"]["tokenize"])
    text_model = translator if translator is not None else model
    model_limit = getattr(getattr(text_model, "cfg", None), "max_text_length", None)
    if model_limit is not None and settings.beam.max_length > model_limit - 2:
        # the decoder's input (BOS + tokens) must stay within what the model accepts
        log.warning("decoding.max_length %d exceeds model.max_text_length %d - 2: using %d",
                    settings.beam.max_length, model_limit, model_limit - 2)
        settings = dataclasses.replace(settings, beam=dataclasses.replace(settings.beam, max_length=model_limit - 2))
    translates = getattr(text_model, "has_decoder", True)
    lm = None
    if translates and args.lm is not None and settings.beam.lm_weight > 0:
        lm = WordLM(load_kenlm(args.lm), text_vocab.tokens, special_ids=(text_vocab.pad, text_vocab.bos, text_vocab.eos),
                    unk_id=text_vocab.unk, subword=text_vocab.tokenizer == "sentencepiece")
    elif translates and settings.beam.lm_weight > 0:
        log.warning("no --lm given: decoding without LM fusion although decoding.lm_weight=%s", settings.beam.lm_weight)
    sources = split_sources_for(args, task, fold)
    summary: dict[str, Any] = {"run": identity, "inputs": {"data_dir": str(args.data_dir) if args.data_dir else None,
                                                          "manifest": str(args.manifest) if args.manifest else None,
                                                          "translator_run": str(args.translator_run) if args.translator_run else None},
                               "settings": {"beam": dataclasses.asdict(settings.beam),
                               "ctc": dataclasses.asdict(settings.ctc), "batch_size": settings.batch_size,
                               "mbr": dataclasses.asdict(settings.mbr) if settings.mbr is not None else None,
                               "mbr_tokenize": settings.mbr_tokenize},
                               "lm": str(args.lm) if lm is not None else None, "splits": {}}
    outputs: dict[str, list[dict[str, Any]]] = {}
    for split in args.splits:
        data = D.load_split(sources[split], gloss_vocab, text_vocab, **D.split_options(eff["datasets"][dataset], task))
        start = time.perf_counter()
        extra: dict[str, Any] = {}
        if translator is not None:
            outputs[split], empty = decode_cascade(model, translator, data.samples, text_vocab, gloss_vocab, settings, lm,
                                                   desc=f"cascade {split}")
            extra["empty_recognitions"] = empty
            if empty:
                log.warning("%s: %d sample(s) with no recognised gloss get the empty translation (first: %s)",
                            split, len(empty), empty[0])
        else:
            outputs[split] = decode_samples(model, data.samples, task, text_vocab, gloss_vocab, settings, lm,
                                            desc=f"decode {split}")
        seconds = time.perf_counter() - start
        summary["splits"][split] = {"decoded": len(outputs[split]), "skipped": data.skipped, "seconds": round(seconds, 3),
                                    "sentences_per_s": round(len(outputs[split]) / max(seconds, 1e-9), 3), **extra}
        log.info("%s: decoded %d sentence(s) in %.1f s (%d skipped)", split, len(outputs[split]), seconds, len(data.skipped))
    for split, rows in outputs.items():  # write only once every split decoded: no partial output set
        write_jsonl(args.out_dir / f"decoded.{split}.jsonl", rows)
    summary["provenance"] = provenance(eff, run=identity)
    write_json(args.out_dir / "decoded.summary.json", summary)
    return 0
