"""hatl.folds: the one rule deciding which rows train, tune and test a run fold, shared by every stage."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from hatl.errors import InputError
from hatl.folds import describe, fold_index, fold_rows, trains_fold
from hatl import batches as D


def manifest(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame([{"sample_id": sid, "split": split, "fold": fold, "gloss": "G", "text": f"t {sid}"}
                         for sid, split, fold in rows])


CV = manifest([("a", "trainval", 0), ("b", "trainval", 1), ("c", "trainval", 2), ("d", "trainval", 0), ("e", "test", -1)])


def test_fold_index_and_rule() -> None:
    assert fold_index("main") is None and fold_index("fold3") == 3
    for bad in ("fold", "fifth", "fold-1", "Main"):
        with pytest.raises(InputError, match="fold must be"):
            fold_index(bad)
    assert trains_fold(1, 0) and not trains_fold(0, 0)
    assert describe("fold2") == {"train": "trainval fold != 2", "dev": "trainval fold == 2", "test": "split test"}
    assert describe("main")["train"] == "split train"


def test_fold_rows_partition_trainval() -> None:
    rows = fold_rows(CV, "fold0")
    assert list(rows.train["sample_id"]) == ["b", "c"] and list(rows.dev["sample_id"]) == ["a", "d"]
    assert list(rows.test["sample_id"]) == ["e"]
    main = fold_rows(manifest([("a", "train", -1), ("b", "dev", -1), ("c", "test", -1)]), "main")
    assert (list(main.train["sample_id"]), list(main.dev["sample_id"]), list(main.test["sample_id"])) == (["a"], ["b"], ["c"])


def test_fold_rows_refuses_what_would_train_on_the_wrong_rows(tmp_path: Path) -> None:
    path = tmp_path / "manifest.parquet"
    with pytest.raises(InputError, match="pass --fold foldK") as err:
        fold_rows(CV, "main", path)
    assert err.value.path == str(path)
    with pytest.raises(InputError, match="use --fold main"):
        fold_rows(manifest([("a", "train", -1)]), "fold0", path)
    with pytest.raises(InputError, match=r"no trainval row has fold 7"):
        fold_rows(CV, "fold7", path)
    with pytest.raises(InputError, match=r"\[x\].*fold >= 0"):
        fold_rows(manifest([("a", "trainval", 0), ("x", "trainval", -1)]), "fold0", path)


def test_training_data_selects_the_same_rows(tmp_path: Path) -> None:
    """hatl.batches's manifest sources (gloss2text training and decoding) agree with fold_rows."""
    path = tmp_path / "manifest.parquet"
    CV.to_parquet(path)
    sources = D.manifest_sources(path, "fold0")
    picked = {role: [sid for sid, fold, _, _ in D._manifest_rows(src) if src.fold_filter is None or src.fold_filter(fold)]
              for role, src in sources.items()}
    rows = fold_rows(CV, "fold0")
    assert picked == {role: list(rows.role(role)["sample_id"]) for role in ("train", "dev", "test")}


def _example_config(*overlays: str) -> dict:
    """config/config.yaml with the given config/examples overlays merged as Snakemake merges --configfile."""
    import yaml

    from hatl.config import REPO_ROOT, deep_merge, validate_config

    config = yaml.safe_load((REPO_ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))
    for name in overlays:
        config = deep_merge(config, yaml.safe_load((REPO_ROOT / "config" / "examples" / name).read_text(encoding="utf-8")))
    return validate_config({**config, "datasets": {k: v for k, v in config["datasets"].items() if v}})


def test_real_medasl_trains_all_five_folds_the_demo_and_cpu_overlay_one() -> None:
    from hatl.folds import fold_plan, run_folds

    # the paper: 5-fold cross-validation on the 80% split
    assert run_folds(_example_config("medasl.yaml"), "medasl") == [f"fold{k}" for k in range(5)]
    assert fold_plan(_example_config("medasl.yaml", "medasl_cpu.yaml"), "medasl") == ([0], 5)
    shipped = _example_config()
    assert fold_plan(shipped, "medasl") == ([0], 5)  # the demo stand-in: demo.run_folds
    assert run_folds(shipped, "phoenix14t") == ["main"]
    # switching the stand-in to the real adapter (nothing else) trains every fold
    real = {**shipped, "datasets": {**shipped["datasets"], "medasl": {**shipped["datasets"]["medasl"], "adapter": "medasl"}}}
    assert run_folds(real, "medasl") == [f"fold{k}" for k in range(5)]
    # an explicit run_folds wins over the demo's
    chosen = {**shipped, "datasets": {**shipped["datasets"], "medasl": {
        **shipped["datasets"]["medasl"], "cross_validation": {"folds": 5, "test_fraction": 0.2, "run_folds": [1, 3]}}}}
    assert run_folds(chosen, "medasl") == ["fold1", "fold3"]
