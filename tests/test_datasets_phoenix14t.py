"""PHOENIX14T adapter: the real corpus CSVs, a synthetic release with frame folders, and bad input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import real_data_path

from hatl.config import validate_config
from hatl.datasets import phoenix14t
from hatl.errors import InputError

HEADER = "name|video|start|end|speaker|orth|translation"


def ds_cfg(root: Path, **over) -> tuple[dict, dict]:
    config = validate_config({"datasets": {"ph": {"adapter": "phoenix14t", "root": str(root), **over}}})
    return config["datasets"]["ph"], config


def write_release(root: Path, rows: dict[str, list[str]], frames: dict[tuple[str, str], int]) -> None:
    """rows: split -> data lines; frames: (split, relative folder) -> number of PNGs to create."""
    ann = root / "annotations" / "manual"
    ann.mkdir(parents=True)
    for split in ("train", "dev", "test"):
        lines = [HEADER, *rows.get(split, [])]
        (ann / f"PHOENIX-2014-T.{split}.corpus.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for (split, rel), n in frames.items():
        folder = root / "features" / "fullFrame-210x260px" / split / rel
        folder.mkdir(parents=True)
        for i in range(n):
            (folder / f"images{i + 1:04d}.png").write_bytes(b"\x89PNG")


def line(name: str, video: str, gloss: str = "REGEN KOMMEN", text: str = "es regnet", signer: str = "Signer01") -> str:
    return f"{name}|{video}|-1|-1|{signer}|{gloss}|{text}"


# ------------------------------------------------------------------------------------------ real data


@pytest.mark.real_data
def test_real_corpus_counts_annotation_only():
    root = real_data_path("phoenix14t")
    cfg, config = ds_cfg(root, annotations="manual", tasks=["gloss2text"])
    rows, skipped = phoenix14t.build_rows("ph", cfg, config)
    counts = {s: sum(r["split"] == s for r in rows) for s in ("train", "dev", "test")}
    assert counts == {"train": 7096, "dev": 519, "test": 642}
    assert skipped == []
    assert all(r["gloss"] and r["text"] for r in rows)
    assert len({r["signer"] for r in rows}) == 9
    first_dev = next(r for r in rows if r["split"] == "dev")
    assert first_dev["sample_id"] == "11August_2010_Wednesday_tagesschau-2"
    assert first_dev["gloss"] == "DRUCK TIEF KOMMEN"
    assert first_dev["text"].startswith("tiefer luftdruck bestimmt")
    # no frames here: rows point where the release keeps them and carry n_frames 0
    assert all(r["n_frames"] == 0 and r["fps"] == 25.0 and r["source_kind"] == "frames" for r in rows)
    assert first_dev["source"].endswith("features/fullFrame-210x260px/dev/11August_2010_Wednesday_tagesschau-2")


@pytest.mark.real_data
def test_real_corpus_without_frames_refuses_sign_tasks():
    root = real_data_path("phoenix14t")
    cfg, config = ds_cfg(root, annotations="manual")  # default tasks: sign2gloss2text, sign2text
    with pytest.raises(InputError) as err:
        phoenix14t.build_rows("ph", cfg, config)
    assert "fullFrame-210x260px" in str(err.value)
    assert "dataset ph" in str(err.value)
    assert "sign2gloss2text" in str(err.value)


# ------------------------------------------------------------------------------------ synthetic release


def test_both_video_column_forms_resolve(tmp_path):
    rows = {
        "train": [
            line("a", "a/1/*.png"),  # official column, frames directly in a/ (the official layout)
            line("b", "b/1/*.png"),  # frames really in b/1/
            line("c", "c/*.png"),    # edited column, frames in c/
        ],
        "dev": [line("d", "d/*.png")],  # edited column, frames in d/1/
        "test": [line("e", "e/*.png", signer="Signer05")],
    }
    frames = {("train", "a"): 3, ("train", "b/1"): 4, ("train", "c"): 5, ("dev", "d/1"): 2, ("test", "e"): 6}
    write_release(tmp_path, rows, frames)
    cfg, config = ds_cfg(tmp_path)
    out, skipped = phoenix14t.build_rows("ph", cfg, config)
    by_id = {r["sample_id"]: r for r in out}
    fr = tmp_path / "features" / "fullFrame-210x260px"
    assert {k: v["n_frames"] for k, v in by_id.items()} == {"a": 3, "b": 4, "c": 5, "d": 2, "e": 6}
    assert by_id["a"]["source"] == str(fr / "train" / "a")
    assert by_id["b"]["source"] == str(fr / "train" / "b" / "1")
    assert by_id["d"]["source"] == str(fr / "dev" / "d" / "1")
    assert by_id["e"]["split"] == "test" and by_id["e"]["signer"] == "Signer05" and by_id["e"]["fold"] == -1
    assert skipped == []


def test_missing_frame_folder_is_an_error_naming_folder_and_record(tmp_path):
    write_release(tmp_path, {"train": [line("a", "a/*.png"), line("gone", "gone/1/*.png")]}, {("train", "a"): 2})
    cfg, config = ds_cfg(tmp_path)
    with pytest.raises(InputError) as err:
        phoenix14t.build_rows("ph", cfg, config)
    msg = str(err.value)
    assert "train/gone" in msg and "PHOENIX-2014-T.train.corpus.csv line 3 (gone)" in msg
    assert "missing frame folder" in msg


def test_missing_frame_folder_skipped_when_configured(tmp_path):
    write_release(tmp_path, {"train": [line("a", "a/*.png"), line("gone", "gone/*.png")]}, {("train", "a"): 2})
    cfg, config = ds_cfg(tmp_path, missing_sources="skip")
    rows, skipped = phoenix14t.build_rows("ph", cfg, config)
    assert [r["sample_id"] for r in rows] == ["a"]
    assert len(skipped) == 1 and "(gone)" in skipped[0]["record"]
    assert skipped[0]["reason"].startswith("missing frame folder: ")


def test_wrong_field_count(tmp_path):
    write_release(tmp_path, {"dev": [line("a", "a/*.png"), "b|b/*.png|-1|-1|Signer01|GLOSS"]}, {("dev", "a"): 1})
    cfg, config = ds_cfg(tmp_path)
    with pytest.raises(InputError) as err:
        phoenix14t.build_rows("ph", cfg, config)
    assert err.value.path.endswith("PHOENIX-2014-T.dev.corpus.csv")
    assert err.value.record == "line 3 (b)"
    assert "6 fields, expected 7" in err.value.problem


def test_empty_gloss_fatal_only_when_a_task_needs_it(tmp_path):
    write_release(tmp_path, {"test": [line("a", "a/*.png", gloss="")]}, {("test", "a"): 1})
    cfg, config = ds_cfg(tmp_path)  # sign2gloss2text needs glosses
    with pytest.raises(InputError) as err:
        phoenix14t.build_rows("ph", cfg, config)
    assert "PHOENIX-2014-T.test.corpus.csv [line 2 (a)]" in str(err.value)
    assert "empty gloss" in str(err.value)
    cfg, config = ds_cfg(tmp_path, tasks=["sign2text"])
    rows, _ = phoenix14t.build_rows("ph", cfg, config)
    assert rows[0]["gloss"] == ""


def test_empty_text_is_fatal(tmp_path):
    write_release(tmp_path, {"train": [line("a", "a/*.png", text="")]}, {("train", "a"): 1})
    cfg, config = ds_cfg(tmp_path, tasks=["sign2text"])
    with pytest.raises(InputError, match=r"train\.corpus\.csv \[line 2 \(a\)\]: empty text"):
        phoenix14t.build_rows("ph", cfg, config)


def test_duplicate_id_across_splits(tmp_path):
    write_release(tmp_path, {"train": [line("a", "a/*.png")], "dev": [line("a", "a/*.png")]},
                  {("train", "a"): 1, ("dev", "a"): 1})
    cfg, config = ds_cfg(tmp_path)
    with pytest.raises(InputError) as err:
        phoenix14t.build_rows("ph", cfg, config)
    assert err.value.path.endswith("PHOENIX-2014-T.dev.corpus.csv") and err.value.record == "line 2 (a)"
    assert "duplicate sample id 'a'" in err.value.problem and "train.corpus.csv line 2" in err.value.problem


def test_missing_root_and_missing_split_file(tmp_path):
    cfg, config = ds_cfg(tmp_path / "nowhere")
    with pytest.raises(InputError, match="nowhere \\[dataset ph\\]: dataset root does not exist"):
        phoenix14t.build_rows("ph", cfg, config)
    write_release(tmp_path, {}, {})
    (tmp_path / "annotations" / "manual" / "PHOENIX-2014-T.test.corpus.csv").unlink()
    cfg, config = ds_cfg(tmp_path, tasks=["gloss2text"])
    with pytest.raises(InputError, match="PHOENIX-2014-T.test.corpus.csv: annotation file does not exist"):
        phoenix14t.build_rows("ph", cfg, config)


def test_bad_header(tmp_path):
    write_release(tmp_path, {}, {})
    (tmp_path / "annotations" / "manual" / "PHOENIX-2014-T.train.corpus.csv").write_text("name|orth\n", encoding="utf-8")
    cfg, config = ds_cfg(tmp_path, tasks=["gloss2text"])
    with pytest.raises(InputError, match=r"train\.corpus\.csv \[line 1\]: unexpected header"):
        phoenix14t.build_rows("ph", cfg, config)


def test_cross_validation_rejected(tmp_path):
    from hatl.errors import ConfigError

    write_release(tmp_path, {}, {})
    cfg, config = ds_cfg(tmp_path, cross_validation={"folds": 3})
    with pytest.raises(ConfigError, match="predefined splits"):
        phoenix14t.build_rows("ph", cfg, config)


def test_a_gap_in_a_frame_folder_is_fatal(tmp_path):
    write_release(tmp_path, {"train": [line("a", "a/*.png")]}, {("train", "a"): 12})
    folder = tmp_path / "features" / "fullFrame-210x260px" / "train" / "a"
    (folder / "images0010.png").unlink()
    for policy in ("error", "skip"):  # a gap is damage, not a missing source: never a silent skip
        cfg, config = ds_cfg(tmp_path, missing_sources=policy)
        with pytest.raises(InputError) as err:
            phoenix14t.build_rows("ph", cfg, config)
        assert err.value.path == str(folder)
        assert err.value.record == "PHOENIX-2014-T.train.corpus.csv line 2 (a)"
        assert err.value.problem == "frame numbering has a gap: images0010.png missing (11 frames numbered 1..12)"


@pytest.mark.parametrize(("remove", "add", "problem"), [
    (["images0001.png", "images0002.png"], [], "images0001.png, images0002.png missing (2 frames numbered 3..4)"),
    ([], ["frame.png"], "frame file name carries no frame number"),
    ([], ["img0005.png"], "frame files mix name patterns"),
    ([], ["images04.png"], "frame number 4 occurs twice"),
])
def test_frames_that_cannot_be_ordered_without_gaps_are_fatal(tmp_path, remove, add, problem):
    write_release(tmp_path, {"dev": [line("a", "a/*.png")]}, {("dev", "a"): 4})
    folder = tmp_path / "features" / "fullFrame-210x260px" / "dev" / "a"
    for name in remove:
        (folder / name).unlink()
    for name in add:
        (folder / name).write_bytes(b"\x89PNG")
    cfg, config = ds_cfg(tmp_path)
    with pytest.raises(InputError, match=re.escape(problem)):
        phoenix14t.build_rows("ph", cfg, config)


def test_two_missing_frame_folders_are_both_named(tmp_path):
    write_release(tmp_path, {"train": [line("a", "a/*.png"), line("gone", "gone/*.png"), line("lost", "lost/*.png")]},
                  {("train", "a"): 2})
    cfg, config = ds_cfg(tmp_path)
    with pytest.raises(InputError) as err:
        phoenix14t.build_rows("ph", cfg, config)
    msg = str(err.value)
    assert err.value.record == "PHOENIX-2014-T.train.corpus.csv line 3 (gone)"
    assert "1 more bad source(s)" in msg and "PHOENIX-2014-T.train.corpus.csv line 4 (lost)]: missing frame folder" in msg
