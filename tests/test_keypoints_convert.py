"""Stage 2 without MediaPipe: MedASL per-frame .npy folders (real files) and the demo keypoint file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

import helpers
from conftest import real_data_path
from hatl.cli import main
from hatl.config import validate_config
from hatl.errors import InputError
from hatl.keypoint_store import KeypointRecord, read_keypoints, read_meta, write_keypoints
from hatl.keypoints.cli import keypoints_shard
from hatl.keypoints.convert import read_npy_sequence, remap_record
from hatl.landmarks import build_layout

MEDASL = {"ALLERGY SKIN TEST DO WILL": 58, "ARM KEEP ELEVATE REDUCE SWELLING": 67, "BLOOD PRESSURE CHECK REGULAR IMPORTANT": 65}


def write_manifest(path: Path, rows: list[dict]) -> Path:
    return helpers.write_manifest(path, rows, split="trainval", fold=0, fps=30.0)


def make_config(adapter: str = "medasl", keypoints: dict | None = None) -> dict:
    return validate_config({"datasets": {"ds": {"adapter": adapter}}, "preprocess": {"keypoints": keypoints or {}}})


def run_cli(tmp_path: Path, manifest: Path, out: Path, adapter: str = "medasl") -> int:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"datasets": {"ds": {"adapter": adapter}}}))
    return main(["keypoints", "--config", str(config), "--dataset", "ds", "--manifest", str(manifest),
                 "--shard", "0", "--out", str(out)])


@pytest.mark.real_data
def test_real_medasl_sequences_convert_in_numeric_order(tmp_path):
    videos = real_data_path("medasl", "Videos")
    manifest = write_manifest(tmp_path / "m.parquet", [
        {"sample_id": f"med{i}", "source": str(videos / name), "source_kind": "npy", "n_frames": n, "split": split}
        for i, ((name, n), split) in enumerate(zip(MEDASL.items(), ["trainval", "test", "trainval"]))
    ])
    out = tmp_path / "kp" / "shard-0.parquet"
    assert run_cli(tmp_path, manifest, out) == 0
    records = read_keypoints(out)
    layout = build_layout(("pose", "face", "iris", "left_hand", "right_hand"), "reduced")
    sl = layout.group_slices()
    assert [r.sample_id for r in records] == ["med0", "med1", "med2"]
    assert [r.n_frames for r in records] == list(MEDASL.values())
    assert [r.split for r in records] == ["trainval", "test", "trainval"]
    for rec, name in zip(records, MEDASL):
        assert (rec.width, rec.height, rec.fps) == (1280, 800, 30.0)
        raw = np.stack([np.load(videos / name / f"{t}.npy") for t in range(rec.n_frames)])  # frame t is file t.npy
        pose = raw[:, :132].reshape(-1, 33, 4)[:, :25, :3]
        np.testing.assert_allclose(rec.landmarks[:, sl["pose"]], pose.astype(np.float32))
        right = raw[:, 1599:].reshape(-1, 21, 3)
        right_seen = ~np.all(right == 0, axis=(1, 2))
        np.testing.assert_array_equal(rec.mask[:, layout.groups.index("right_hand")], right_seen)
        np.testing.assert_allclose(rec.landmarks[right_seen][:, sl["right_hand"]], right[right_seen].astype(np.float32))
        face = raw[:, 132:1536].reshape(-1, 468, 3)
        assert rec.landmarks[0, layout.index("face", 61)].tolist() == pytest.approx(face[0, 61].tolist(), rel=1e-6)
        assert not rec.mask[:, layout.groups.index("iris")].any()  # 468-point face: no iris
    # ordering is numeric, not lexicographic: file 10.npy is frame 10, not frame 2
    seq = read_npy_sequence(videos / "ALLERGY SKIN TEST DO WILL", "med0")
    np.testing.assert_array_equal(seq[10], np.load(videos / "ALLERGY SKIN TEST DO WILL" / "10.npy"))
    meta = read_meta(out)
    assert meta["extractor"]["extractor"] == "npy-flat1662" and meta["report"]["frames"] == sum(MEDASL.values())
    assert meta["input_resolution"] == {"mode": "source", "width": 1280, "height": 800}


def _npy_folder(folder: Path, sizes: list[int]) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for t, size in enumerate(sizes):
        np.save(folder / f"{t}.npy", rng.random(size))


def test_generic_npy_has_unknown_resolution(tmp_path):
    _npy_folder(tmp_path / "a", [1662] * 12)
    manifest = write_manifest(tmp_path / "m.parquet", [{"sample_id": "a", "source": str(tmp_path / "a"), "source_kind": "npy"}])
    report = keypoints_shard(make_config("generic"), "ds", manifest, 0, tmp_path / "o.parquet")
    (rec,) = read_keypoints(tmp_path / "o.parquet")
    assert (rec.width, rec.height, rec.n_frames) == (0, 0, 12)
    raw = np.load(tmp_path / "a" / "11.npy")
    np.testing.assert_allclose(rec.landmarks[11, 0], raw[:3].astype(np.float32))
    assert report.frame_count_mismatches == [{"sample_id": "a", "manifest": 0, "extracted": 12}]


@pytest.mark.parametrize("case", ["wrong_size", "unreadable", "missing_folder", "empty_folder", "gap", "two_d"])
def test_bad_npy_input_names_file_and_sample(tmp_path, case):
    folder = tmp_path / "seq"
    if case == "wrong_size":
        _npy_folder(folder, [1662, 1662, 1661, 1662])
        bad = folder / "2.npy"
    elif case == "unreadable":
        _npy_folder(folder, [1662, 1662])
        bad = folder / "1.npy"
        bad.write_bytes(b"\x93NUMPY garbage")
    elif case == "gap":
        _npy_folder(folder, [1662, 1662, 1662])
        (folder / "1.npy").rename(folder / "5.npy")
        bad = folder
    elif case == "two_d":
        _npy_folder(folder, [1662])
        np.save(folder / "1.npy", np.zeros((2, 831)))
        bad = folder / "1.npy"
    elif case == "missing_folder":
        bad = folder
    else:
        folder.mkdir()
        bad = folder
    _npy_folder(tmp_path / "good", [1662, 1662])
    manifest = write_manifest(tmp_path / "m.parquet", [
        {"sample_id": "good", "source": str(tmp_path / "good"), "source_kind": "npy"},
        {"sample_id": "bad", "source": str(folder), "source_kind": "npy"},
    ])
    out = tmp_path / "kp" / "shard-0.parquet"
    problem = {"wrong_size": r"shape \(1661,\) \(1661 values\), expected 1662", "unreadable": "unreadable .npy",
               "missing_folder": "does not exist", "empty_folder": "zero frames", "gap": r"not numbered 0\.\.2",
               "two_d": r"shape \(2, 831\)"}[case]
    with pytest.raises(InputError, match=problem) as err:
        keypoints_shard(make_config(), "ds", manifest, 0, out)
    assert err.value.path == str(bad) and err.value.record == "bad"
    assert run_cli(tmp_path, manifest, out) == 2
    assert not out.exists() and (not out.parent.exists() or list(out.parent.iterdir()) == [])


def _demo_file(path: Path) -> list[KeypointRecord]:
    layout = build_layout(("pose", "face", "iris", "left_hand", "right_hand"), "reduced")
    rng = np.random.default_rng(3)
    records = [
        KeypointRecord(f"d{i}", "train", rng.random((5 + i, layout.num_joints, 3), dtype=np.float32),
                       rng.random((5 + i, len(layout.groups))) > 0.3, 25.0, 0, 0)
        for i in range(4)
    ]
    write_keypoints(path, records, layout, {"stage": "demo"})
    return records


def test_demo_rows_are_copied_with_manifest_split_and_layout(tmp_path):
    demo = tmp_path / "demo" / "keypoints.parquet"
    original = {r.sample_id: r for r in _demo_file(demo)}
    manifest = write_manifest(tmp_path / "m.parquet", [
        {"sample_id": "d2", "source": str(demo), "source_kind": "demo", "split": "dev", "fps": 25.0},
        {"sample_id": "d0", "source": str(demo), "source_kind": "demo", "split": "test", "fps": 25.0},
    ])
    out = tmp_path / "kp.parquet"
    keypoints_shard(make_config("demo"), "ds", manifest, 0, out)
    got = read_keypoints(out)
    assert [(r.sample_id, r.split) for r in got] == [("d2", "dev"), ("d0", "test")]
    np.testing.assert_array_equal(got[0].landmarks, original["d2"].landmarks)
    np.testing.assert_array_equal(got[1].mask, original["d0"].mask)
    assert read_meta(out)["source_kind"] == "demo"

    # a narrower configured layout picks the matching joints and mask columns
    keypoints_shard(make_config("demo", {"groups": ["pose", "right_hand"]}), "ds", manifest, 0, out)
    narrow = read_keypoints(out)[0]
    full = build_layout(("pose", "face", "iris", "left_hand", "right_hand"), "reduced")
    fsl = full.group_slices()
    np.testing.assert_array_equal(narrow.landmarks[:, :25], original["d2"].landmarks[:, fsl["pose"]])
    np.testing.assert_array_equal(narrow.landmarks[:, 25:], original["d2"].landmarks[:, fsl["right_hand"]])
    np.testing.assert_array_equal(narrow.mask, original["d2"].mask[:, [0, 4]])

    # an id the demo file lacks is bad input
    bad = write_manifest(tmp_path / "bad.parquet", [{"sample_id": "nope", "source": str(demo), "source_kind": "demo"}])
    with pytest.raises(InputError, match="not in the demo keypoint file") as err:
        keypoints_shard(make_config("demo"), "ds", bad, 0, tmp_path / "x.parquet")
    assert err.value.record == "nope" and err.value.path == str(demo)
    assert not (tmp_path / "x.parquet").exists()


def test_remap_refuses_joints_the_source_lacks(tmp_path):
    small = build_layout(("pose",), "reduced")
    big = build_layout(("pose", "right_hand"), "reduced")
    rec = KeypointRecord("x", "train", np.zeros((2, small.num_joints, 3), np.float32), np.ones((2, 1), bool), 25.0)
    with pytest.raises(InputError, match="lacks 21 joint"):
        remap_record(rec, small, big, tmp_path / "f.parquet")
