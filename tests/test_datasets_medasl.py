"""MedASL adapter: the real CSV and its three keypoint sequences, folder resolution, the seeded CV split."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import real_data_path

from hatl.config import validate_config
from hatl.datasets import base, medasl
from hatl.errors import ConfigError, InputError

REAL_SEQUENCES = {  # folder -> frames, from shared/data/medasl/SOURCES.md
    "ALLERGY SKIN TEST DO WILL": 58,
    "ARM KEEP ELEVATE REDUCE SWELLING": 67,
    "BLOOD PRESSURE CHECK REGULAR IMPORTANT": 65,
}
ABSOLUTE_ROW = "ACTIVITY SPECIFIC MORE LESS DO SHOULD?"


def ds_cfg(root: Path, seed: int = 1234, **over) -> tuple[dict, dict]:
    over.setdefault("cross_validation", {"folds": 5, "test_fraction": 0.2})
    config = validate_config({"seed": seed, "datasets": {"md": {"adapter": "medasl", "root": str(root), **over}}})
    return config["datasets"]["md"], config


def write_release(root: Path, rows: list[tuple[str, str, str]], folders: dict[str, int], size: int = 1662) -> None:
    (root / "Annotations").mkdir(parents=True)
    with open(root / "Annotations" / "Gloss-Text Annotations.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Text", "Gloss", "NpyFilesRoot"])
        writer.writerows(rows)
    for name, n in folders.items():
        folder = root / "Videos" / name
        folder.mkdir(parents=True)
        for i in range(n):
            np.save(folder / f"{i}.npy", np.full(size, i, dtype=np.float64))


# ------------------------------------------------------------------------------------------ real data


@pytest.mark.real_data
def test_real_csv_parses_500_rows():
    path = real_data_path("medasl", "Annotations", "Gloss-Text Annotations.csv")
    skipped: list[dict] = []
    items = medasl.read_annotations(path, ["sign2gloss2text", "sign2text"], skipped)
    assert len(items) == 500 and skipped == []
    assert [i["id"] for i in items[:3]] == ["0001", "0002", "0003"]
    assert items[0]["gloss"] == "ACTIVE STAY, MOBILE HELP, HOW CAN?"  # quoted field with commas
    assert items[0]["folder"] == "ACTIVE STAY, MOBILE HELP, HOW CAN?"
    assert items[1]["folder"] == ABSOLUTE_ROW  # the absolute path from the authors' machine, reduced to its folder
    assert len({i["folder"] for i in items}) == 500


@pytest.mark.real_data
def test_real_sequences_found_and_the_rest_skipped():
    root = real_data_path("medasl")
    cfg, config = ds_cfg(root, missing_sources="skip")
    rows, skipped = medasl.build_rows("md", cfg, config)
    assert {Path(r["source"]).name: r["n_frames"] for r in rows} == REAL_SEQUENCES
    assert all(r["source_kind"] == "npy" and r["fps"] == 30.0 and r["signer"] == "signer01" for r in rows)
    texts = {Path(r["source"]).name: r["text"] for r in rows}
    assert texts["ALLERGY SKIN TEST DO WILL"] == "we'll be performing an allergy skin test"
    assert len(skipped) == 497
    # the absolute-path row is looked up under <root>/Videos, not on the authors' machine
    abs_skip = next(s for s in skipped if s["record"].endswith("(sample 0002)"))
    assert abs_skip["reason"] == f"missing npy folder: {Path(root).absolute() / 'Videos' / ABSOLUTE_ROW}"
    assert all(r["split"] in ("trainval", "test") for r in rows)


@pytest.mark.real_data
def test_real_frames_numeric_order_and_1662_values():
    root = real_data_path("medasl", "Videos")
    for name, n in REAL_SEQUENCES.items():
        files = base.npy_frame_files(root / name, name)
        assert [f.name for f in files[:12]] == [f"{i}.npy" for i in range(12)]  # 0,1,2,...,10,11 (not 0,1,10,11)
        assert len(files) == n
        first = np.load(files[0])
        assert first.shape == (1662,) and first.dtype == np.float64


@pytest.mark.real_data
def test_real_missing_folders_are_fatal_by_default():
    root = real_data_path("medasl")
    cfg, config = ds_cfg(root)
    with pytest.raises(InputError) as err:
        medasl.build_rows("md", cfg, config)
    assert err.value.path.endswith("Videos/ACTIVE STAY, MOBILE HELP, HOW CAN?")
    assert err.value.record == "Gloss-Text Annotations.csv line 2 (sample 0001)"


# ------------------------------------------------------------------------------------ synthetic release


def test_folder_name_from_npy_files_root():
    assert medasl.folder_name("/A B?/*.npy") == "A B?"
    assert medasl.folder_name("/Users/x/Data sets/C D/*.npy") == "C D"
    assert medasl.folder_name("C:\\data\\E F\\*.npy") == "E F"
    assert medasl.folder_name("/*.npy") == ""


def test_absolute_path_and_question_mark_fallback(tmp_path):
    rows = [
        ("how are you?", "YOU HOW?", "/Users/someone/Desktop/videos/YOU HOW?/*.npy"),  # absolute, exists
        ("is it sore?", "SORE IT?", "/SORE IT?/*.npy"),  # on disk without the '?'
        ("hello", "HELLO", "/HELLO/*.npy"),
    ]
    write_release(tmp_path, rows, {"YOU HOW?": 3, "SORE IT": 12, "HELLO": 2})
    cfg, config = ds_cfg(tmp_path, cross_validation={"folds": 2, "test_fraction": 0.34})
    out, skipped = medasl.build_rows("md", cfg, config)
    by_id = {r["sample_id"]: r for r in out}
    assert by_id["0001"]["source"] == str(tmp_path / "Videos" / "YOU HOW?")
    assert by_id["0002"]["source"] == str(tmp_path / "Videos" / "SORE IT") and by_id["0002"]["n_frames"] == 12
    assert by_id["0003"]["n_frames"] == 2 and skipped == []
    assert Counter(r["split"] for r in out) == {"trainval": 2, "test": 1}


def test_wrong_size_npy_is_fatal(tmp_path):
    write_release(tmp_path, [("hi", "HI", "/HI/*.npy")], {"HI": 2}, size=1000)
    cfg, config = ds_cfg(tmp_path)
    with pytest.raises(InputError) as err:
        medasl.build_rows("md", cfg, config)
    assert err.value.path == str(tmp_path / "Videos" / "HI" / "0.npy")
    assert err.value.record == "Gloss-Text Annotations.csv line 2 (sample 0001)"
    assert "(1000,)" in err.value.problem and "(1662,)" in err.value.problem


def test_gap_in_frame_numbers_is_fatal(tmp_path):
    write_release(tmp_path, [("hi", "HI", "/HI/*.npy")], {"HI": 4})
    (tmp_path / "Videos" / "HI" / "2.npy").unlink()
    cfg, config = ds_cfg(tmp_path)
    with pytest.raises(InputError, match=r"HI \[.*sample 0001\)\]: frame files are not numbered 0\.\.2: 2\.npy is missing"):
        medasl.build_rows("md", cfg, config)


def test_bad_csv_rows(tmp_path):
    write_release(tmp_path, [("hi", "HI", "/HI/*.npy")], {"HI": 1})
    ann = tmp_path / "Annotations" / "Gloss-Text Annotations.csv"
    cfg, config = ds_cfg(tmp_path)
    ann.write_text('Text,Gloss,NpyFilesRoot\nhi,HI,/HI/*.npy\n"a, b",B\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"Annotations\.csv \[line 3\]: 2 fields, expected 3"):
        medasl.build_rows("md", cfg, config)
    ann.write_text("Text,Gloss,NpyFilesRoot\n,HI,/HI/*.npy\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"Annotations\.csv \[line 2 \(sample 0001\)\]: empty text"):
        medasl.build_rows("md", cfg, config)
    ann.write_text("#,Text,Gloss,NpyFilesRoot\n7,hi,HI,/HI/*.npy\n7,hello,HI,/HI/*.npy\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"Annotations\.csv \[line 3 \(sample 0007\)\]: duplicate sample id '0007'"):
        medasl.build_rows("md", cfg, config)


def test_medasl2000_paraphrases_share_a_folder_and_a_split(tmp_path):
    rows = [(f"text {i}", f"G{i % 4}", f"/G{i % 4}/*.npy") for i in range(12)]
    write_release(tmp_path, rows, {f"G{k}": 2 for k in range(4)})
    ann = tmp_path / "Annotations" / "Gloss-Text Annotations.csv"
    lines = ann.read_text(encoding="utf-8").splitlines()
    ann.write_text("\n".join(["#," + lines[0]] + [f"{i + 1},{x}" for i, x in enumerate(lines[1:])]) + "\n", encoding="utf-8")
    cfg, config = ds_cfg(tmp_path, cross_validation={"folds": 2, "test_fraction": 0.25})
    out, _ = medasl.build_rows("md", cfg, config)
    assert len(out) == 12
    per_folder = {}
    for r in out:
        per_folder.setdefault(r["source"], set()).add((r["split"], r["fold"]))
    assert all(len(v) == 1 for v in per_folder.values())
    assert sum(r["split"] == "test" for r in out) == 3  # one folder of four, three paraphrases


def test_cv_requires_configuration(tmp_path):
    write_release(tmp_path, [("hi", "HI", "/HI/*.npy")], {"HI": 1})
    cfg, config = ds_cfg(tmp_path, cross_validation=None)
    with pytest.raises(ConfigError, match="cross_validation"):
        medasl.build_rows("md", cfg, config)


# ------------------------------------------------------------------------------------ the split itself


def test_assign_cross_validation_is_seeded_balanced_and_order_free():
    keys = [f"s{i:03d}" for i in range(100)]
    a = base.assign_cross_validation(keys, 5, 0.2, seed=7)
    b = base.assign_cross_validation(list(reversed(keys)), 5, 0.2, seed=7)
    c = base.assign_cross_validation(keys, 5, 0.2, seed=8)
    assert a == b and a != c
    assert Counter(split for split, _ in a.values()) == {"trainval": 80, "test": 20}
    assert Counter(fold for split, fold in a.values() if split == "trainval") == {k: 16 for k in range(5)}
    assert all(fold == -1 for split, fold in a.values() if split == "test")


def test_assign_cross_validation_keeps_both_parts_when_tiny():
    assert sorted(s for s, _ in base.assign_cross_validation(["a", "b"], 5, 0.2, 0).values()) == ["test", "trainval"]
    assert base.assign_cross_validation(["a"], 5, 0.2, 0) == {"a": ("trainval", 0)}
