"""The manifest stage and `hatl manifest`: shards, metadata, readers, and every bad input exiting 2 with no output."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import real_data_path

from hatl.cli import main
from hatl.config import validate_config
from hatl.datasets import ADAPTERS, get_adapter
from hatl.datasets.manifest import (
    assign_shards, build_manifest, check_rows, manifest_meta, read_manifest, resolve_shard_size, shards,
    splits_provenance_path,
)
from hatl.errors import ConfigError, InputError

TSV_HEADER = "id\tsplit\tvideo\tgloss\ttext\tsigner"


def write_config(tmp_path: Path, datasets: dict, **top) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"datasets": datasets, **top}), encoding="utf-8")
    return path


def run_cli(config: Path, dataset: str, out_dir: Path, splits: bool = False) -> int:
    argv = ["manifest", "--config", str(config), "--dataset", dataset, "--out", str(out_dir / "manifest.parquet")]
    if splits:
        argv += ["--splits-out", str(out_dir / "splits.tsv")]
    return main(argv)


def generic_release(root: Path, n_frames_folders: int = 5, n_npy: int = 3) -> Path:
    """A generic TSV dataset with frame folders and npy folders (two source kinds)."""
    lines = []
    for i in range(n_frames_folders):
        folder = root / "frames" / f"f{i}"
        folder.mkdir(parents=True)
        for k in range(i + 1):
            (folder / f"{k}.png").write_bytes(b"\x89PNG")
        lines.append(f"f{i}\t{'train' if i < 3 else 'dev'}\tframes/f{i}\tG{i}\tt{i}\tp{i % 2}")
    for i in range(n_npy):
        folder = root / "npy" / f"n{i}"
        folder.mkdir(parents=True)
        for k in range(2):
            np.save(folder / f"{k}.npy", np.zeros(1662))
        lines.append(f"n{i}\ttest\tnpy/n{i}\tH{i}\tu{i}\tp0")
    (root / "annotations.tsv").write_text("\n".join([TSV_HEADER, *lines]) + "\n", encoding="utf-8")
    return root


# -------------------------------------------------------------------------------------------- shards


def test_assign_shards_never_mixes_kinds_and_respects_size():
    rows = [{"sample_id": f"s{i:02d}", "split": ["train", "dev", "test"][i % 3],
             "source_kind": "video" if i % 4 else "npy"} for i in range(23)]
    frame = pd.DataFrame(rows).assign(fold=-1, signer="", gloss="", text="", source="", fps=25.0, n_frames=1)
    out = assign_shards(frame.sample(frac=1, random_state=3), shard_size=4)
    assert list(out["shard"]) == sorted(out["shard"])
    assert out["shard"].value_counts().max() <= 4
    assert all(g["source_kind"].nunique() == 1 for _, g in out.groupby("shard"))
    assert list(out.sort_values(["source_kind", "split", "sample_id"])["sample_id"]) == list(out["sample_id"])
    # npy: 6 rows -> 2 shards; video: 17 rows -> 5 shards
    assert shards(out) == {0: "npy", 1: "npy", 2: "video", 3: "video", 4: "video", 5: "video", 6: "video"}
    # stable: the input order does not matter
    again = assign_shards(frame, shard_size=4)
    assert again.equals(out)


def test_automatic_shard_size_bounds_the_shard_count():
    """The shipped `shard_size: auto`: 64 per shard for datasets of the paper's size (as the old fixed default),
    and about `target_shards` shards however large the dataset grows (issue 18: 610,000 clips were 9,532 jobs)."""
    shipped = validate_config({"datasets": {"d": {"adapter": "generic"}}})["preprocess"]
    assert (shipped["shard_size"], shipped["target_shards"], shipped["min_shard_size"]) == ("auto", 1000, 64)
    sizes = {n: resolve_shard_size(shipped, n) for n in (1, 2_000, 8_257, 64_000, 64_001, 100_000, 610_000, 610_193)}
    assert sizes == {1: 64, 2_000: 64, 8_257: 64, 64_000: 64, 64_001: 65, 100_000: 100, 610_000: 610, 610_193: 611}
    # an explicit size is honoured whatever the dataset's size
    assert resolve_shard_size({**shipped, "shard_size": 16}, 610_000) == 16
    # the shard count the workflow plans: 130 for PHOENIX14T (8,257 samples), 1,000 for 610,000
    for n, expected in ((8_257, 130), (610_000, 1_000)):
        frame = pd.DataFrame({"sample_id": [f"s{i:06d}" for i in range(n)], "split": "train", "source_kind": "video"})
        assert assign_shards(frame.assign(fold=-1, signer="", gloss="", text="", source="", fps=25.0, n_frames=1),
                             resolve_shard_size(shipped, n))["shard"].nunique() == expected


def test_target_shards_and_min_shard_size_steer_auto():
    assert resolve_shard_size({"shard_size": "auto", "target_shards": 10, "min_shard_size": 1}, 95) == 10
    assert resolve_shard_size({"shard_size": "auto", "target_shards": 10, "min_shard_size": 50}, 95) == 50
    with pytest.raises(ConfigError, match="shard_size"):
        validate_config({"datasets": {"d": {"adapter": "generic"}}, "preprocess": {"shard_size": "big"}})


def test_shards_rejects_a_mixed_shard():
    df = pd.DataFrame({"shard": [0, 0], "source_kind": ["video", "npy"]})
    with pytest.raises(ValueError, match="mixes source kinds"):
        shards(df)


# ------------------------------------------------------------------------------------ end to end (CLI)


def test_cli_writes_manifest_splits_and_metadata(tmp_path, caplog):
    root = generic_release(tmp_path / "data")
    config = write_config(tmp_path, {"own": {"adapter": "generic", "root": str(root), "fps": 25}},
                          preprocess={"shard_size": 2})
    out = tmp_path / "results" / "own"
    with caplog.at_level(logging.INFO, logger="hatl"):
        assert run_cli(config, "own", out, splits=True) == 0
    df = read_manifest(out / "manifest.parquet")
    assert list(df.columns) == ["sample_id", "split", "fold", "signer", "gloss", "text", "source", "source_kind",
                                "fps", "n_frames", "shard"]
    assert list(df["sample_id"]) == ["f3", "f4", "f0", "f1", "f2", "n0", "n1", "n2"]  # (kind, split, id)
    assert list(df["shard"]) == [0, 0, 1, 1, 2, 3, 3, 4]
    assert shards(df) == {0: "frames", 1: "frames", 2: "frames", 3: "npy", 4: "npy"}
    assert dict(zip(df["sample_id"], df["n_frames"])) == {"f0": 1, "f1": 2, "f2": 3, "f3": 4, "f4": 5,
                                                          "n0": 2, "n1": 2, "n2": 2}
    schema = pq.read_schema(out / "manifest.parquet")
    assert str(schema.field("fold").type) == "int32" and str(schema.field("fps").type) == "double"
    meta = manifest_meta(out / "manifest.parquet")
    assert meta["dataset"] == "own" and meta["adapter"] == "generic" and meta["root"] == str(root)
    assert meta["counts"] == {"dev": 2, "test": 3, "train": 3} and meta["skipped"] == []
    assert meta["annotation_only"] is False and meta["n_shards"] == 5
    assert meta["provenance"]["config"]["datasets"]["own"]["root"] == str(root)
    assert "code_version" in meta["provenance"]
    splits = pd.read_csv(out / "splits.tsv", sep="\t")
    assert list(splits.columns) == ["sample_id", "split", "fold"] and len(splits) == 8
    prov = json.loads(splits_provenance_path(out / "splits.tsv").read_text(encoding="utf-8"))
    assert prov["dataset"] == "own" and "code_version" in prov["provenance"]
    log = caplog.text
    assert "own (generic): 8 samples (dev 2, test 3, train 3)" in log and "skipped: 0" in log
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary leftovers


@pytest.mark.real_data
def test_cli_medasl_cv_with_skips_reported(tmp_path, caplog):
    root = real_data_path("medasl")
    config = write_config(tmp_path, {"md": {"adapter": "medasl", "root": str(root), "missing_sources": "skip",
                                            "cross_validation": {"folds": 5, "test_fraction": 0.2}}})
    out = tmp_path / "results" / "md"
    with caplog.at_level(logging.INFO, logger="hatl"):
        assert run_cli(config, "md", out, splits=True) == 0
    meta = manifest_meta(out / "manifest.parquet")
    assert meta["skipped_count"] == 497 and meta["skipped_reasons"] == {"missing npy folder": 497}
    assert sum(meta["counts"].values()) == 3
    assert "497 x missing npy folder" in caplog.text
    splits = pd.read_csv(out / "splits.tsv", sep="\t", dtype={"sample_id": str})
    assert set(splits["sample_id"]) == {"0004", "0017", "0032"}
    df = read_manifest(out / "manifest.parquet")
    for row in df.itertuples():
        assert (row.split == "test") == (row.fold == -1)


@pytest.mark.real_data
def test_cli_phoenix_annotation_only(tmp_path):
    root = real_data_path("phoenix14t")
    config = write_config(tmp_path, {"ph": {"adapter": "phoenix14t", "root": str(root), "annotations": "manual",
                                            "tasks": ["gloss2text"]}})
    out = tmp_path / "results" / "ph"
    assert run_cli(config, "ph", out) == 0
    meta = manifest_meta(out / "manifest.parquet")
    assert meta["counts"] == {"dev": 519, "test": 642, "train": 7096}
    assert meta["annotation_only"] is True and meta["n_shards"] == 130  # ceil(8257/64): auto gives 64 per shard at this size
    assert not (out / "splits.tsv").exists()


# ------------------------------------------------------------------------------------------- bad input


def _phoenix(root: Path, train_lines: list[str], frames: bool = True) -> Path:
    ann = root / "annotations" / "manual"
    ann.mkdir(parents=True)
    header = "name|video|start|end|speaker|orth|translation"
    for split in ("train", "dev", "test"):
        lines = [header, *(train_lines if split == "train" else [])]
        (ann / f"PHOENIX-2014-T.{split}.corpus.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if frames:
        folder = root / "features" / "fullFrame-210x260px" / "train" / "a"
        folder.mkdir(parents=True)
        (folder / "images0001.png").write_bytes(b"\x89PNG")
    return root


def case_wrong_field_count(tmp: Path):
    root = _phoenix(tmp / "ph", ["a|a/1/*.png|-1|-1|Signer01|G|t", "b|b/*.png|-1|-1|Signer01|G"])
    return {"adapter": "phoenix14t", "root": str(root)}, ["PHOENIX-2014-T.train.corpus.csv", "line 3 (b)", "6 fields"]


def case_empty_gloss(tmp: Path):
    folder = tmp / "ish" / "SI"
    folder.mkdir(parents=True)
    (folder / "train.txt").write_text("id|gloss|text\n00_0001||a\n", encoding="utf-8")
    (folder / "dev.txt").write_text("id|gloss|text\n02_0001|B|b\n", encoding="utf-8")
    return {"adapter": "isharah", "root": str(tmp / "ish"), "tasks": ["gloss2text"]}, \
        ["SI/train.txt", "line 2 (00_0001)", "empty gloss"]


def case_empty_text(tmp: Path):
    root = _phoenix(tmp / "ph", ["a|a/*.png|-1|-1|Signer01|G|"])
    return {"adapter": "phoenix14t", "root": str(root)}, ["PHOENIX-2014-T.train.corpus.csv", "line 2 (a)", "empty text"]


def case_duplicate_ids(tmp: Path):
    root = tmp / "own"
    root.mkdir()
    (root / "annotations.tsv").write_text(f"{TSV_HEADER}\nx\ttrain\t\tG\tt\tp\nx\tdev\t\tG\tt\tp\n", encoding="utf-8")
    return {"adapter": "generic", "root": str(root), "tasks": ["gloss2text"]}, \
        ["annotations.tsv", "line 3 (x)", "duplicate sample id 'x'"]


def case_wrong_size_npy(tmp: Path):
    root = tmp / "md"
    (root / "Annotations").mkdir(parents=True)
    (root / "Annotations" / "Gloss-Text Annotations.csv").write_text(
        "Text,Gloss,NpyFilesRoot\nhi,HI,/HI/*.npy\n", encoding="utf-8")
    (root / "Videos" / "HI").mkdir(parents=True)
    np.save(root / "Videos" / "HI" / "0.npy", np.zeros((2, 1662)))
    return {"adapter": "medasl", "root": str(root), "cross_validation": {}}, \
        ["Videos/HI/0.npy", "line 2 (sample 0001)", "(2, 1662)"]


def case_missing_root(tmp: Path):
    return {"adapter": "phoenix14t", "root": str(tmp / "absent")}, ["absent", "dataset bad", "root does not exist"]


def case_missing_frame_folder(tmp: Path):
    root = _phoenix(tmp / "ph", ["a|a/*.png|-1|-1|Signer01|G|t", "zz|zz/1/*.png|-1|-1|Signer01|G|t"])
    return {"adapter": "phoenix14t", "root": str(root)}, \
        ["fullFrame-210x260px/train/zz", "train.corpus.csv line 3 (zz)", "missing frame folder"]


def case_everything_skipped(tmp: Path):
    root = _phoenix(tmp / "ph", ["zz|zz/*.png|-1|-1|Signer01|G|t"])
    return {"adapter": "phoenix14t", "root": str(root), "missing_sources": "skip"}, \
        [str(root), "dataset bad", "no samples left", "missing frame folder x1"]


BAD_CASES = [case_wrong_field_count, case_empty_gloss, case_empty_text, case_duplicate_ids, case_wrong_size_npy,
             case_missing_root, case_missing_frame_folder, case_everything_skipped]


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda c: c.__name__[5:])
def test_bad_input_exits_2_names_file_and_record_and_writes_nothing(tmp_path, caplog, case):
    ds, expected = case(tmp_path)
    config = write_config(tmp_path, {"bad": ds})
    out = tmp_path / "results" / "bad"
    with caplog.at_level(logging.ERROR, logger="hatl"):
        assert run_cli(config, "bad", out, splits=True) == 2
    message = caplog.text
    for fragment in expected:
        assert fragment in message, (fragment, message)
    assert not out.exists() or list(out.iterdir()) == []


def test_unknown_config_key(tmp_path, caplog):
    with pytest.raises(ConfigError, match=r"datasets\.x.*'colour' was unexpected"):
        validate_config({"datasets": {"x": {"adapter": "generic", "colour": "blue"}}})
    config = write_config(tmp_path, {"x": {"adapter": "generic", "root": str(tmp_path), "colour": "blue"}})
    out = tmp_path / "results" / "x"
    with caplog.at_level(logging.ERROR, logger="hatl"):
        assert run_cli(config, "x", out) == 2
    assert "config.yaml" in caplog.text and "colour" in caplog.text
    assert not out.exists()


def test_unknown_dataset_and_null_root(tmp_path, caplog):
    config = write_config(tmp_path, {"x": {"adapter": "phoenix14t"}})
    with caplog.at_level(logging.ERROR, logger="hatl"):
        assert run_cli(config, "nope", tmp_path / "out") == 2
        assert run_cli(config, "x", tmp_path / "out") == 2
    assert "dataset 'nope' is not in the config" in caplog.text
    assert "datasets.x.root" in caplog.text
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------- contracts


def test_demo_adapter_registered_lazily():
    assert ADAPTERS["demo"] == "hatl.datasets.demo"
    assert set(ADAPTERS) == {"demo", "phoenix14t", "isharah", "medasl", "generic", "isl_kinect", "boston104"}
    # the registry and the other adapters never import the demo generator
    code = ("import sys, hatl.datasets as d; d.get_adapter('generic'); d.get_adapter('medasl'); "
            "import hatl.datasets.manifest; print('hatl.datasets.demo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    with pytest.raises(ConfigError, match="unknown dataset adapter 'pose'"):
        get_adapter("pose")


def test_check_rows_rejects_adapter_bugs():
    good = {"sample_id": "a", "split": "train", "fold": -1, "signer": "", "gloss": "", "text": "", "source": "",
            "source_kind": "video", "fps": 25.0, "n_frames": 1}
    check_rows([good], None, "x")
    with pytest.raises(ValueError, match="unexpected keys \\['shard'\\]"):
        check_rows([{**good, "shard": 0}], None, "x")
    with pytest.raises(TypeError, match="'n_frames' is str"):
        check_rows([{**good, "n_frames": "1"}], None, "x")
    with pytest.raises(ValueError, match="source_kind 'pose'"):
        check_rows([{**good, "source_kind": "pose"}], None, "x")
    with pytest.raises(ValueError, match="mix"):
        check_rows([good, {**good, "sample_id": "b", "split": "trainval", "fold": 0}], None, "x")
    with pytest.raises(ValueError, match="split trainval with fold -1"):
        check_rows([{**good, "split": "trainval"}], None, "x")
    with pytest.raises(InputError, match="sample a.*duplicate sample id"):
        check_rows([good, good], "/data", "x")


def test_readers_refuse_missing_or_foreign_files(tmp_path):
    with pytest.raises(InputError, match="manifest does not exist"):
        read_manifest(tmp_path / "none.parquet")
    other = tmp_path / "other.parquet"
    pd.DataFrame({"a": [1]}).to_parquet(other)
    with pytest.raises(InputError, match="missing columns"):
        read_manifest(other)
    with pytest.raises(InputError, match="no 'hatl' schema metadata"):
        manifest_meta(other)


def test_build_manifest_is_deterministic(tmp_path):
    root = generic_release(tmp_path / "data")
    config = validate_config({"datasets": {"own": {"adapter": "generic", "root": str(root), "fps": 25,
                                                    "cross_validation": None}}})
    a, b = build_manifest(config, "own"), build_manifest(config, "own")
    assert a.frame.equals(b.frame)
    assert a.meta["counts"] == b.meta["counts"]
