"""Stage 2 on frames: MediaPipe Holistic on the real signing clip at 52x65, and on frames with nobody in them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from conftest import real_data_path
from hatl.cli import main
from hatl.errors import ConfigError
from hatl.keypoint_store import read_keypoints, read_layout, read_meta
from hatl.keypoints.cli import keypoints_shard
from hatl.keypoints.holistic import HolisticConfig, HolisticExtractor, source_groups
from hatl.landmarks import build_layout
from helpers import write_generic_config, write_manifest


def write_config(path: Path, keypoints: dict | None = None) -> Path:
    return write_generic_config(path, keypoints=keypoints or {})


def hatl(*args: str | Path) -> int:
    return main([str(a) for a in args])


@pytest.mark.real_data
def test_real_clip_resize_then_holistic_at_52x65(tmp_path):
    video = real_data_path("sign_video", "test_video.mp4")
    manifest = write_manifest(tmp_path / "m.parquet", [{"sample_id": "clip", "split": "dev", "source": str(video),
                                                        "source_kind": "video", "fps": 29.9, "n_frames": 58}])
    config = write_config(tmp_path / "c.yaml")
    clips, out = tmp_path / "clips" / "shard-0.npz", tmp_path / "kp" / "shard-0.parquet"
    common = ["--config", config, "--dataset", "vid", "--manifest", manifest, "--shard", "0"]
    assert hatl("resize", *common, "--out", clips) == 0
    assert hatl("keypoints", *common, "--clips", clips, "--out", out) == 0

    (rec,) = read_keypoints(out)
    layout = read_layout(out)
    assert layout == build_layout(("pose", "face", "iris", "left_hand", "right_hand"), "reduced")
    assert (rec.sample_id, rec.split, rec.n_frames, rec.width, rec.height) == ("clip", "dev", 58, 52, 65)
    assert rec.fps == pytest.approx(29.9)  # fps comes from the manifest
    rate = dict(zip(layout.groups, rec.mask.mean(axis=0)))
    assert rate["pose"] >= 0.9 and rate["face"] >= 0.9, rate
    assert rate["iris"] == rate["face"]  # iris comes with the refined face
    # detected landmarks are image-normalised; undetected groups are exactly 0
    sl = layout.group_slices()
    pose = rec.landmarks[rec.mask[:, 0], sl["pose"], :2]
    assert np.nanmedian(pose) > 0.05 and np.nanmedian(pose) < 0.95
    assert not rec.landmarks[~rec.mask[:, 3]][:, sl["left_hand"]].any()
    assert np.isfinite(rec.landmarks).all()

    meta = read_meta(out)
    assert meta["stage"] == "keypoints" and meta["source_kind"] == "video"
    assert meta["extractor"]["extractor"] == "mediapipe.solutions.holistic"
    assert meta["extractor"]["static_image_mode"] is False and meta["extractor"]["refine_face_landmarks"] is True
    assert meta["extractor"]["model_complexity"] == 1 and meta["extractor"]["mediapipe"] == "0.10.21"
    assert meta["input_resolution"] == {"mode": "resized", "width": 52, "height": 65, "interpolation": "area", "clips": str(clips)}
    assert meta["report"]["frames"] == 58 and meta["report"]["empty_samples"] == []
    assert "code_version" in meta["provenance"]

    # Parquet round trip: the stored columns are exactly the record (the on-the-fly path without --clips feeds
    # MediaPipe identical pixels: test_video_resize checks that without paying for a second MediaPipe run)
    table = pq.read_table(out)
    assert table.column("n_frames").to_pylist() == [58]
    assert np.asarray(table.column("landmarks")[0].values).reshape(58, layout.num_joints, 3).tobytes() == rec.landmarks.tobytes()


def test_nobody_detected_is_kept_and_counted(tmp_path):
    folder = tmp_path / "blank"
    folder.mkdir()
    for i in range(4):
        assert cv2.imwrite(str(folder / f"{i}.png"), np.zeros((65, 52, 3), np.uint8))
    manifest = write_manifest(tmp_path / "m.parquet", [{"sample_id": "blank", "source": str(folder), "source_kind": "frames",
                                                        "n_frames": 5}])
    cfg = yaml.safe_load(write_config(tmp_path / "c.yaml", {"groups": ["pose", "right_hand"]}).read_text())
    from hatl.config import validate_config

    cfg = validate_config(cfg)
    out = tmp_path / "kp.parquet"
    report = keypoints_shard(cfg, "vid", manifest, 0, out)
    assert report.samples == 1 and report.frames == 4 and report.empty_samples == ["blank"]
    assert report.detection_rate() == {"pose": 0.0, "right_hand": 0.0}
    assert report.frame_count_mismatches == [{"sample_id": "blank", "manifest": 5, "extracted": 4}]
    (rec,) = read_keypoints(out)
    assert rec.mask.shape == (4, 2) and not rec.mask.any() and not rec.landmarks.any()
    assert rec.landmarks.shape == (4, 25 + 21, 3)
    assert read_meta(out)["report"]["empty_samples"] == ["blank"]

    # native input cannot be combined with a clip shard
    cfg["preprocess"]["keypoints"]["input_resolution"] = "native"
    with pytest.raises(ConfigError, match="native"):
        keypoints_shard(cfg, "vid", manifest, 0, tmp_path / "x.parquet", clips=tmp_path / "c.npz")
    assert not (tmp_path / "x.parquet").exists()


def test_extractor_grows_past_a_short_hint_and_skips_unused_groups():
    extractor = HolisticExtractor(HolisticConfig(refine_face_landmarks=False), ("pose", "left_hand"))
    assert extractor.groups == ("pose", "left_hand")
    frames = np.zeros((3, 40, 30, 3), np.uint8)
    groups, t = extractor.extract(iter(frames), n_hint=1)
    assert t == 3 and set(groups) == {"pose", "left_hand"}
    assert groups["pose"].shape == (3, 33, 3) and np.isnan(groups["pose"]).all()
    assert source_groups(("iris", "right_hand")) == ("face", "right_hand")
