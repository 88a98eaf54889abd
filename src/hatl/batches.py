"""Training and decoding data: normalised keypoint Parquet → in-memory samples → length-bucketed batches → the batch dict.

The batch format is the contract of docs/architecture.md ("Batches and models"). Batch order is a pure
function of (seed, epoch), so a run resumed in the middle of an epoch replays exactly the batches the
interrupted run would have seen (it skips the ones already done).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from hatl.errors import InputError
from hatl.experiment import BOS, EOS, GLOSS_TASKS, PAD, TRANSLATION_TASKS
from hatl.folds import CV_SPLIT, describe, dev_filter, fold_index, train_filter
from hatl.keypoint_store import iter_keypoints, read_meta
from hatl.text import normalise_gloss, normalise_text

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("gloss", "text")


class Encoder(Protocol):
    def encode(self, text: str) -> list[int]: ...


@dataclass
class Sample:
    sample_id: str
    keypoints: np.ndarray  # (T, V, 3) float32
    gloss_ids: np.ndarray  # (G,) int64, no specials
    text_ids: np.ndarray  # (S,) int64, no BOS/EOS
    gloss: str  # normalised reference gloss string
    text: str  # normalised reference text

    @property
    def n_frames(self) -> int:
        return int(self.keypoints.shape[0])


@dataclass
class SplitData:
    name: str
    samples: list[Sample]
    skipped: list[dict[str, str]] = field(default_factory=list)  # {record, reason}

    def lengths(self) -> list[int]:
        """Bucketing lengths: frames, or gloss tokens for text-only (manifest) samples."""
        return [s.n_frames or len(s.gloss_ids) for s in self.samples]


@dataclass(frozen=True)
class SplitSource:
    """Where one split comes from: a file and the rows of it that belong to the split.

    ``kind`` is ``keypoints`` (normalised keypoint Parquet: one file per split) or ``manifest`` (the
    dataset manifest, rows picked by their ``split`` value: text-only tasks need no keypoints).
    """

    name: str
    path: Path
    fold_filter: Callable[[int], bool] | None = None  # None: every row
    description: str = ""
    kind: str = "keypoints"
    split_value: str | None = None  # manifest rows with this split


def split_sources(data_dir: str | Path, fold: str) -> dict[str, SplitSource]:
    """Fold 'main' = train/dev/test files; 'foldK' = trainval rows with fold != K (train), == K (dev), plus test."""
    data_dir = Path(data_dir)
    k = fold_index(fold)  # the fold rule lives in hatl.folds, shared with the vocabulary and LM stages
    if k is None:
        return {name: SplitSource(name, data_dir / f"{name}.parquet", None, name) for name in ("train", "dev", "test")}
    trainval = data_dir / f"{CV_SPLIT}.parquet"
    rows = describe(fold)
    return {
        "train": SplitSource("train", trainval, train_filter(k), rows["train"]),
        "dev": SplitSource("dev", trainval, dev_filter(k), rows["dev"]),
        "test": SplitSource("test", data_dir / "test.parquet", None, "test"),
    }


def manifest_sources(manifest: str | Path, fold: str) -> dict[str, SplitSource]:
    """The same splits as :func:`split_sources`, read from the manifest (for gloss2text)."""
    manifest = Path(manifest)
    k = fold_index(fold)
    if k is None:
        return {name: SplitSource(name, manifest, None, f"manifest split {name}", "manifest", name) for name in ("train", "dev", "test")}
    rows = describe(fold)
    return {
        "train": SplitSource("train", manifest, train_filter(k), f"manifest {rows['train']}", "manifest", CV_SPLIT),
        "dev": SplitSource("dev", manifest, dev_filter(k), f"manifest {rows['dev']}", "manifest", CV_SPLIT),
        "test": SplitSource("test", manifest, None, "manifest split test", "manifest", "test"),
    }


def load_vocabularies(vocab_dir: str | Path, fold: str) -> tuple[Any, Any]:
    """(gloss, text) vocabularies of a run fold, refused when they were built for another fold."""
    from hatl.vocab import Vocabulary

    vocabs = []
    for name in ("gloss", "text"):
        path = Path(vocab_dir) / f"{name}.json"
        vocab = Vocabulary.load(path)
        vocab.require_fold(path, fold)
        vocabs.append(vocab)
    return vocabs[0], vocabs[1]


def split_options(dataset_cfg: dict[str, Any], task: str) -> dict[str, bool]:
    """:func:`load_split`'s options for a run of ``task``: the dataset's text normalisation and the targets it needs."""
    text = dataset_cfg["text"]
    return {"lowercase": bool(text["lowercase"]), "strip_punctuation": bool(text["strip_punctuation"]),
            "need_gloss": task in GLOSS_TASKS, "need_text": task in TRANSLATION_TASKS}


def _manifest_rows(source: SplitSource) -> Iterable[tuple[str, int, str, str]]:
    """(sample_id, fold, gloss, text) of the manifest rows in ``source``'s split."""
    import pandas as pd

    try:
        df = pd.read_parquet(source.path, columns=["sample_id", "split", "fold", "gloss", "text"])
    except FileNotFoundError as err:
        raise InputError(source.path, None, "manifest does not exist") from err
    except (KeyError, ValueError) as err:
        raise InputError(source.path, None, f"not a manifest with sample_id/split/fold/gloss/text columns: {err}") from err
    df = df[df["split"] == source.split_value]
    for row in df.itertuples(index=False):
        yield str(row.sample_id), int(row.fold), row.gloss or "", row.text or ""


