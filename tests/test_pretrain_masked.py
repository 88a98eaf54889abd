"""Masked keypoint pretraining: coco mappings, stream/cube masks, the copy-last-frame baseline, the CLI and import."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hatl.cli import main
from hatl.keypoint_store import KeypointRecord, write_keypoints
from hatl.landmarks import build_layout
from hatl.models import checkpoint
from hatl.models.pretrain_masked import (
    CUBE, STREAMS, MaskedConfig, MaskedReconstructor, body_normalise, coco_from_kinect20, copy_last_frame, cut_windows,
    linear_interpolation, masked_input, masked_mse, stream_masks,
)
from hatl.models.graph import coco_graph
from hatl.models.stgcnpp import STGCNPP
from hatl.models.stgcnpp import STGCNPPConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# a standing Kinect-20 body (metres, the isl_kinect joint order): x grows to the subject's right, y up
KINECT_REST = np.array([
    [0.0, 0.65, 2.5], [0.0, 0.47, 2.5], [-0.17, 0.36, 2.5], [0.17, 0.36, 2.5], [-0.25, 0.15, 2.5], [0.25, 0.15, 2.5],
    [-0.27, -0.05, 2.45], [0.27, -0.05, 2.45], [-0.28, -0.12, 2.45], [0.28, -0.12, 2.45], [0.0, 0.1, 2.5],
    [0.0, 0.0, 2.5], [-0.1, -0.02, 2.5], [0.1, -0.02, 2.5], [-0.1, -0.45, 2.5], [0.1, -0.45, 2.5],
    [-0.1, -0.85, 2.5], [0.1, -0.85, 2.5], [-0.1, -0.9, 2.45], [0.1, -0.9, 2.45],
], dtype=np.float32)


def test_kinect_skeleton_lands_in_image_orientation():
    coco, observed = coco_from_kinect20(np.repeat(KINECT_REST[None], 3, axis=0))
    normed = body_normalise(coco, observed)
    # MediaPipe image coordinates: the subject's right shoulder (coco 6) left of the left one, the head above (y down)
    assert normed[0, 6, 0] == pytest.approx(-0.5, abs=1e-5) and normed[0, 5, 0] == pytest.approx(0.5, abs=1e-5)
    assert normed[0, 0, 1] < normed[0, 5, 1] < normed[0, 11, 1]
    assert observed[0].tolist() == [True] + [False] * 4 + [True] * 12  # eyes and ears have no Kinect joint
    assert np.all(normed[:, 1:5] == 0)


def test_kinect_turned_signer_faces_the_sensor():
    angle = 0.4
    c, s = np.cos(angle), np.sin(angle)
    turned = KINECT_REST @ np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=np.float32).T
    a = body_normalise(*coco_from_kinect20(turned[None]))
    b = body_normalise(*coco_from_kinect20(KINECT_REST[None]))
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_stream_masks_hide_whole_cubes_per_stream():
    mask = stream_masks(50, 16, 0.5, np.random.default_rng(0))
    for joints in STREAMS.values():
        per_frame = mask[:, :, joints[0]]
        assert np.all(mask[:, :, list(joints)] == per_frame[:, :, None])  # a stream's joints share its mask
        cubes = per_frame.reshape(50, 16 // CUBE, CUBE)
        assert np.all(cubes.all(-1) == cubes.any(-1))  # whole cubes only
        assert np.all(cubes.all(-1).sum(1) == 2)  # half of 4 cubes in every window
    body, left = STREAMS["body"][0], STREAMS["left_arm"][0]
    assert (mask[:, :, body] != mask[:, :, left]).any()  # DiffMask: streams masked independently


def test_copy_last_frame_fills_from_the_last_visible_frame():
    x = np.arange(6, dtype=np.float32).reshape(1, 6, 1, 1).repeat(3, axis=-1)
    visible = np.array([False, True, False, False, True, False])[None, :, None]
    filled = copy_last_frame(x, visible)[0, :, 0, 0]
    assert filled.tolist() == [1, 1, 1, 1, 4, 4]  # frame 0: nothing before, the first visible after
    assert copy_last_frame(x, np.zeros_like(visible)).sum() == 0  # never visible: the centre
    scored = ~visible
    assert masked_mse(copy_last_frame(x, visible), x, scored) == pytest.approx(3 * (1 + 1 + 4 + 1) / 4)


def test_linear_interpolation_fills_gaps_between_visible_frames():
    x = np.array([0, 2, 4, 6, 8, 10], dtype=np.float32).reshape(1, 6, 1, 1).repeat(3, axis=-1)
    visible = np.array([False, True, False, False, True, False])[None, :, None]
    filled = linear_interpolation(x, visible)[0, :, 0, 0]
    # frame 0 has no visible frame before (copies frame 1), 2-3 lie between 2 and 8, frame 5 copies frame 4
    assert filled.tolist() == pytest.approx([2, 2, 4, 6, 8, 8])
    assert linear_interpolation(x, np.zeros_like(visible)).sum() == 0  # never visible: the centre


def test_untrained_residual_model_is_exactly_the_interpolation_baseline():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 16, 17, 3)).astype(np.float32)
    observed = rng.random((4, 16, 17)) > 0.1
    mask = stream_masks(4, 16, 0.5, rng)
    torch.manual_seed(0)
    model = MaskedReconstructor(STGCNPP(coco_graph().adjacency(), STGCNPPConfig(3, 6)), 3).eval()
    inp = masked_input(x, observed, mask)
    with torch.no_grad():
        pred = model(torch.from_numpy(inp)).numpy()
    np.testing.assert_array_equal(pred, linear_interpolation(x, observed & ~mask))
    # the input keeps the visible keypoints and hides the masked ones
    visible = observed & ~mask
    np.testing.assert_array_equal(inp[visible], x[visible])
    assert not np.allclose(inp[mask & observed], x[mask & observed])


def test_short_sequences_are_padded_with_unobserved_frames():
    coco = np.ones((5, 17, 3), np.float32)
    [(x, obs)] = cut_windows(coco, np.ones((5, 17), bool), 8)
    assert x.shape == (8, 17, 3) and obs[:5].all() and not obs[5:].any()


def test_config_checks_window_and_ratio():
    with pytest.raises(ValueError, match="multiple of 4"):
        MaskedConfig(window=10).check()
    with pytest.raises(ValueError, match="mask_ratio"):
        MaskedConfig(mask_ratio=1.0).check()


def _moving_pose(layout, frames: int, rng: np.random.Generator) -> np.ndarray:
    """A MediaPipe-layout body whose wrists and elbows circle smoothly (shoulders 1 apart, y down)."""
    lm = np.zeros((frames, layout.num_joints, 3), np.float32)
    t = np.arange(frames, dtype=np.float32)[:, None] / 6.0 + rng.uniform(0, 6)
    pose = {0: (0, -0.8), 2: (0.1, -0.9), 5: (-0.1, -0.9), 7: (0.2, -0.85), 8: (-0.2, -0.85), 11: (0.5, 0), 12: (-0.5, 0),
            13: (0.7, 0.6), 14: (-0.7, 0.6), 15: (0.5, 1.0), 16: (-0.5, 1.0), 23: (0.35, 1.6), 24: (-0.35, 1.6)}
    for j, (px, py) in pose.items():
        lm[:, layout.index("pose", j), 0] = px
        lm[:, layout.index("pose", j), 1] = py
    for j, r in ((13, 0.1), (14, 0.1), (15, 0.3), (16, 0.3)):
        lm[:, layout.index("pose", j), :2] += r * np.concatenate([np.cos(t), np.sin(t)], axis=1)
    return lm


def test_cli_learns_beyond_untrained_and_writes_an_importable_coco_checkpoint(tmp_path):
    rng = np.random.default_rng(3)
    layout = build_layout(("pose",))
    recs = [KeypointRecord(f"s{i}", "train", _moving_pose(layout, 40, rng), np.ones((40, 1), bool), 25.0)
            for i in range(12)]
    recs.append(KeypointRecord("dev", "dev", _moving_pose(layout, 40, rng), np.ones((40, 1), bool), 25.0))
    write_keypoints(tmp_path / "train.parquet", recs, layout, {"stage": "normalised"})
    kinect = [KeypointRecord(f"k{i}", "trainval", np.repeat(KINECT_REST[None], 20, axis=0), np.ones((20, 1), bool), 30.0,
                             extra={"fold": i}) for i in range(3)]
    write_keypoints(tmp_path / "isl.parquet", kinect, build_layout(("kinect20",)), {"stage": "keypoints"})
    cfg = tmp_path / "c.yaml"
    cfg.write_text("datasets:\n  demo: {adapter: demo, demo_profile: phoenix14t}\nbackbone:\n  base_channels: 6\n"
                   "  pretrain: {masked: {window: 16, epochs: 6, batch_size: 8, lr: 0.003, val_fraction: 0.25}}\n")
    out, report = tmp_path / "m.pth", tmp_path / "m.json"
    code = main(["pretrain-masked", "--config", str(cfg), "--data", str(tmp_path / "train.parquet"),
                 "--sources", str(tmp_path / "isl.parquet"), "--out", str(out), "--report", str(report), "--threads", "1"])
    assert code == 0
    summary = json.loads(report.read_text())
    assert summary["sequences"] == {"mediapipe": 13, "kinect20": 3}
    held = summary["held_out"]
    assert held["windows"] > 0 and held["scored_keypoints"] > 0
    untrained = summary["held_out_untrained"]
    assert untrained["model_mse"] == pytest.approx(untrained["interpolation_mse"])  # the residual starts there
    history = [row["train_mse"] for row in summary["history"]]
    assert history[-1] < 0.8 * history[0]  # training lowered the error below the interpolation it started from
    # 8 held-out windows of smooth circles: interpolation is near-perfect there, the model stays near it
    assert held["model_mse"] < held["copy_last_frame_mse"] < held["zero_mse"]
    assert held["interpolation_mse"] < held["copy_last_frame_mse"]
    assert set(held["per_stream"]["left_arm"]) == {"model_mse", "copy_last_frame_mse", "interpolation_mse"}
    blob = torch.load(out, map_location="cpu", weights_only=True)
    assert blob["state_dict"]["backbone.gcn.0.gcn.A"].shape == (3, 17, 17)
    assert not any(k.startswith("cls_head") or "decoder" in k for k in blob["state_dict"])
    target = build_layout(("pose", "left_hand", "right_hand"))
    result = checkpoint.import_checkpoint(out, STGCNPPConfig(in_channels=3, base_channels=6), target)
    assert result.report.source_layout == "coco"


def test_layout_without_body_joints_is_refused(tmp_path, caplog):
    layout = build_layout(("boston3",))
    rec = KeypointRecord("001", "train", np.zeros((8, 3, 3), np.float32), np.ones((8, 1), bool), 30.0)
    write_keypoints(tmp_path / "b.parquet", [rec], layout, {"stage": "keypoints"})
    cfg = tmp_path / "c.yaml"
    cfg.write_text("datasets:\n  demo: {adapter: demo, demo_profile: phoenix14t}\n")
    code = main(["pretrain-masked", "--config", str(cfg), "--sources", str(tmp_path / "b.parquet"),
                 "--out", str(tmp_path / "m.pth"), "--report", str(tmp_path / "m.json")])
    assert code == 2
    assert "b.parquet: layout ('boston3',) has neither" in caplog.text and not (tmp_path / "m.pth").exists()
