"""Gloss and text vocabularies built from the training split (``hatl vocab``).

Both vocabularies share the special ids of :mod:`hatl.experiment`; the gloss vocabulary adds the CTC
blank. Regular tokens follow, most frequent first (ties broken by the token's code points, so the order is
deterministic across runs and machines).

Text is normalised with :func:`hatl.text.normalise_text` using the dataset's ``text`` settings, glosses
with :func:`hatl.text.normalise_gloss`; the settings are stored in the JSON and re-applied by
:meth:`Vocabulary.encode`, so training, decoding and scoring all see the same tokens.

Which rows: the training rows of one run fold (``--fold``, :mod:`hatl.folds`): the ``train`` split for
``main``; under cross-validation, fold K's vocabulary comes from the ``trainval`` rows with fold != K only.
Building from all of ``trainval`` would put fold K's dev words into fold K's vocabulary (and its KenLM
model), so its dev OOV rate and every dev-based choice (early stopping, HATL's unfreezing) would be
measured on text the text stages had already seen. OOV rates are reported on the fold's dev rows and on
test. ``vocab.tokenizer`` (config/README.md) may replace the text vocabulary's words by sentencepiece pieces.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from hatl.config import dataset_config, effective_config, load_config
from hatl.datasets.base import check_manifest_for_tasks
from hatl.datasets.manifest import read_manifest
from hatl.errors import InputError
from hatl.experiment import BLANK, BOS, EOS, GLOSS_TASKS, PAD, TRANSLATION_TASKS, UNK
from hatl.folds import MAIN, fold_rows
from hatl.io import atomic_dir, atomic_path, write_json
from hatl.provenance import provenance
from hatl.text import normalise_gloss, normalise_text

log = logging.getLogger(__name__)

PAD_ID, BOS_ID, EOS_ID, UNK_ID, BLANK_ID = PAD, BOS, EOS, UNK, BLANK
SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "<s>", "</s>", "<unk>")
BLANK_TOKEN = "<blank>"
GLOSS_SPECIALS: tuple[str, ...] = (*SPECIAL_TOKENS, BLANK_TOKEN)

SPM_MODEL_NAME = "text.spm.model"


# --------------------------------------------------------------------------------------------- manifest


# --------------------------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class TextNormalisation:
    """The dataset's ``text`` settings, applied through :func:`hatl.text.normalise_text`."""

    lowercase: bool = True
    strip_punctuation: bool = True

    @classmethod
    def from_dataset(cls, ds_cfg: dict[str, Any]) -> TextNormalisation:
        text = ds_cfg.get("text", {}) or {}
        return cls(lowercase=bool(text.get("lowercase", True)), strip_punctuation=bool(text.get("strip_punctuation", True)))

    def apply(self, text: str) -> str:
        return normalise_text(text, lowercase=self.lowercase, strip_punct=self.strip_punctuation)

    def to_dict(self) -> dict[str, Any]:
        return {"function": "hatl.text.normalise_text", "lowercase": self.lowercase, "strip_punctuation": self.strip_punctuation}


@dataclass(frozen=True)
class VocabConfig:
    min_freq: int = 1
    tokenizer: str = "whitespace"
    sentencepiece_vocab_size: int = 1000

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> VocabConfig:
        v = cfg.get("vocab", {}) or {}
        return cls(
            min_freq=int(v.get("min_freq", 1)),
            tokenizer=str(v.get("tokenizer", "whitespace")),
            sentencepiece_vocab_size=int(v.get("sentencepiece_vocab_size", 1000)),
        )


# --------------------------------------------------------------------------------------------- vocabulary


