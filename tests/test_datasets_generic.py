"""Generic TSV adapter: video files, frame folders and npy folders; cross-validation; bad input."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from hatl.config import validate_config
from hatl.datasets import generic
from hatl.errors import InputError

HEADER = "id\tsplit\tvideo\tgloss\ttext\tsigner"


def ds_cfg(root: Path, **over) -> tuple[dict, dict]:
    config = validate_config({"datasets": {"own": {"adapter": "generic", "root": str(root), **over}}})
    return config["datasets"]["own"], config


def write_video(path: Path, n_frames: int, fps: float = 24.0) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (32, 32))
    for i in range(n_frames):
        writer.write(np.full((32, 32, 3), 10 * i, np.uint8))
    writer.release()


def make_sources(root: Path) -> dict[str, Path]:
    write_video(root / "clips" / "v1.avi", 5)
    frames = root / "frames" / "f1"
    frames.mkdir(parents=True)
    for i in range(4):
        (frames / f"{i:03d}.png").write_bytes(b"\x89PNG")
    npy = root / "npy" / "n1"
    npy.mkdir(parents=True)
    for i in range(3):
        np.save(npy / f"{i}.npy", np.zeros(1662))
    return {"video": root / "clips" / "v1.avi", "frames": frames, "npy": npy}


def write_tsv(path: Path, lines: list[str], header: str = HEADER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def test_three_source_kinds_relative_and_absolute(tmp_path):
    src = make_sources(tmp_path)
    write_tsv(tmp_path / "annotations.tsv", [
        "a\ttrain\tclips/v1.avi\tA B\ta b\tp1",
        f"b\tdev\t{src['frames']}\tC\tc\tp2",  # absolute
        "c\ttest\tnpy/n1\tD\td\tp1",
    ])
    cfg, config = ds_cfg(tmp_path, fps=25)
    rows, skipped = generic.build_rows("own", cfg, config)
    got = {r["sample_id"]: (r["split"], r["source_kind"], r["n_frames"], r["fps"], r["signer"]) for r in rows}
    assert got == {
        "a": ("train", "video", 5, 24.0, "p1"),  # the container's rate wins over the configured one
        "b": ("dev", "frames", 4, 25.0, "p2"),
        "c": ("test", "npy", 3, 25.0, "p1"),
    }
    assert rows[0]["source"] == str(tmp_path / "clips" / "v1.avi") and skipped == []


def test_columns_in_any_order_and_root_as_file(tmp_path):
    make_sources(tmp_path)
    path = write_tsv(tmp_path / "my.tsv", ["G\tt\ts9\tx1\ttrain\tclips/v1.avi"],
                     header="gloss\ttext\tsigner\tid\tsplit\tvideo")
    cfg, config = ds_cfg(path)
    rows, _ = generic.build_rows("own", cfg, config)
    assert (rows[0]["sample_id"], rows[0]["gloss"], rows[0]["signer"]) == ("x1", "G", "s9")


def test_annotation_only_rows_for_text_tasks(tmp_path):
    write_tsv(tmp_path / "annotations.tsv", ["a\ttrain\t\tA\ta\tp"])
    cfg, config = ds_cfg(tmp_path, tasks=["gloss2text"])
    rows, _ = generic.build_rows("own", cfg, config)
    assert (rows[0]["source"], rows[0]["n_frames"]) == ("", 0)
    cfg, config = ds_cfg(tmp_path)
    with pytest.raises(InputError, match=r"annotations\.tsv \[line 2 \(a\)\]: empty video"):
        generic.build_rows("own", cfg, config)


def test_cross_validation_assigns_splits(tmp_path):
    src = make_sources(tmp_path)
    lines = [f"s{i}\t\t{src['npy']}\tG\tt\tp" for i in range(10)]  # all share one source: one group
    write_tsv(tmp_path / "annotations.tsv", lines)
    cfg, config = ds_cfg(tmp_path, fps=30, cross_validation={"folds": 3})
    rows, _ = generic.build_rows("own", cfg, config)
    assert len({(r["split"], r["fold"]) for r in rows}) == 1
    lines = [f"s{i}\t\t\tG\tt\tp" for i in range(10)]  # annotation-only: each id its own group
    write_tsv(tmp_path / "annotations.tsv", lines)
    cfg, config = ds_cfg(tmp_path, tasks=["gloss2text"], cross_validation={"folds": 3, "test_fraction": 0.2})
    rows, _ = generic.build_rows("own", cfg, config)
    assert Counter(r["split"] for r in rows) == {"trainval": 8, "test": 2}
    write_tsv(tmp_path / "annotations.tsv", ["s1\ttrain\t\tG\tt\tp"])
    with pytest.raises(InputError, match=r"\[line 2 \(s1\)\]: split 'train' given, but cross_validation"):
        generic.build_rows("own", cfg, config)


@pytest.mark.parametrize(("lines", "record", "problem"), [
    (["a\ttrain\tclips/v1.avi\tA\ta"], "line 2 (a)", "5 fields, expected 6"),
    (["a\ttrain\tclips/v1.avi\tA\t\tp"], "line 2 (a)", "empty text"),
    (["a\ttrain\tclips/v1.avi\t\ta\tp"], "line 2 (a)", "empty gloss"),
    (["a\ttrain\tclips/v1.avi\tA\ta\tp", "a\tdev\tclips/v1.avi\tA\ta\tp"], "line 3 (a)", "duplicate sample id 'a'"),
    (["a\tvalid\tclips/v1.avi\tA\ta\tp"], "line 2 (a)", "split 'valid' is not one of train, dev, test"),
    (["a\ttrain\tclips/none.avi\tA\ta\tp"], "annotations.tsv line 2 (a)", "missing source"),
    (["a\ttrain\tframes/f1\tA\ta\tp"], "annotations.tsv line 2 (a)", "set the dataset's fps"),
    (["a\ttrain\tannotations.tsv\tA\ta\tp"], "annotations.tsv line 2 (a)", "not a video file"),
])
def test_bad_input(tmp_path, lines, record, problem):
    make_sources(tmp_path)
    write_tsv(tmp_path / "annotations.tsv", lines)
    cfg, config = ds_cfg(tmp_path)
    with pytest.raises(InputError) as err:
        generic.build_rows("own", cfg, config)
    assert err.value.record == record
    assert problem in err.value.problem


def test_bad_header_and_missing_tsv(tmp_path):
    write_tsv(tmp_path / "annotations.tsv", [], header="id\tsplit\tvideo")
    cfg, config = ds_cfg(tmp_path)
    with pytest.raises(InputError, match=r"annotations\.tsv \[line 1\]: header"):
        generic.build_rows("own", cfg, config)
    cfg, config = ds_cfg(tmp_path, annotations="other.tsv")
    with pytest.raises(InputError, match=r"other\.tsv: annotation file does not exist"):
        generic.build_rows("own", cfg, config)


# ------------------------------------------------------------------------- empty files, several bad sources
def test_zero_byte_video_is_called_empty_and_skip_leaves_it_out_counted(tmp_path):
    make_sources(tmp_path)
    (tmp_path / "clips" / "empty.mp4").write_bytes(b"")
    write_tsv(tmp_path / "annotations.tsv", ["a\ttrain\tclips/v1.avi\tA\ta\tp", "e\ttrain\tclips/empty.mp4\tE\te\tp"])
    cfg, config = ds_cfg(tmp_path)
    with pytest.raises(InputError) as err:
        generic.build_rows("own", cfg, config)
    assert err.value.path == str(tmp_path / "clips" / "empty.mp4") and err.value.record == "annotations.tsv line 3 (e)"
    assert err.value.problem.startswith("empty video file (0 bytes); set missing_sources: skip")
    cfg, config = ds_cfg(tmp_path, missing_sources="skip")
    rows, skipped = generic.build_rows("own", cfg, config)
    assert [r["sample_id"] for r in rows] == ["a"]
    assert skipped == [{"record": "annotations.tsv line 3 (e)", "reason": f"empty video file: {tmp_path / 'clips' / 'empty.mp4'}"}]


def test_every_bad_source_is_named_up_to_a_limit(tmp_path):
    make_sources(tmp_path)
    (tmp_path / "clips" / "empty.mp4").write_bytes(b"")
    lines = ["a\ttrain\tclips/v1.avi\tA\ta\tp", "e\ttrain\tclips/empty.mp4\tE\te\tp", "m\ttrain\tclips/none.avi\tM\tm\tp"]
    write_tsv(tmp_path / "annotations.tsv", lines)
    cfg, config = ds_cfg(tmp_path)
    with pytest.raises(InputError) as err:
        generic.build_rows("own", cfg, config)
    assert err.value.record == "annotations.tsv line 3 (e)"  # the first, as a single error would be
    msg = str(err.value)
    assert "empty video file (0 bytes)" in msg
    assert f"1 more bad source(s) in {tmp_path / 'annotations.tsv'}:" in msg
    assert f"- {tmp_path / 'clips' / 'none.avi'} [annotations.tsv line 4 (m)]: missing source" in msg
    many = [f"m{i}\ttrain\tclips/none{i}.avi\tM\tm\tp" for i in range(13)]
    write_tsv(tmp_path / "annotations.tsv", many)
    with pytest.raises(InputError) as err:
        generic.build_rows("own", cfg, config)
    msg = str(err.value)
    assert "12 more bad source(s)" in msg and msg.endswith("... and 3 more")
    assert [f"(m{i})" in msg for i in range(13)] == [True] * 10 + [False] * 3