def _encode(vocab: Encoder | None, text: str) -> np.ndarray:
    if vocab is None or not text:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(vocab.encode(text), dtype=np.int64)


def load_split(
    source: SplitSource,
    gloss_vocab: Encoder | None,
    text_vocab: Encoder | None,
    *,
    lowercase: bool = True,
    strip_punctuation: bool = True,
    need_gloss: bool = False,
    need_text: bool = True,
) -> SplitData:
    """Read one split into memory; rows that cannot be trained on are skipped and listed with the reason."""
    path = source.path
    if source.kind == "manifest":
        return _load_manifest_split(source, gloss_vocab, text_vocab, need_gloss=need_gloss, need_text=need_text,
                                    lowercase=lowercase, strip_punctuation=strip_punctuation)
    if not path.exists():
        raise InputError(path, None, f"normalised split file for '{source.name}' does not exist")
    meta = read_meta(path)
    import pyarrow.parquet as pq  # local: only the column check needs it

    names = pq.read_schema(path).names
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise InputError(path, None, f"missing column(s) {missing}; expected normalised keypoints (stage {meta.get('stage')!r})")
    if source.fold_filter is not None and "fold" not in names:
        raise InputError(path, None, "cross-validation split needs a 'fold' column")
    samples: list[Sample] = []
    skipped: list[dict[str, str]] = []
    seen: set[str] = set()
    for rec in iter_keypoints(path):
        if source.fold_filter is not None:
            fold = rec.extra.get("fold")
            if fold is None:
                raise InputError(path, rec.sample_id, "fold is null in a cross-validation split")
            if not source.fold_filter(int(fold)):
                continue
        if rec.sample_id in seen:
            raise InputError(path, rec.sample_id, "duplicate sample_id")
        seen.add(rec.sample_id)
        if not np.isfinite(rec.landmarks).all():
            raise InputError(path, rec.sample_id, "landmarks contain NaN or infinite values (normalisation should have filled them)")
        gloss = normalise_gloss(rec.extra.get("gloss") or "")
        text = normalise_text(rec.extra.get("text") or "", lowercase=lowercase, strip_punct=strip_punctuation)
        reason = None
        if rec.n_frames == 0:
            reason = "no frames"
        elif need_text and not text:
            reason = "empty text (the task needs a translation target)"
        elif need_gloss and not gloss:
            reason = "empty gloss (the task needs a gloss target)"
        if reason:
            skipped.append({"record": rec.sample_id, "reason": reason})
            continue
        samples.append(
            Sample(
                sample_id=rec.sample_id,
                keypoints=np.array(rec.landmarks, dtype=np.float32, copy=True),  # writable: torch.from_numpy shares it
                gloss_ids=_encode(gloss_vocab, gloss),
                text_ids=_encode(text_vocab, text),
                gloss=gloss,
                text=text,
            )
        )
    if not samples:
        raise InputError(path, None, f"split '{source.name}' ({source.description}) has no usable sample ({len(skipped)} skipped)")
    if skipped:
        log.warning("%s: skipped %d sample(s) of split '%s' (first: %s)", path, len(skipped), source.name, skipped[0])
    return SplitData(source.name, samples, skipped)