class Vocabulary:
    """A token <-> id mapping with the project's special ids; what training and decoding import.

    ``encode`` normalises its input the way the vocabulary was built (idempotent on already normalised
    text) and returns token ids without BOS/EOS (the batch builder adds those). ``decode`` drops PAD,
    BOS, EOS and BLANK when ``strip_specials``; UNK is kept as ``<unk>``, because it stands for a real
    (unknown) word and must count as an error when scored rather than silently vanish.
    """

    def __init__(
        self,
        kind: str,
        tokens: Sequence[str],
        normalisation: dict[str, Any],
        tokenizer: str = "whitespace",
        sp_model: bytes | None = None,
        counts: dict[str, int] | None = None,
        stats: dict[str, Any] | None = None,
    ) -> None:
        if kind not in ("gloss", "text"):
            raise ValueError(f"kind must be 'gloss' or 'text', got {kind!r}")
        specials = GLOSS_SPECIALS if kind == "gloss" else SPECIAL_TOKENS
        if tuple(tokens[: len(specials)]) != specials:
            raise ValueError(f"a {kind} vocabulary must start with {specials}, got {list(tokens[: len(specials)])}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("vocabulary tokens are not unique")
        if tokenizer == "sentencepiece" and sp_model is None:
            raise ValueError("a sentencepiece vocabulary needs its model")
        self.kind = kind
        self.tokens: list[str] = list(tokens)
        self.normalisation = dict(normalisation)
        self.tokenizer = tokenizer
        self.counts = dict(counts or {})
        self.stats = dict(stats or {})
        self._sp_model = sp_model
        self._sp = None
        if sp_model is not None:
            import sentencepiece as spm

            self._sp = spm.SentencePieceProcessor(model_proto=sp_model)
            pieces = [self._sp.id_to_piece(i) for i in range(self._sp.get_piece_size())]
            if pieces != self.tokens:
                raise ValueError("sentencepiece model pieces do not match the stored token list")
        self._index = {tok: i for i, tok in enumerate(self.tokens)}
        self._n_specials = len(specials)

    # ids ------------------------------------------------------------------------------------------
    @property
    def pad(self) -> int:
        return PAD_ID

    @property
    def bos(self) -> int:
        return BOS_ID

    @property
    def eos(self) -> int:
        return EOS_ID

    @property
    def unk(self) -> int:
        return UNK_ID

    @property
    def blank(self) -> int | None:
        """The CTC blank id (gloss vocabularies only; None for text)."""
        return BLANK_ID if self.kind == "gloss" else None

    @property
    def special_ids(self) -> tuple[int, ...]:
        return tuple(range(self._n_specials))

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self._index

    def id_of(self, token: str) -> int:
        return self._index.get(token, UNK_ID)

    # text <-> ids ---------------------------------------------------------------------------------
    def normalise(self, text: str) -> str:
        if self.kind == "gloss":
            return normalise_gloss(text)
        return normalise_text(
            text,
            lowercase=bool(self.normalisation.get("lowercase", True)),
            strip_punct=bool(self.normalisation.get("strip_punctuation", True)),
        )

    def tokenize(self, text: str) -> list[str]:
        norm = self.normalise(text)
        if self._sp is not None:
            return list(self._sp.encode(norm, out_type=str))
        return norm.split()

    def encode(self, text: str) -> list[int]:
        norm = self.normalise(text)
        if self._sp is not None:
            return [int(i) for i in self._sp.encode(norm, out_type=int)]
        return [self._index.get(tok, UNK_ID) for tok in norm.split()]

    def decode(self, ids: Iterable[int], strip_specials: bool = True) -> str:
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < len(self.tokens)]
        if bad:
            raise ValueError(f"id(s) {bad[:5]} outside the vocabulary (size {len(self.tokens)})")
        dropped = set(self.special_ids) - {UNK_ID} if strip_specials else set()
        kept = [i for i in ids if i not in dropped]
        if self._sp is None:
            return " ".join(self.tokens[i] for i in kept)
        # sentencepiece: decode runs of ordinary pieces with the model (it restores word boundaries),
        # and write specials as their token strings between runs.
        words: list[str] = []
        run: list[int] = []
        for i in kept:
            if i < self._n_specials:
                if run:
                    words.append(self._sp.decode(run))
                    run = []
                words.append(self.tokens[i])
            else:
                run.append(i)
        if run:
            words.append(self._sp.decode(run))
        return " ".join(w for w in words if w)

    # persistence ----------------------------------------------------------------------------------
    def require_fold(self, path: str | Path, fold: str) -> None:
        """Refuse a vocabulary built for another run fold: fold K's model must never see fold K's dev words
        through a vocabulary built from other rows (vocabularies from before per-fold builds record no fold)."""
        built = (self.stats or {}).get("fold")
        if built is not None and built != fold:
            raise InputError(path, fold, f"this {self.kind} vocabulary was built for fold {built}; a {fold} run needs "
                             f"the one built for {fold} (results/<dataset>/vocab/{fold})")

    def to_dict(self, sp_model_file: str | None = None) -> dict[str, Any]:
        specials = {"pad": PAD_ID, "bos": BOS_ID, "eos": EOS_ID, "unk": UNK_ID}
        if self.kind == "gloss":
            specials["blank"] = BLANK_ID
        return {
            "kind": self.kind,
            "tokenizer": self.tokenizer,
            "normalisation": self.normalisation,
            "specials": specials,
            "size": len(self.tokens),
            "stats": self.stats,
            "sentencepiece_model": sp_model_file,
            "tokens": self.tokens,
            "counts": self.counts,
        }

    def save(self, path: str | Path, extra: dict[str, Any] | None = None) -> None:
        """Write the JSON (and, for sentencepiece, the model beside it), each atomically."""
        path = Path(path)
        sp_file = None
        if self._sp_model is not None:
            sp_file = SPM_MODEL_NAME if self.kind == "text" else f"{self.kind}.spm.model"
            with atomic_path(path.parent / sp_file) as tmp:
                tmp.write_bytes(self._sp_model)
        write_json(path, {**self.to_dict(sp_file), **(extra or {})})

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        path = Path(path)
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except FileNotFoundError as err:
            raise InputError(path, None, "vocabulary file does not exist") from err
        except json.JSONDecodeError as err:
            raise InputError(path, None, f"not valid JSON: {err}") from err
        for key in ("kind", "tokens", "normalisation", "tokenizer"):
            if key not in data:
                raise InputError(path, key, "vocabulary JSON lacks this key")
        sp_model = None
        if data.get("sentencepiece_model"):
            sp_path = path.parent / data["sentencepiece_model"]
            if not sp_path.exists():
                raise InputError(path, "sentencepiece_model", f"model file {sp_path} does not exist")
            sp_model = sp_path.read_bytes()
        try:
            return cls(
                kind=data["kind"],
                tokens=data["tokens"],
                normalisation=data["normalisation"],
                tokenizer=data["tokenizer"],
                sp_model=sp_model,
                counts=data.get("counts"),
                stats=data.get("stats"),
            )
        except ValueError as err:
            raise InputError(path, None, str(err)) from err


