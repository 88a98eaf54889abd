"""Isharah adapter: both real annotation releases, synthetic videos, and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import real_data_path

from hatl.config import validate_config
from hatl.datasets import isharah
from hatl.errors import ConfigError, InputError


def ds_cfg(root: Path, **over) -> tuple[dict, dict]:
    config = validate_config({"datasets": {"ish": {"adapter": "isharah", "root": str(root), **over}}})
    return config["datasets"]["ish"], config


def write_video(path: Path, n_frames: int, fps: float = 30.0) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (32, 32))
    assert writer.isOpened()
    for i in range(n_frames):
        writer.write(np.full((32, 32, 3), 20 * i % 255, np.uint8))
    writer.release()


def write_protocol(root: Path, files: dict[str, str], protocol: str = "SI") -> Path:
    folder = root / protocol
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_text(content, encoding="utf-8")
    return folder


# ------------------------------------------------------------------------------------------ real data

REAL_COUNTS = [  # data rows per file, from shared/data/isharah/SOURCES.md
    ("annotations_v2_2025", "SI", "train", 10000, True),
    ("annotations_v2_2025", "SI", "dev", 949, False),
    ("annotations_v2_2025", "US", "train", 9900, False),
    ("annotations_v2_2025", "US", "dev", 550, False),
    ("isharah2000", "SI", "train", 19500, False),
    ("isharah2000", "SI", "dev", 1950, False),
    ("isharah2000", "US", "train", 20899, False),
    ("isharah2000", "US", "dev", 550, False),
]


@pytest.mark.real_data
@pytest.mark.parametrize(("release", "protocol", "split", "n", "has_text"), REAL_COUNTS)
def test_real_files_parse(release, protocol, split, n, has_text):
    folder = real_data_path("isharah", release, protocol)
    path = isharah.split_file(folder, split)
    assert path is not None and path.suffix == (".txt" if release == "annotations_v2_2025" else ".csv")
    skipped: list[dict] = []
    items = isharah.read_annotations(path, split, [], skipped)
    assert len(items) == n and skipped == []
    assert all(i["gloss"] for i in items)
    assert all(bool(i["text"]) == has_text for i in items)
    assert all(i["signer"] == i["id"][:2] and len(i["signer"]) == 2 for i in items)


@pytest.mark.real_data
def test_real_2025_si_manifest_rows_and_signers():
    root = real_data_path("isharah", "annotations_v2_2025")
    cfg, config = ds_cfg(root, tasks=[])  # annotations only: no task reads text or video
    rows, skipped = isharah.build_rows("ish", cfg, config)
    assert sum(r["split"] == "train" for r in rows) == 10000
    assert sum(r["split"] == "dev" for r in rows) == 949
    assert skipped == []
    first = next(r for r in rows if r["sample_id"] == "00_0002")
    assert (first["signer"], first["gloss"], first["text"]) == ("00", "هو معلم لغه اشاره", "هو مدرس لغه اشاره")
    # SI: the dev signer never appears in train
    assert {r["signer"] for r in rows if r["split"] == "dev"} == {"02"}
    assert "02" not in {r["signer"] for r in rows if r["split"] == "train"}
    assert all(r["n_frames"] == 0 and r["source"] == "" for r in rows)


@pytest.mark.real_data
def test_real_isharah2000_us():
    root = real_data_path("isharah", "isharah2000")
    cfg, config = ds_cfg(root, protocol="US", tasks=[])
    rows, _ = isharah.build_rows("ish", cfg, config)
    assert (sum(r["split"] == "train" for r in rows), sum(r["split"] == "dev" for r in rows)) == (20899, 550)


@pytest.mark.real_data
@pytest.mark.parametrize(("release", "bad_file"), [("annotations_v2_2025", "dev.txt"), ("isharah2000", "train.csv")])
def test_real_release_without_text_fails_for_text_tasks(release, bad_file):
    root = real_data_path("isharah", release)
    cfg, config = ds_cfg(root, tasks=["gloss2text"])
    with pytest.raises(InputError) as err:
        isharah.build_rows("ish", cfg, config)
    assert err.value.path.endswith(f"SI/{bad_file}")
    assert err.value.record.startswith("line 2 (")
    assert "no text column" in err.value.problem and "gloss2text" in err.value.problem


# ------------------------------------------------------------------------------------ synthetic release


def test_videos_and_frame_folders_by_id(tmp_path):
    write_protocol(tmp_path, {
        "train.txt": "id|gloss|text\n00_0001|A B|a b\n01_0001|C|c\n",
        "dev.txt": "id|gloss|text\n03_0002|D|d\n",
    })
    write_video(tmp_path / "videos" / "00_0001.avi", 7, fps=25.0)
    write_video(tmp_path / "videos" / "dev" / "03_0002.avi", 4)
    frames = tmp_path / "videos" / "01_0001"
    frames.mkdir(parents=True)
    for i in range(3):
        (frames / f"{i}.jpg").write_bytes(b"\xff\xd8")
    cfg, config = ds_cfg(tmp_path, fps=30)
    rows, skipped = isharah.build_rows("ish", cfg, config)
    by_id = {r["sample_id"]: r for r in rows}
    assert (by_id["00_0001"]["source_kind"], by_id["00_0001"]["n_frames"], by_id["00_0001"]["fps"]) == ("video", 7, 25.0)
    assert (by_id["01_0001"]["source_kind"], by_id["01_0001"]["n_frames"], by_id["01_0001"]["fps"]) == ("frames", 3, 30.0)
    assert by_id["03_0002"]["split"] == "dev" and by_id["03_0002"]["n_frames"] == 4
    assert by_id["01_0001"]["signer"] == "01" and skipped == []


def test_missing_video_error_or_skip(tmp_path):
    write_protocol(tmp_path, {"train.txt": "id|gloss|text\n00_0001|A|a\n", "dev.txt": "id|gloss|text\n02_0001|B|b\n"})
    write_video(tmp_path / "videos" / "00_0001.mp4", 3)
    cfg, config = ds_cfg(tmp_path)
    with pytest.raises(InputError) as err:
        isharah.build_rows("ish", cfg, config)
    assert err.value.path.endswith("videos/02_0001") and err.value.record == "dev.txt line 2 (02_0001)"
    cfg, config = ds_cfg(tmp_path, missing_sources="skip")
    rows, skipped = isharah.build_rows("ish", cfg, config)
    assert [r["sample_id"] for r in rows] == ["00_0001"]
    assert skipped == [{"record": "dev.txt line 2 (02_0001)", "reason": f"missing video: {tmp_path / 'videos' / '02_0001'}"}]


def test_no_video_folder_with_sign_tasks_is_an_error(tmp_path):
    write_protocol(tmp_path, {"train.txt": "id|gloss|text\n00_0001|A|a\n", "dev.txt": "id|gloss|text\n02_0001|B|b\n"})
    cfg, config = ds_cfg(tmp_path)
    with pytest.raises(InputError, match=r"videos \[dataset ish\]: video folder does not exist"):
        isharah.build_rows("ish", cfg, config)


def test_bad_rows(tmp_path):
    folder = write_protocol(tmp_path, {"train.txt": "id|gloss|text\n00_0001|A|a\n00_0002|B\n", "dev.txt": "id|gloss|text\n"})
    cfg, config = ds_cfg(tmp_path, tasks=["gloss2text"])
    with pytest.raises(InputError) as err:
        isharah.build_rows("ish", cfg, config)
    assert (err.value.path, err.value.record) == (str(folder / "train.txt"), "line 3 (00_0002)")
    (folder / "train.txt").write_text("id|gloss|text\nx_1|A|a\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"train\.txt \[line 2 \(x_1\)\]: id 'x_1' is not"):
        isharah.build_rows("ish", cfg, config)
    (folder / "train.txt").write_text("id|gloss|text\n00_0001|A|a\n", encoding="utf-8")
    (folder / "dev.txt").write_text("id|gloss|text\n00_0001|A|a\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"dev\.txt \[line 2 \(00_0001\)\]: duplicate sample id"):
        isharah.build_rows("ish", cfg, config)
    (folder / "dev.txt").write_text("id|gloss|text\n00_0002| |a\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"dev\.txt \[line 2 \(00_0002\)\]: empty gloss"):
        isharah.build_rows("ish", cfg, config)


def test_unlabelled_test_file_rows_are_counted_skips(tmp_path):
    write_protocol(tmp_path, {"train.csv": "id|gloss\n00_0001|A\n", "dev.csv": "id|gloss\n02_0001|B\n",
                              "test.csv": "id\n05_0001\n05_0002\n"})
    cfg, config = ds_cfg(tmp_path, tasks=[])
    rows, skipped = isharah.build_rows("ish", cfg, config)
    assert len(rows) == 2
    assert [s["record"] for s in skipped] == ["test.csv line 2 (05_0001)", "test.csv line 3 (05_0002)"]
    assert all(s["reason"].startswith("no labels") for s in skipped)


def test_missing_protocol_folder_and_cv_rejected(tmp_path):
    write_protocol(tmp_path, {"train.txt": "id|gloss\n", "dev.txt": "id|gloss\n"}, protocol="SI")
    cfg, config = ds_cfg(tmp_path, protocol="US")
    with pytest.raises(InputError, match="US \\[dataset ish\\]: protocol folder US does not exist"):
        isharah.build_rows("ish", cfg, config)
    cfg, config = ds_cfg(tmp_path, cross_validation={})
    with pytest.raises(ConfigError):
        isharah.build_rows("ish", cfg, config)
