"""Which rows train, tune and test one run fold (the ``{fold}`` of docs/architecture.md).

``main``: the dataset's own ``train`` / ``dev`` / ``test`` splits. ``foldK`` (cross-validation): the
``trainval`` rows whose fold is not K train, the ``trainval`` rows whose fold is K are that run's dev
set, and ``test`` is the held-out test split.

Every stage that learns from a fold's training rows (vocabularies, the KenLM model, the demo backbone
pretraining, training itself) decides through :func:`trains_fold`, so fold K's dev text can reach none
of what fold K's model is trained or decoded with. This module is deliberately free of torch, so the
text stages can import it cheaply.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hatl.errors import InputError

if TYPE_CHECKING:  # pandas only for the annotations: the row selection below needs no import of its own
    import pandas as pd

MAIN = "main"
CV_SPLIT = "trainval"  # the split every cross-validation fold's train and dev rows come from
ROLES = ("train", "dev", "test")


def fold_index(fold: str) -> int | None:
    """None for ``main``, K for ``foldK``; anything else is an InputError naming the value."""
    if fold == MAIN:
        return None
    if fold.startswith("fold") and fold[4:].isdigit():
        return int(fold[4:])
    raise InputError(None, fold, "fold must be 'main' or 'foldK' (K an integer), e.g. fold0")


def trains_fold(row_fold: int, k: int) -> bool:
    """The cross-validation rule: a trainval row trains fold K unless it is fold K's dev part."""
    return int(row_fold) != k


def train_filter(k: int) -> Callable[[int], bool]:
    """Row-fold predicate of fold K's training rows (within ``trainval``)."""
    return lambda row_fold: trains_fold(row_fold, k)


def dev_filter(k: int) -> Callable[[int], bool]:
    """Row-fold predicate of fold K's dev rows: exactly the trainval rows that do not train it."""
    return lambda row_fold: not trains_fold(row_fold, k)


def fold_plan(config: Mapping[str, Any], dataset: str) -> tuple[list[int], int]:
    """(the cross-validation folds a dataset trains, the folds it is split into); ([], 0) without
    cross-validation. ``cross_validation.run_folds`` chooses; when it is null a demo dataset takes
    ``demo.run_folds`` (the demo's budget: MedASL's stand-in trains fold 0 only) and a real one trains every
    fold, as the paper's 5-fold cross-validation on the 80% split does (section 5.1)."""
    ds = config["datasets"][dataset]
    cv = ds.get("cross_validation")
    if cv is None:
        return [], 0
    total = int(cv.get("folds", 5))
    chosen = cv.get("run_folds")
    if chosen is None and ds.get("adapter") == "demo":
        chosen = (config.get("demo") or {}).get("run_folds")
    return (list(range(total)) if chosen is None else [int(k) for k in chosen]), total


def run_folds(config: Mapping[str, Any], dataset: str) -> list[str]:
    """The ``{fold}`` values of a dataset's runs: ``main``, or ``foldK`` per trained cross-validation fold."""
    folds, total = fold_plan(config, dataset)
    return [f"fold{k}" for k in folds] if total else [MAIN]


def describe(fold: str) -> dict[str, str]:
    """Human-readable row selection of each role, recorded in the JSON outputs."""
    k = fold_index(fold)
    if k is None:
        return {role: f"split {role}" for role in ROLES}
    return {"train": f"{CV_SPLIT} fold != {k}", "dev": f"{CV_SPLIT} fold == {k}", "test": "split test"}


@dataclass(frozen=True)
class FoldRows:
    """The manifest rows of one fold, by role (``dev`` / ``test`` may be empty frames)."""

    fold: str
    train: pd.DataFrame
    dev: pd.DataFrame
    test: pd.DataFrame

    @property
    def description(self) -> dict[str, str]:
        return describe(self.fold)

    def role(self, name: str) -> pd.DataFrame:
        return {"train": self.train, "dev": self.dev, "test": self.test}[name]


def _cv_folds(rows: pd.DataFrame, path: str | Path | None) -> list[int]:
    """Every trainval row must carry a fold >= 0 (docs/architecture.md); returns the folds present."""
    folds = rows["fold"]
    bad = rows[folds.isna() | (folds.fillna(-1).astype(int) < 0)]
    if len(bad):
        raise InputError(path, str(bad["sample_id"].iloc[0]),
                         f"a {CV_SPLIT} row needs a cross-validation fold >= 0, got {bad['fold'].iloc[0]!r} ({len(bad)} such row(s))")
    return sorted({int(f) for f in folds})


def fold_rows(manifest: pd.DataFrame, fold: str, path: str | Path | None = None) -> FoldRows:
    """Split a manifest (columns ``sample_id``, ``split``, ``fold``) into the train / dev / test rows of ``fold``.

    ``main`` on a cross-validation manifest, and ``foldK`` on one without ``trainval`` or without any row
    of fold K, are InputErrors: either would silently train on the wrong rows.
    """
    k = fold_index(fold)
    splits = set(manifest["split"])
    test = manifest[manifest["split"] == "test"]
    if k is None:
        if CV_SPLIT in splits:
            raise InputError(path, MAIN, f"the manifest is split for cross-validation ({CV_SPLIT}/test): fold 'main' has no "
                             "training split here; pass --fold foldK to build fold K's training rows (trainval fold != K)")
        if "train" not in splits:
            raise InputError(path, MAIN, f"manifest has no 'train' split (splits: {sorted(splits)})")
        return FoldRows(fold, manifest[manifest["split"] == "train"], manifest[manifest["split"] == "dev"], test)
    if CV_SPLIT not in splits:
        raise InputError(path, fold, f"fold {fold} needs a cross-validation manifest (split {CV_SPLIT}); this one has "
                         f"splits {sorted(splits)}: use --fold main")
    trainval = manifest[manifest["split"] == CV_SPLIT]
    present = _cv_folds(trainval, path)
    if k not in present:
        raise InputError(path, fold, f"no {CV_SPLIT} row has fold {k} (folds present: {present})")
    trains = trainval["fold"].astype(int).map(train_filter(k)).astype(bool)
    return FoldRows(fold, trainval[trains], trainval[~trains], test)