# --------------------------------------------------------------------------------------------- building


def _ordered_types(counts: Counter[str], min_freq: int) -> list[str]:
    # Most frequent first, ties by the token itself: deterministic regardless of corpus order.
    return [tok for tok, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_freq]


def _whitespace_vocab(kind: str, sentences: Sequence[str], normalisation: dict[str, Any], min_freq: int) -> Vocabulary:
    specials = GLOSS_SPECIALS if kind == "gloss" else SPECIAL_TOKENS
    counts: Counter[str] = Counter(tok for s in sentences for tok in s.split())
    # A corpus token spelled like a special (e.g. a literal "<unk>") maps onto that special's id.
    types = [t for t in _ordered_types(counts, min_freq) if t not in specials]
    stats = {
        "sentences": len(sentences),
        "running_tokens": int(sum(counts.values())),
        "types": len(counts),
        "min_freq": min_freq,
        "types_below_min_freq": sum(1 for n in counts.values() if n < min_freq),
    }
    return Vocabulary(kind, [*specials, *types], normalisation, "whitespace", counts=dict(counts), stats=stats)


def build_gloss_vocab(glosses: Sequence[str], min_freq: int = 1) -> Vocabulary:
    """Gloss vocabulary from raw gloss strings (normalised here with :func:`normalise_gloss`)."""
    norm = [normalise_gloss(g) for g in glosses]
    return _whitespace_vocab("gloss", norm, {"function": "hatl.text.normalise_gloss"}, min_freq)


def train_sentencepiece(sentences: Sequence[str], vocab_size: int) -> bytes:
    """A unigram sentencepiece model with the project's special ids; deterministic (1 thread, no shuffle)."""
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(sentences)),
        model_writer=buf,
        model_type="unigram",
        vocab_size=vocab_size,
        hard_vocab_limit=False,  # a small corpus cannot fill a large vocabulary: use what it supports
        character_coverage=1.0,  # keep every character (umlauts, Arabic script)
        pad_id=PAD_ID, bos_id=BOS_ID, eos_id=EOS_ID, unk_id=UNK_ID,
        pad_piece=SPECIAL_TOKENS[PAD_ID], bos_piece=SPECIAL_TOKENS[BOS_ID],
        eos_piece=SPECIAL_TOKENS[EOS_ID], unk_piece=SPECIAL_TOKENS[UNK_ID],
        num_threads=1,
        shuffle_input_sentence=False,
        minloglevel=2,
    )
    return buf.getvalue()