def _load_manifest_split(
    source: SplitSource, gloss_vocab: Encoder | None, text_vocab: Encoder | None, *, need_gloss: bool, need_text: bool,
    lowercase: bool, strip_punctuation: bool,
) -> SplitData:
    """Text-only samples (no keypoints: a (0, 1, 3) array) from the manifest rows of one split."""
    samples: list[Sample] = []
    skipped: list[dict[str, str]] = []
    seen: set[str] = set()
    for sid, fold, raw_gloss, raw_text in _manifest_rows(source):
        if source.fold_filter is not None and not source.fold_filter(fold):
            continue
        if sid in seen:
            raise InputError(source.path, sid, "duplicate sample_id")
        seen.add(sid)
        gloss = normalise_gloss(raw_gloss)
        text = normalise_text(raw_text, lowercase=lowercase, strip_punct=strip_punctuation)
        reason = None
        if need_text and not text:
            reason = "empty text (the task needs a translation target)"
        elif need_gloss and not gloss:
            reason = "empty gloss (the task needs a gloss input/target)"
        if reason:
            skipped.append({"record": sid, "reason": reason})
            continue
        samples.append(Sample(sid, np.zeros((0, 1, 3), np.float32), _encode(gloss_vocab, gloss), _encode(text_vocab, text), gloss, text))
    if not samples:
        raise InputError(source.path, None, f"split '{source.name}' ({source.description}) has no usable sample ({len(skipped)} skipped)")
    if skipped:
        log.warning("%s: skipped %d sample(s) of split '%s' (first: %s)", source.path, len(skipped), source.name, skipped[0])
    return SplitData(source.name, samples, skipped)


# -- batching -----------------------------------------------------------------------------------
def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """The only randomness of the batch order: a generator seeded by (seed, epoch) alone."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch)]))


def _chunks(items: Sequence[int], size: int) -> list[list[int]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def epoch_batches(
    lengths: Sequence[int], batch_size: int, seed: int, epoch: int, *, bucketing: bool = True, pool_batches: int = 8
) -> list[list[int]]:
    """Shuffled batches of sample indices for one epoch.

    With bucketing, a shuffled pool of ``pool_batches × batch_size`` samples is sorted by length and cut
    into batches (little padding, yet batches still differ between epochs); the batch order is shuffled.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    rng = epoch_rng(seed, epoch)
    order = rng.permutation(len(lengths))
    if not bucketing:
        return _chunks(order.tolist(), batch_size)
    batches: list[list[int]] = []
    pool_size = batch_size * max(1, pool_batches)
    for pool in _chunks(order.tolist(), pool_size):
        pool_sorted = sorted(pool, key=lambda i: (lengths[i], i))
        batches.extend(_chunks(pool_sorted, batch_size))
    perm = rng.permutation(len(batches))
    return [batches[i] for i in perm]


def eval_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Deterministic, length-sorted batches for evaluation (order does not matter for the metrics)."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    return _chunks(order, batch_size)


# -- collate ------------------------------------------------------------------------------------
def _pad_ids(seqs: Iterable[np.ndarray], prefix: int | None = None, suffix: int | None = None,
             min_width: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    seqs = [np.concatenate([[prefix] if prefix is not None else [], s, [suffix] if suffix is not None else []]).astype(np.int64) for s in seqs]
    width = max(1, min_width, max(len(s) for s in seqs))
    out = torch.full((len(seqs), width), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.from_numpy(s)
    return out, torch.tensor([len(s) for s in seqs], dtype=torch.long)


def collate(samples: Sequence[Sample], pad_like: Sequence[Sample] | None = None) -> dict[str, Any]:
    """Pad a list of samples into the batch dict of docs/architecture.md.

    ``pad_like``: pad to the widths of this larger batch instead (a DDP rank's shard is padded like the
    global batch it belongs to, so its rows are exactly the rows the single-process batch would hold).
    """
    ref = list(samples) + list(pad_like or ())
    t_max = max(s.n_frames for s in ref)
    g_width = max(len(s.gloss_ids) for s in ref)
    s_width = max(len(s.text_ids) for s in ref) + 1
    v, c = samples[0].keypoints.shape[1:]
    keypoints = torch.zeros((len(samples), t_max, v, c), dtype=torch.float32)
    frame_mask = torch.zeros((len(samples), t_max), dtype=torch.bool)
    for i, s in enumerate(samples):
        keypoints[i, : s.n_frames] = torch.from_numpy(s.keypoints)
        frame_mask[i, : s.n_frames] = True
    gloss, gloss_lengths = _pad_ids((s.gloss_ids for s in samples), min_width=g_width)
    text_in, _ = _pad_ids((s.text_ids for s in samples), prefix=BOS, min_width=s_width)
    text_out, _ = _pad_ids((s.text_ids for s in samples), suffix=EOS, min_width=s_width)
    return {
        "keypoints": keypoints,
        "frame_mask": frame_mask,
        "gloss": gloss,
        "gloss_lengths": gloss_lengths,
        "text_in": text_in,
        "text_out": text_out,
        "sample_ids": [s.sample_id for s in samples],
    }


def to_device(batch: dict[str, Any], device: torch.device, non_blocking: bool = False) -> dict[str, Any]:
    """Move every tensor of a batch (pinned first on CUDA, so the copy can overlap compute)."""
    out: dict[str, Any] = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            if non_blocking and device.type == "cuda":
                value = value.pin_memory()
            out[key] = value.to(device, non_blocking=non_blocking)
        else:
            out[key] = value
    return out