def build_text_vocab(texts: Sequence[str], norm: TextNormalisation, vcfg: VocabConfig) -> Vocabulary:
    """Text vocabulary from raw sentences: whitespace words, or a sentencepiece model over them."""
    sentences = [norm.apply(t) for t in texts]
    if vcfg.tokenizer == "whitespace":
        return _whitespace_vocab("text", sentences, norm.to_dict(), vcfg.min_freq)
    if vcfg.tokenizer != "sentencepiece":
        raise ValueError(f"unknown tokenizer {vcfg.tokenizer!r}")
    import sentencepiece as spm

    model = train_sentencepiece(sentences, vcfg.sentencepiece_vocab_size)
    sp = spm.SentencePieceProcessor(model_proto=model)
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    counts = Counter(p for s in sentences for p in sp.encode(s, out_type=str))
    words = Counter(w for s in sentences for w in s.split())
    stats = {
        "sentences": len(sentences),
        "running_tokens": int(sum(counts.values())),
        "running_words": int(sum(words.values())),
        "word_types": len(words),
        "requested_size": vcfg.sentencepiece_vocab_size,
        "min_freq": None,  # sentencepiece chooses its pieces itself; min_freq applies to whitespace words
    }
    return Vocabulary("text", pieces, norm.to_dict(), "sentencepiece", sp_model=model, counts=dict(counts), stats=stats)


def check_training_targets(
    train: pd.DataFrame, tasks: Sequence[str], norm: TextNormalisation, manifest_path: str | Path | None
) -> None:
    """Reject empty gloss/text in the training split when a task needs them (adapters should have already).

    Emptiness is judged after normalisation: a sentence of punctuation only is an empty target too.
    """
    needs_gloss = any(task in GLOSS_TASKS for task in tasks)
    needs_text = any(task in TRANSLATION_TASKS for task in tasks)  # sign2gloss alone (boston104) has no text
    for row in train.itertuples(index=False):
        if needs_text and not norm.apply(row.text):
            raise InputError(
                manifest_path, str(row.sample_id),
                f"empty text (after normalisation) in the training split (tasks {list(tasks)} translate to text)",
            )
        if needs_gloss and not normalise_gloss(row.gloss):
            raise InputError(manifest_path, str(row.sample_id), f"empty gloss in the training split (tasks {list(tasks)} need glosses)")


# German glosses (PHOENIX14T, DGS corpora) are written in ASCII capitals: AE/OE/UE stand for the umlauts.
_ASCII_UMLAUTS = (("ae", "ä"), ("oe", "ö"), ("ue", "ü"))


def gloss_word_candidates(gloss: str) -> list[str]:
    """The text words a gloss may spell, most literal first: ``KUEHL`` -> kuehl, kühl; ``HABEN2`` -> haben2, haben.

    Lowercased; then without a trailing sense number; then with ASCII umlauts restored. Compounds and
    markers (``WIE-AUSSEHEN``, ``poss-EUCH``) are left whole: they name no single word.
    """
    out: list[str] = []
    base = gloss.lower()
    for form in (base, base.rstrip("0123456789")):
        if not form:
            continue
        umlauts = form
        for ascii_form, letter in _ASCII_UMLAUTS:
            umlauts = umlauts.replace(ascii_form, letter)
        for cand in (form, umlauts):
            if cand not in out:
                out.append(cand)
    return out


def gloss_word_ids(gloss: Vocabulary, text: Vocabulary) -> list[int]:
    """For each gloss id, the text id of the word it spells (:func:`gloss_word_candidates`), PAD when none.

    What ``model.<translator>.gloss_word_embeddings`` reads: such a gloss enters the Gloss2Text encoder
    through that word's target embedding. Specials map to PAD. A sentencepiece text vocabulary is searched
    for the word as one whole-word piece (``▁word``).
    """
    prefix = "\u2581" if text.tokenizer == "sentencepiece" else ""
    first_regular = len(gloss.special_ids)
    ids = [PAD_ID] * len(gloss)
    for gid in range(first_regular, len(gloss)):
        for cand in gloss_word_candidates(gloss.tokens[gid]):
            tid = text.id_of(prefix + cand)
            if tid >= len(text.special_ids):
                ids[gid] = tid
                break
    return ids


def oov_rate(vocab: Vocabulary, sentences: Sequence[str]) -> dict[str, Any]:
    """Share of running tokens mapped to UNK (a quick check of how well the vocabulary covers a split)."""
    total = unk = 0
    for s in sentences:
        ids = vocab.encode(s)
        total += len(ids)
        unk += sum(1 for i in ids if i == UNK_ID)
    return {"tokens": total, "unk": unk, "rate": (unk / total) if total else 0.0}


def build_vocabularies(
    manifest: pd.DataFrame, ds_cfg: dict[str, Any], vcfg: VocabConfig, manifest_path: str | Path | None = None,
    fold: str = MAIN,
) -> tuple[Vocabulary, Vocabulary, str]:
    """Gloss and text vocabularies from the training rows of ``fold``; returns (gloss, text, rows used).

    ``stats`` records the fold, the row selection of each role and the OOV rate on the fold's dev rows
    and on test (a role without rows is left out).
    """
    check_manifest_for_tasks(manifest, ds_cfg.get("tasks", []), manifest_path)
    rows = fold_rows(manifest, fold, manifest_path)
    norm = TextNormalisation.from_dataset(ds_cfg)
    check_training_targets(rows.train, ds_cfg.get("tasks", []), norm, manifest_path)
    gloss = build_gloss_vocab(list(rows.train["gloss"]), vcfg.min_freq)
    text = build_text_vocab(list(rows.train["text"]), norm, vcfg)
    described = rows.description
    for vocab, col in ((gloss, "gloss"), (text, "text")):
        vocab.stats["fold"] = fold
        vocab.stats["split"] = described["train"]
        vocab.stats["rows"] = described
        vocab.stats["oov"] = {
            role: oov_rate(vocab, list(rows.role(role)[col])) for role in ("dev", "test") if len(rows.role(role))
        }
    return gloss, text, described["train"]


# --------------------------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="pipeline config YAML")
    parser.add_argument("--dataset", required=True, help="dataset name (a key of datasets: in the config)")
    parser.add_argument("--manifest", required=True, help="results/{ds}/manifest.parquet")
    parser.add_argument("--out-dir", required=True, help="output folder: gloss.json, text.json (+ text.spm.model), "
                        "results/{ds}/vocab/{fold}")
    parser.add_argument("--fold", default=MAIN, help="run fold whose training rows build the vocabularies: 'main' "
                        "(the train split) or 'foldK' (cross-validation: trainval rows with fold != K); default main")


def run(args: argparse.Namespace) -> int:
    cfg = effective_config(load_config(args.config), args.dataset)
    ds_cfg = dataset_config(cfg, args.dataset)
    vcfg = VocabConfig.from_config(cfg)
    manifest = read_manifest(args.manifest)
    gloss, text, split = build_vocabularies(manifest, ds_cfg, vcfg, args.manifest, args.fold)
    prov = provenance(cfg, dataset=args.dataset, manifest=str(args.manifest), fold=args.fold)
    out_dir = Path(args.out_dir)
    extra = {"dataset": args.dataset, "fold": args.fold, "provenance": prov}
    # Build the folder aside and swap it in whole, so a half-written pair never passes as complete.
    with atomic_dir(out_dir) as tmp:
        gloss.save(tmp / "gloss.json", extra)
        text.save(tmp / "text.json", extra)
    for vocab in (gloss, text):
        oov = ", ".join(f"{s} {v['rate']:.2%}" for s, v in vocab.stats["oov"].items())
        log.info(
            "%s vocabulary (%s, fold %s, rows %s): %d entries from %d sentences%s",
            vocab.kind, vocab.tokenizer, args.fold, split, len(vocab), vocab.stats["sentences"], f"; OOV {oov}" if oov else "",
        )
    log.info("wrote %s", out_dir)
    return 0
