"""Supervised isolated-sign pretraining: input preparation, LOSO evaluation, the pyskl checkpoint and its import."""

from __future__ import annotations

import csv
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from conftest import real_data_path

from hatl.cli import main
from hatl.datasets.isl_kinect import list_files, parse_name, read_skeleton
from hatl.errors import ConfigError
from hatl.landmarks import build_layout
from hatl.models import checkpoint
from hatl.models.graph import kinect20_graph
from hatl.models.pretrain import RECURRENT_HIDDEN, RECURRENT_LR, _Classifier
from hatl.models.pretrain_supervised import (
    GradientReversal, SignerAdversary, SignSet, SupervisedConfig, adapt_to_signer, adversary_weight, augment,
    averaging_start, body_frame, combine, crop_views, descendants,
    drop_joints, fit, loso, mean_bone_length, mean_row, metric, mix_sample_statistics, mix_statistics, mixstyle_hook,
    outward_edges, prepare, probabilities, resample, rotate_about_vertical, rotation, scale_bones, stream_arch,
    stream_input, stream_parts, to_stream, train_classifier, turn_arms,
)
from hatl.models.stgcnpp import STGCNPPConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# a standing Kinect-20 body (metres), the isl_kinect joint order
REST = np.array([
    [0.0, 0.65, 2.5], [0.0, 0.47, 2.5], [-0.17, 0.36, 2.5], [0.17, 0.36, 2.5], [-0.25, 0.15, 2.5], [0.25, 0.15, 2.5],
    [-0.27, -0.05, 2.45], [0.27, -0.05, 2.45], [-0.28, -0.12, 2.45], [0.28, -0.12, 2.45], [0.0, 0.1, 2.5],
    [0.0, 0.0, 2.5], [-0.1, -0.02, 2.5], [0.1, -0.02, 2.5], [-0.1, -0.45, 2.5], [0.1, -0.45, 2.5],
    [-0.1, -0.85, 2.5], [0.1, -0.85, 2.5], [-0.1, -0.9, 2.45], [0.1, -0.9, 2.45],
], dtype=np.float32)


def sign_take(sign: int, rng: np.random.Generator, frames: int = 20) -> np.ndarray:
    """The right arm moves in one of three directions (the sign); signers differ in position, angle and size."""
    direction = np.eye(3, dtype=np.float32)[sign] * 0.3
    t = np.linspace(0, 1, frames, dtype=np.float32)[:, None, None]
    seq = np.repeat(REST[None], frames, axis=0)
    seq[:, [5, 7, 9]] += t * direction
    seq = rotate_about_vertical(seq - REST[1], float(rng.uniform(-0.3, 0.3))) * rng.uniform(0.8, 1.2)
    return (seq + rng.normal(0, 0.01, seq.shape) + rng.uniform(-0.5, 0.5, 3)).astype(np.float32)


def toy_signs(frames: int = 8) -> SignSet:
    rng = np.random.default_rng(0)
    xs, ys, signers = [], [], []
    for signer in ("a", "b", "c"):
        for sign in range(3):
            for _ in range(4):
                xs.append(resample(body_frame(sign_take(sign, rng), kinect20_graph()), frames))
                ys.append(sign)
                signers.append(signer)
    return SignSet(np.stack(xs), np.array(ys), np.array(signers), ["down", "left", "up"], [str(i) for i in range(36)])


def two_signers() -> SignSet:
    """The toy set without signer c: one signer to train on, one to hold out."""
    signs = toy_signs()
    keep = signs.signers != "c"
    return SignSet(signs.x[keep], signs.y[keep], signs.signers[keep], signs.classes, [])


def test_resample_interpolates_linearly():
    seq = np.arange(3, dtype=np.float32)[:, None, None] * np.ones((3, 2, 3), np.float32)
    out = resample(seq, 5)
    np.testing.assert_allclose(out[:, 0, 0], [0.0, 0.5, 1.0, 1.5, 2.0])
    assert resample(seq[:1], 4).shape == (4, 2, 3)


def test_body_frame_removes_position_angle_and_size():
    seq = np.repeat(REST[None], 4, axis=0)
    moved = rotate_about_vertical(seq, 0.4) * 1.7 + np.array([0.3, -0.2, 0.5], np.float32)
    graph = kinect20_graph()
    a, b = body_frame(seq, graph), body_frame(moved, graph)
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert a[0, 1] == pytest.approx([0, 0, 0], abs=1e-6)  # the shoulder centre is the origin
    np.testing.assert_allclose(a[0, 3] - a[0, 2], [1.0, 0.0, 0.0], atol=1e-6)  # shoulder line = unit x


def test_body_frame_can_take_the_mean_bone_length_as_its_unit():
    graph = kinect20_graph()
    legs = tuple(n for n in graph.joint_names if n.endswith(("knee", "ankle", "foot")))
    seq = np.repeat(REST[None], 4, axis=0)
    out = body_frame(seq, graph, "bone_lengths", legs)
    assert mean_bone_length(out, graph, legs) == pytest.approx(1.0)
    np.testing.assert_allclose(out, body_frame(seq * 2.5, graph, "bone_lengths", legs), atol=1e-5)
    # shoulders drawn towards the centre (a Kinect v1 fault on some recordings) shrink the shoulder width, so that
    # unit blows the whole body up; the mean over all upper-body bones barely moves
    narrow = seq.copy()
    names = list(graph.joint_names)
    for side in ("pose.left_shoulder", "pose.right_shoulder"):
        narrow[:, names.index(side)] = seq[:, names.index(side)] * 0.2 + seq[:, graph.center] * 0.8
    def nose_height(x: np.ndarray) -> float:
        return float(x[0, names.index("pose.nose"), 1])
    by_width = nose_height(body_frame(narrow, graph)) / nose_height(body_frame(seq, graph))
    by_bones = nose_height(body_frame(narrow, graph, "bone_lengths", legs)) / nose_height(
        body_frame(seq, graph, "bone_lengths", legs))
    assert by_width == pytest.approx(5.0, rel=1e-4) and by_bones < 1.3
    with pytest.raises(ValueError, match="unknown body size 'height'"):
        body_frame(seq, graph, "height")
    with pytest.raises(ValueError, match="no bone outside the excluded joints"):
        mean_bone_length(seq, graph, tuple(graph.joint_names))


@pytest.mark.real_data
def test_bone_length_unit_keeps_real_recordings_of_one_signer_the_same_size():
    """isl_kinect take 1 (../shared/data): with the shoulder width as unit, one signer's bones change length from
    recording to recording far more than with the mean bone length as unit (Kinect v1's shoulder joints move)."""
    folder = real_data_path("isl_kinect", "RawDataset")
    graph = kinect20_graph()
    legs = tuple(n for n in graph.joint_names if n.endswith(("knee", "ankle", "foot")))
    names = [n for n in list_files(folder) if parse_name(n) is not None]
    signers = np.array([parse_name(n)[1] for n in names])
    spine = list(graph.joint_names).index("kinect.spine")
    parent = dict(graph.inward)[spine]

    def spread(size: str) -> float:  # mean over signers of the spine bone's coefficient of variation
        x = np.stack([prepare(read_skeleton(folder / n, n), graph, 8, size, legs) for n in names])
        length = np.linalg.norm(x[:, :, spine] - x[:, :, parent], axis=-1).mean(1)
        return float(np.mean([length[signers == k].std() / length[signers == k].mean() for k in set(signers)]))
    by_width, by_bones = spread("shoulder_width"), spread("bone_lengths")
    assert by_bones < 0.6 * by_width, (by_width, by_bones)  # measured 0.070 -> 0.036 (full release: 0.265 -> 0.074)


def test_rotation_is_about_the_vertical_axis():
    point = np.array([[1.0, 2.0, 0.0]], np.float32)
    out = rotate_about_vertical(point, math.pi / 2)
    np.testing.assert_allclose(out, [[0.0, 2.0, -1.0]], atol=1e-6)


def test_rotation_composes_yaw_pitch_roll():
    np.testing.assert_allclose(rotation(0.0, 0.0, 0.0), np.eye(3), atol=1e-12)
    up = np.array([0.0, 1.0, 0.0])
    # pitch turns the vertical towards depth, roll towards the shoulder line; yaw keeps it vertical
    np.testing.assert_allclose(rotation(0.0, math.pi / 2, 0.0) @ up, [0.0, 0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(rotation(0.0, 0.0, math.pi / 2) @ up, [-1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(rotation(0.7, 0.0, 0.0) @ up, up, atol=1e-12)
    point = np.array([1.0, 2.0, 0.0])
    np.testing.assert_allclose(rotation(0.4, 0.0, 0.0) @ point, rotate_about_vertical(point[None], 0.4)[0], atol=1e-6)


def test_augment_is_seeded_and_off_ranges_keep_the_sample():
    sample = resample(body_frame(sign_take(1, np.random.default_rng(0)), kinect20_graph()), 8)
    still = SupervisedConfig(frames=8, rotate=0.0, tilt=0.0, scale=0.0, axis_scale=0.0, crop=1.0, joint_dropout=0.0)
    np.testing.assert_allclose(augment(sample, still, np.random.default_rng(1)), sample, atol=1e-6)
    strong = SupervisedConfig(frames=8, rotate=0.5, tilt=0.2, axis_scale=0.2, joint_dropout=0.5)
    a, b = augment(sample, strong, np.random.default_rng(3)), augment(sample, strong, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert a.shape == sample.shape and not np.allclose(a, sample)
    dropped = np.all(a == 0.0, axis=(0, 2))
    assert 0 < dropped.sum() < 20  # some joints zeroed for the whole sample, not all


def test_scale_bones_changes_each_bone_length_by_its_factor_and_keeps_the_joint_angles():
    graph = kinect20_graph()
    sample = resample(body_frame(sign_take(1, np.random.default_rng(0)), graph), 8)
    factors = np.random.default_rng(5).uniform(0.8, 1.2, graph.num_nodes)
    out = scale_bones(sample, graph, factors)
    np.testing.assert_array_equal(out[:, graph.center], sample[:, graph.center])  # the centre stays put
    for child, parent in graph.inward:
        bone, scaled = sample[:, child] - sample[:, parent], out[:, child] - out[:, parent]
        np.testing.assert_allclose(scaled, factors[child] * bone, atol=1e-5)
    np.testing.assert_allclose(scale_bones(sample, graph, np.ones(graph.num_nodes)), sample, atol=1e-6)
    assert sorted(child for _, child in outward_edges(graph)) == sorted(c for c, _ in graph.inward)


def test_bone_scale_is_drawn_only_when_on_and_needs_the_graph():
    graph = kinect20_graph()
    sample = resample(body_frame(sign_take(1, np.random.default_rng(0)), graph), 8)
    off = SupervisedConfig(frames=8)
    # off: the same draws as before the option existed, with or without the graph
    np.testing.assert_array_equal(augment(sample, off, np.random.default_rng(2)),
                                  augment(sample, off, np.random.default_rng(2), graph))
    still = SupervisedConfig(frames=8, rotate=0.0, tilt=0.0, scale=0.0, axis_scale=0.0, crop=1.0, joint_dropout=0.0,
                             bone_scale=0.3)
    out = augment(sample, still, np.random.default_rng(2), graph)
    child, parent = zip(*graph.inward)
    ratio = (np.linalg.norm(out[:, list(child)] - out[:, list(parent)], axis=-1)
             / np.linalg.norm(sample[:, list(child)] - sample[:, list(parent)], axis=-1))
    assert np.allclose(ratio, ratio[:1], atol=1e-4)  # one factor per bone for the whole sample
    assert 0.7 - 1e-4 <= ratio.min() < ratio.max() <= 1.3 + 1e-4
    with pytest.raises(ValueError, match="bone_scale needs the skeleton graph"):
        augment(sample, still, np.random.default_rng(2))


def test_turn_arms_moves_only_the_arms_and_keeps_every_bone_length():
    graph = kinect20_graph()
    names = list(graph.joint_names)
    sample = resample(body_frame(sign_take(0, np.random.default_rng(0)), graph), 8)
    right_arm = [names.index(n) for n in ("pose.right_elbow", "pose.right_wrist", "kinect.right_hand")]
    assert sorted(descendants(graph, names.index("pose.right_shoulder"))) == sorted(right_arm)
    angles = np.array([[0.0, 0.0], [0.4, 0.0], [0.0, 0.0], [0.0, 0.3]])  # right upper arm and right forearm only
    out = turn_arms(sample, graph, angles)
    still = [j for j in range(graph.num_nodes) if j not in right_arm]
    np.testing.assert_allclose(out[:, still], sample[:, still], atol=1e-6)  # the body and the left arm stay put
    child, parent = map(list, zip(*graph.inward))
    np.testing.assert_allclose(np.linalg.norm(out[:, child] - out[:, parent], axis=-1),
                               np.linalg.norm(sample[:, child] - sample[:, parent], axis=-1), atol=1e-5)
    wrist = names.index("pose.right_wrist")
    assert np.abs(out[:, wrist] - sample[:, wrist]).max() > 0.1  # the hand is held elsewhere

    def elbow_angle(x: np.ndarray) -> np.ndarray:
        upper = x[:, names.index("pose.right_shoulder")] - x[:, names.index("pose.right_elbow")]
        fore = x[:, wrist] - x[:, names.index("pose.right_elbow")]
        return np.sum(upper * fore, -1) / np.linalg.norm(upper, axis=-1) / np.linalg.norm(fore, axis=-1)

    only_shoulder = turn_arms(sample, graph, angles * np.array([[1], [1], [0], [0]]))
    np.testing.assert_allclose(elbow_angle(only_shoulder), elbow_angle(sample), atol=1e-5)  # one rigid arm
    assert np.abs(elbow_angle(out) - elbow_angle(sample)).max() > 0.01  # the forearm turned on its own
    np.testing.assert_allclose(turn_arms(sample, graph, np.zeros((4, 2))), sample, atol=1e-6)
    armless = replace(graph, joint_names=tuple(n.replace("elbow", "knee") for n in graph.joint_names))
    with pytest.raises(ValueError, match="has no pose.left_elbow, pose.right_elbow to turn the arms about"):
        turn_arms(sample, armless, angles)


def test_arm_turn_is_drawn_only_when_on_and_needs_the_graph():
    graph = kinect20_graph()
    sample = resample(body_frame(sign_take(1, np.random.default_rng(0)), graph), 8)
    still = SupervisedConfig(frames=8, rotate=0.0, tilt=0.0, scale=0.0, axis_scale=0.0, crop=1.0, joint_dropout=0.0)
    np.testing.assert_allclose(augment(sample, still, np.random.default_rng(2), graph), sample, atol=1e-6)
    turned = replace(still, arm_turn=0.3)
    a, b = augment(sample, turned, np.random.default_rng(2), graph), augment(sample, turned, np.random.default_rng(4),
                                                                             graph)
    assert not np.allclose(a, sample) and not np.allclose(a, b)  # a new pose per draw
    np.testing.assert_array_equal(a[:, graph.center], sample[:, graph.center])
    with pytest.raises(ValueError, match="arm_turn needs the skeleton graph"):
        augment(sample, turned, np.random.default_rng(2))
    with pytest.raises(ValueError, match="bone_scale and arm_turn need the skeleton graph"):
        augment(sample, replace(turned, bone_scale=0.1), np.random.default_rng(2))


def test_drop_joints_zeroes_named_joints_and_refuses_unknown_names():
    x = np.ones((2, 4, 20, 3), np.float32)
    out = drop_joints(x, kinect20_graph(), ("kinect.left_knee", "kinect.right_foot"))
    assert out[..., 14, :].sum() == 0 and out[..., 19, :].sum() == 0 and out.sum() == 2 * 4 * 18 * 3
    assert x.sum() == 2 * 4 * 20 * 3  # the input is not modified
    with pytest.raises(ValueError, match="left_toe"):
        drop_joints(x, kinect20_graph(), ("kinect.left_toe",))


def test_crop_views_are_evenly_placed_crops():
    x = np.arange(10, dtype=np.float32)[None, :, None, None] * np.ones((1, 10, 1, 3), np.float32)
    assert crop_views(x, SupervisedConfig(frames=10, test_crops=1))[0] is x
    views = crop_views(x, SupervisedConfig(frames=10, crop=0.6, test_crops=3))  # keep 8 of 10 frames
    assert [round(float(v[0, 0, 0, 0]), 3) for v in views] == [0.0, 1.0, 2.0]
    assert [round(float(v[0, -1, 0, 0]), 3) for v in views] == [7.0, 8.0, 9.0]


def test_training_learns_signs_of_an_unseen_signer():
    """Trained on signers b and c, the model names most signs of signer a (chance 1/3); measured 8/12 (seeds 0-3:
    8, 9, 8, 8 of 12)."""
    signs = toy_signs()
    test = signs.signers == "a"
    # the pre-2026-12-03 recipe (turn, scale and crop only): the shipped tilt / joint dropout / label smoothing aim
    # at the real release, not at 24 toy samples. 12 epochs, not 6: at 6 the result hung on the CPU's float rounding
    # (7/12 on one machine, 4/12 on another; seeds 0-3 gave 4, 8, 6, 5 of 12)
    cfg = SupervisedConfig(frames=8, epochs=12, batch_size=8, lr=0.01, tilt=0.0, axis_scale=0.0, joint_dropout=0.0,
                           label_smoothing=0.0, test_crops=1)
    model, _ = train_classifier(signs.x[~test], signs.y[~test], 3, kinect20_graph(),
                                STGCNPPConfig(in_channels=3, base_channels=6), cfg, seed=0)
    assert not model.training
    assert (probabilities(model, signs.x[test], kinect20_graph(), cfg).argmax(1) == signs.y[test]).mean() >= 0.5


class _JointFeatures(torch.nn.Module):
    """A stand-in backbone whose features are its input: (N, M, T, V, C) -> (N, M, C, T, V)."""

    out_channels, num_joints = 2, 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 1, 4, 2, 3)


def test_the_joints_head_tells_which_joint_moved_where_pyskls_head_sums_over_the_body():
    torch.manual_seed(0)
    left, right = torch.zeros(1, 1, 4, 3, 2), torch.zeros(1, 1, 4, 3, 2)
    left[..., 0, :], right[..., 2, :] = 1.0, 1.0  # the same features on another joint
    mean_head, joints_head = _Classifier(_JointFeatures(), 5), _Classifier(_JointFeatures(), 5, "joints")
    assert joints_head.fc_cls.in_features == 2 * 3 and mean_head.fc_cls.in_features == 2
    assert torch.equal(mean_head(left), mean_head(right))
    assert not torch.allclose(joints_head(left), joints_head(right))
    with pytest.raises(ValueError, match="head must be one of"):
        _Classifier(_JointFeatures(), 5, "max")
    with pytest.raises(ValueError, match="head must be one of"):
        SupervisedConfig.from_config({"backbone": {"pretrain": {"supervised": {"head": "max"}}}})


def test_the_recurrent_head_tells_in_which_order_joints_moved_where_the_joints_head_averages_time():
    torch.manual_seed(0)
    first_then, then_first = torch.zeros(1, 1, 4, 3, 2), torch.zeros(1, 1, 4, 3, 2)
    first_then[:, :, :2, 0], first_then[:, :, 2:, 2] = 1.0, 1.0  # joint 0 moves, then joint 2
    then_first[:, :, 2:, 0], then_first[:, :, :2, 2] = 1.0, 1.0  # the same two movements the other way round
    joints_head = _Classifier(_JointFeatures(), 5, "joints")
    recurrent_head = _Classifier(_JointFeatures(), 5, "recurrent").eval()  # dropout off
    assert torch.allclose(joints_head(first_then), joints_head(then_first))
    assert not torch.allclose(recurrent_head(first_then), recurrent_head(then_first))
    assert recurrent_head.head_in.in_features == 2 * 3 and recurrent_head.fc_cls.in_features == 2 * RECURRENT_HIDDEN
    config = {"backbone": {"pretrain": {"supervised": {"head": "recurrent"}}}}
    assert SupervisedConfig.from_config(config).head == "recurrent"


def test_the_recurrent_heads_gru_trains_at_the_reference_grus_learning_rate_the_rest_at_the_configured_one():
    model = _Classifier(_JointFeatures(), 5, "recurrent")
    backbone_group, recurrent_group = model.optimiser_groups(0.02)
    assert (backbone_group["lr"], recurrent_group["lr"]) == (0.02, RECURRENT_LR)
    assert {id(q) for q in recurrent_group["params"]} == {id(q) for q in [*model.head_in.parameters(),
                                                                          *model.head_rnn.parameters()]}
    assert sorted(map(id, backbone_group["params"] + recurrent_group["params"])) == sorted(map(id, model.parameters()))
    assert model.optimiser_groups(1e-4)[1]["lr"] == 1e-4  # never above the configured rate
    joints_head = _Classifier(_JointFeatures(), 5, "joints")
    assert [(len(g["params"]), g["lr"]) for g in joints_head.optimiser_groups(0.02)] == [(2, 0.02)]


@pytest.mark.parametrize("head", ["joints", "recurrent"])
def test_training_with_a_per_joint_head_learns_signs_of_an_unseen_signer(head):
    """As ``test_training_learns_signs_of_an_unseen_signer`` with ``head: joints`` or ``recurrent``: measured 9/12
    and 7/12 (seeds 0-3: joints 9, 9, 4, 10 of 12, recurrent 7, 10, 8, 12; the mean head 8, 8, 7, 8 on the same
    machine)."""
    signs = toy_signs()
    test = signs.signers == "a"
    cfg = SupervisedConfig(frames=8, epochs=12, batch_size=8, lr=0.01, tilt=0.0, axis_scale=0.0, joint_dropout=0.0,
                           label_smoothing=0.0, test_crops=1, head=head)
    model, _ = train_classifier(signs.x[~test], signs.y[~test], 3, kinect20_graph(),
                                STGCNPPConfig(in_channels=3, base_channels=6), cfg, seed=0)
    assert model.head == head and not model.training
    assert model.fc_cls.in_features == (24 * 20 if head == "joints" else 2 * RECURRENT_HIDDEN)
    assert (probabilities(model, signs.x[test], kinect20_graph(), cfg).argmax(1) == signs.y[test]).mean() >= 0.5


def test_streams_are_bones_towards_the_centre_and_frame_differences():
    graph = kinect20_graph()
    x = np.random.default_rng(0).normal(size=(2, 5, graph.num_nodes, 3)).astype(np.float32)
    np.testing.assert_array_equal(to_stream(x, "joint", graph), x)
    bone = to_stream(x, "bone", graph)
    for child, parent in graph.inward:
        np.testing.assert_allclose(bone[..., child, :], x[..., child, :] - x[..., parent, :])
    np.testing.assert_array_equal(bone[..., graph.center, :], 0.0)
    motion = to_stream(x, "motion", graph)
    np.testing.assert_allclose(motion[:, :-1], x[:, 1:] - x[:, :-1])
    np.testing.assert_array_equal(motion[:, -1], 0.0)
    bone_motion = to_stream(x, "bone_motion", graph)  # pyskl's fourth stream: how each bone moves
    np.testing.assert_allclose(bone_motion[:, :-1], bone[:, 1:] - bone[:, :-1], atol=1e-6)
    np.testing.assert_array_equal(bone_motion[:, -1], 0.0)
    with pytest.raises(ValueError, match="unknown input stream 'angle'"):
        to_stream(x, "angle", graph)


def test_a_fused_stream_stacks_its_parts_channels_for_one_network():
    graph = kinect20_graph()
    x = np.random.default_rng(2).normal(size=(2, 5, graph.num_nodes, 3)).astype(np.float32)
    fused = to_stream(x, "joint+motion", graph)
    assert fused.shape == (2, 5, graph.num_nodes, 6)
    np.testing.assert_array_equal(fused[..., :3], x)
    np.testing.assert_array_equal(fused[..., 3:], to_stream(x, "motion", graph))
    arch = stream_arch(STGCNPPConfig(in_channels=3, base_channels=6), "joint+bone+motion+bone_motion")
    assert arch.in_channels == 12 and arch.base_channels == 6
    with pytest.raises(ValueError, match="repeated input stream in 'joint\\+joint'"):
        stream_parts("joint+joint")
    with pytest.raises(ValueError, match="unknown or repeated input stream in 'joint\\+angle'"):
        to_stream(x, "joint+angle", graph)


def test_loso_trains_a_fused_stream_as_one_model_that_reads_every_part():
    two = two_signers()
    cfg = SupervisedConfig(frames=8, epochs=2, batch_size=8, streams=("joint+motion",))
    rows = loso(two, kinect20_graph(), STGCNPPConfig(in_channels=3, base_channels=6), cfg, seed=0, held_out=["a"])
    assert list(rows[0]["stream_accuracy"]) == ["joint+motion"]
    assert rows[0]["accuracy"] == rows[0]["stream_accuracy"]["joint+motion"]
    model, _ = train_classifier(two.x, two.y, len(two.classes), kinect20_graph(),
                                STGCNPPConfig(in_channels=3, base_channels=6), cfg, 0, "joint+motion")
    assert model.backbone.data_bn.num_features == kinect20_graph().num_nodes * 6


def test_unknown_streams_are_refused_when_the_config_is_read():
    with pytest.raises(ValueError, match="'joint\\+foo'"):
        SupervisedConfig.from_config({"backbone": {"pretrain": {"supervised": {"streams": ["joint", "joint+foo"]}}}})


def test_dropped_joints_stay_zero_in_every_stream():
    graph = kinect20_graph()
    cfg = SupervisedConfig(drop_joints=("kinect.left_knee", "kinect.left_ankle"))
    x = np.random.default_rng(1).normal(size=(2, 5, graph.num_nodes, 3)).astype(np.float32)
    dropped = [list(graph.joint_names).index(n) for n in cfg.drop_joints]
    for stream in ("joint", "bone", "motion"):
        out = stream_input(x, graph, cfg, stream)
        np.testing.assert_array_equal(out[..., dropped, :], 0.0)
        assert np.abs(out).sum() > 0


def test_loso_ensembles_one_model_per_stream():
    """Each stream's model is the one the single-stream evaluation trains; the row's accuracy is their mean
    softmax's and ``stream_accuracy`` gives each alone."""
    two = two_signers()
    arch = STGCNPPConfig(in_channels=3, base_channels=6)
    seen: dict[tuple[str, str], np.ndarray] = {}
    cfg = SupervisedConfig(frames=8, epochs=2, batch_size=8, streams=("joint", "motion"))
    rows = loso(two, kinect20_graph(), arch, cfg, seed=0, held_out=["a"],
                on_stream=lambda signer, stream, probs: seen.__setitem__((signer, stream), probs))
    assert sorted(seen) == [("a", "joint"), ("a", "motion")]
    truth = two.y[two.signers == "a"]
    for stream in ("joint", "motion"):
        np.testing.assert_allclose(seen["a", stream].sum(1), 1.0, rtol=1e-5)
        assert rows[0]["stream_accuracy"][stream] == pytest.approx((seen["a", stream].argmax(1) == truth).mean())
    ensemble = (seen["a", "joint"] + seen["a", "motion"]).argmax(1)
    assert rows[0]["accuracy"] == pytest.approx((ensemble == truth).mean())
    alone = loso(two, kinect20_graph(), arch, SupervisedConfig(frames=8, epochs=2, batch_size=8), seed=0,
                 held_out=["a"])
    assert alone[0]["stream_accuracy"]["joint"] == rows[0]["stream_accuracy"]["joint"]
    assert mean_row(rows)["stream_accuracy"] == rows[0]["stream_accuracy"]


def test_the_arithmetic_rule_is_the_mean_and_the_geometric_one_the_normalised_mean_log_probability():
    sure = np.array([[0.8, 0.2, 0.0]])      # sure of sign 0, rules out sign 2 (an underflowed 0)
    other = np.array([[0.0001, 0.3, 0.6999]])  # all but rules out sign 0
    np.testing.assert_allclose(combine([sure, other]), [[0.40005, 0.25, 0.34995]])
    geometric = combine([sure, other], "geometric")
    floor = 1e-9  # the 0 is taken as this, so the product stays finite
    expected = np.sqrt(np.array([0.8 * 0.0001, 0.2 * 0.3, floor * 0.6999]))
    np.testing.assert_allclose(geometric, [expected / expected.sum()])
    # the mean follows the one sure model; the geometric mean takes the sign neither model finds unlikely
    assert combine([sure, other]).argmax() == 0 and geometric.argmax() == 1
    np.testing.assert_allclose(combine([other], "geometric"), other)  # one model: its own softmax
    with pytest.raises(ValueError, match="ensemble rule must be one of"):
        combine([sure], "median")
    with pytest.raises(ValueError, match="no softmax"):
        combine([], "geometric")


def test_an_unknown_ensemble_rule_is_refused_when_the_config_is_read():
    section = {"backbone": {"pretrain": {"supervised": {"ensemble": "median"}}}}
    with pytest.raises(ValueError, match="supervised.ensemble must be one of"):
        SupervisedConfig.from_config(section)
    section["backbone"]["pretrain"]["supervised"]["ensemble"] = "geometric"
    assert SupervisedConfig.from_config(section).ensemble == "geometric"


def test_loso_combines_the_streams_by_the_configured_rule():
    two = two_signers()
    arch = STGCNPPConfig(in_channels=3, base_channels=6)
    seen: dict[str, np.ndarray] = {}
    cfg = SupervisedConfig(frames=8, epochs=2, batch_size=8, streams=("joint", "motion"), ensemble="geometric")
    row = loso(two, kinect20_graph(), arch, cfg, seed=0, held_out=["a"],
               on_stream=lambda signer, stream, probs: seen.__setitem__(stream, probs))[0]
    truth = two.y[two.signers == "a"]
    pred = combine([seen["joint"], seen["motion"]], "geometric").argmax(1)
    assert row["accuracy"] == pytest.approx((pred == truth).mean())
    assert row["distinct_predictions"] == len(set(pred.tolist()))


def test_mixstyle_gives_each_sample_a_mix_of_its_own_and_a_partners_feature_statistics():
    torch.manual_seed(0)
    x = torch.randn(6, 4, 5, 7) * torch.arange(1, 7).view(6, 1, 1, 1) + torch.arange(6).view(6, 1, 1, 1) * 10
    mixed = mix_statistics(x)
    mean, out_mean = x.mean(dim=(2, 3)), mixed.mean(dim=(2, 3))
    # each sample's channel means now lie between the lowest and highest of the batch, and the pattern within a
    # channel (what the sample does over time and joints) is the sample's own, rescaled
    assert bool(((out_mean >= mean.min(0).values - 1e-4) & (out_mean <= mean.max(0).values + 1e-4)).all())
    assert not torch.allclose(out_mean, mean, atol=1e-3)
    standardised = (x - x.mean(dim=(2, 3), keepdim=True)) / x.std(dim=(2, 3), keepdim=True, correction=0)
    out_standardised = (mixed - out_mean[..., None, None]) / mixed.std(dim=(2, 3), keepdim=True, correction=0)
    torch.testing.assert_close(out_standardised, standardised, atol=1e-3, rtol=1e-3)


def test_mixstyle_acts_in_training_only_and_leaves_no_trace_on_the_trained_model():
    torch.manual_seed(0)
    block = torch.nn.Identity()
    block.register_forward_hook(mixstyle_hook(1.0))
    x = torch.randn(4, 3, 5, 6)
    assert not torch.equal(block(x), x)
    block.eval()
    assert torch.equal(block(x), x)
    signs = toy_signs()
    arch, graph = STGCNPPConfig(in_channels=3, base_channels=6), kinect20_graph()

    def weights(p: float) -> list[torch.Tensor]:
        model, _ = train_classifier(signs.x, signs.y, 3, graph, arch,
                                    SupervisedConfig(frames=8, epochs=1, batch_size=8, mixstyle=p), seed=0)
        assert not any(b._forward_hooks for b in model.backbone.gcn)  # predictions see plain features
        return [t.detach().clone() for t in model.state_dict().values()]
    once, again, off = weights(1.0), weights(1.0), weights(0.0)
    assert all(torch.equal(a, b) for a, b in zip(once, again))  # seeded
    assert not all(torch.equal(a, b) for a, b in zip(once, off))


def test_gradient_reversal_passes_features_unchanged_and_sends_back_the_gradient_reversed_and_weighted():
    x = torch.randn(3, 4, requires_grad=True)
    out = GradientReversal.apply(x, 0.25)
    assert torch.equal(out, x)
    (out * torch.arange(4.0)).sum().backward()
    assert torch.equal(x.grad, -0.25 * torch.arange(4.0).expand(3, 4))


def test_the_adversary_weight_rises_from_zero_to_its_peak_as_training_goes_on():
    weights = [adversary_weight(0.5, p) for p in np.linspace(0, 1, 11)]
    assert weights[0] == 0.0
    assert all(a < b for a, b in zip(weights, weights[1:]))
    assert weights[5] > 0.49 and weights[-1] == pytest.approx(0.5, abs=1e-4)


def test_the_signer_adversary_reads_each_joints_features_averaged_over_persons_and_time():
    torch.manual_seed(0)
    adversary = SignerAdversary(features=4 * 5, signers=3)
    feats = torch.randn(2, 1, 4, 6, 5, requires_grad=True)  # (N, M, C, T, V)
    flat = feats.mean(dim=(1, 3)).flatten(1)
    torch.testing.assert_close(adversary(feats, 1.0), adversary.net(flat))
    adversary(feats, 1.0).sum().backward()  # through the reversal: the backbone is pushed the other way
    plain = feats.detach().clone().requires_grad_(True)
    adversary.net(plain.mean(dim=(1, 3)).flatten(1)).sum().backward()
    torch.testing.assert_close(feats.grad, -plain.grad)


def test_signer_adversarial_training_needs_the_signers_and_reports_how_well_they_were_named():
    signs = toy_signs()
    arch, graph = STGCNPPConfig(in_channels=3, base_channels=6), kinect20_graph()
    cfg = SupervisedConfig(frames=8, epochs=2, batch_size=8, signer_adversarial=0.5)
    with pytest.raises(ValueError, match="signer_adversarial needs each training sample's signer"):
        fit(signs.x, signs.y, 3, graph, arch, cfg, seed=0)
    trained = fit(signs.x, signs.y, 3, graph, arch, cfg, seed=0, signers=signs.signers)
    again = fit(signs.x, signs.y, 3, graph, arch, cfg, seed=0, signers=signs.signers)
    assert 0.0 <= trained.signer_accuracy <= 1.0 and trained.signer_accuracy == again.signer_accuracy  # seeded
    assert not trained.model.backbone._forward_hooks  # predictions and the exported weights see the plain network
    assert all(torch.equal(a, b) for a, b in zip(trained.model.state_dict().values(),
                                                 again.model.state_dict().values()))
    off = fit(signs.x, signs.y, 3, graph, arch, replace(cfg, signer_adversarial=0.0), seed=0, signers=signs.signers)
    assert off.signer_accuracy is None
    assert set(off.model.state_dict()) == set(trained.model.state_dict())  # the adversary is not part of the model
    assert not all(torch.equal(a, b) for a, b in zip(trained.model.state_dict().values(),
                                                     off.model.state_dict().values()))
    rows = loso(signs, graph, arch, cfg, seed=0, held_out=["a"])  # loso gives the training signers to fit
    assert rows[0]["distinct_predictions"] >= 1


def _random_norm(kind: type = torch.nn.BatchNorm2d, channels: int = 4) -> torch.nn.Module:
    torch.manual_seed(0)
    norm = kind(channels)
    norm.running_mean.uniform_(-1, 1)
    norm.running_var.uniform_(0.5, 2)
    norm.weight.data.uniform_(0.5, 2)
    norm.bias.data.uniform_(-1, 1)
    return norm


def test_sample_mixed_norm_without_own_weight_is_batchnorm_in_training_and_prediction():
    plain = _random_norm()
    mixed = mix_sample_statistics(torch.nn.Sequential(_random_norm()), 0.0)[0]
    for momentum in (0.1, None):  # None: the cumulative mean recalibrate_batchnorm relies on
        plain.momentum = mixed.momentum = momentum
        for scale in (1.0, 3.0):
            x = torch.randn(5, 4, 6, 3) * scale + 1
            torch.testing.assert_close(mixed.train()(x), plain.train()(x))
        torch.testing.assert_close(mixed.running_mean, plain.running_mean)
        torch.testing.assert_close(mixed.running_var, plain.running_var)
        torch.testing.assert_close(mixed.eval()(x), plain.eval()(x))
    assert list(mixed.state_dict()) == list(plain.state_dict())  # a BatchNorm's keys: checkpoints load either way


def test_sample_mixed_norm_normalises_each_sample_by_its_own_statistics_mixed_with_the_reference():
    norm = _random_norm()
    x = torch.randn(3, 4, 6, 5) * 3 + 2
    mixed = mix_sample_statistics(torch.nn.Sequential(_random_norm()), 0.2)[0].eval()
    with torch.no_grad():
        sample = x[1:2]
        own_mean, own_var = sample.mean((2, 3), keepdim=True), sample.var((2, 3), unbiased=False, keepdim=True)
        mean = 0.8 * norm.running_mean.view(1, -1, 1, 1) + 0.2 * own_mean
        var = 0.8 * norm.running_var.view(1, -1, 1, 1) + 0.2 * own_var
        gain, shift = norm.weight.view(1, -1, 1, 1), norm.bias.view(1, -1, 1, 1)
        want = (sample - mean) / torch.sqrt(var + norm.eps) * gain + shift
        torch.testing.assert_close(mixed(sample), want)
        torch.testing.assert_close(mixed(x)[2:], mixed(x[2:]))  # at prediction each sample is normalised on its own
        # own weight 1: the sample's statistics alone, a training-mode BatchNorm over a batch of that sample
        alone = torch.nn.BatchNorm2d(4).train()
        alone.load_state_dict(norm.state_dict())
        torch.testing.assert_close(mix_sample_statistics(torch.nn.Sequential(_random_norm()), 1.0)[0].eval()(sample),
                                   alone(sample))
    # training: the batch's statistics take the running ones' place, and only they move the running statistics
    mixed.train()
    before = mixed.running_mean.clone()
    out = mixed(x)
    batch_mean, batch_var = x.mean((0, 2, 3), keepdim=True), x.var((0, 2, 3), unbiased=False, keepdim=True)
    own_mean, own_var = x.mean((2, 3), keepdim=True), x.var((2, 3), unbiased=False, keepdim=True)
    mean, var = 0.8 * batch_mean + 0.2 * own_mean, 0.8 * batch_var + 0.2 * own_var
    want = (x - mean) / torch.sqrt(var + norm.eps) * norm.weight.view(1, -1, 1, 1) + norm.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(out, want)
    torch.testing.assert_close(mixed.running_mean, 0.9 * before + 0.1 * batch_mean.flatten())


def test_training_with_sample_statistics_mixes_every_batchnorm_and_the_config_refuses_a_whole_own_weight():
    signs = toy_signs()
    cfg = SupervisedConfig(frames=8, epochs=1, batch_size=8, sample_statistics=0.2)
    model, _ = train_classifier(signs.x, signs.y, 3, kinect20_graph(), STGCNPPConfig(base_channels=6), cfg, seed=0)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert len(norms) > 10 and all(getattr(m, "own_weight", None) == 0.2 for m in norms)
    with pytest.raises(ValueError, match="sample_statistics must be in"):
        SupervisedConfig.from_config({"backbone": {"pretrain": {"supervised": {"sample_statistics": 1.0}}}})


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the refusal where torch sees no CUDA device")
def test_the_device_is_read_from_the_config_and_cuda_without_a_gpu_is_refused_by_name():
    assert SupervisedConfig().device == "auto"
    section = {"backbone": {"pretrain": {"supervised": {"device": "cuda"}}}}
    signs = toy_signs()
    with pytest.raises(ConfigError, match="backbone.pretrain.supervised.device is 'cuda'"):
        fit(signs.x, signs.y, 3, kinect20_graph(), STGCNPPConfig(base_channels=6),
            replace(SupervisedConfig.from_config(section), frames=8, epochs=1, batch_size=8), seed=0)
    with pytest.raises(ValueError, match="device must be one of"):
        SupervisedConfig.from_config({"backbone": {"pretrain": {"supervised": {"device": "gpu"}}}})


def test_averaging_starts_at_the_asked_fraction_of_the_steps_and_is_off_at_zero():
    assert averaging_start(100, 0.0) is None
    assert averaging_start(100, 0.5) == 50
    assert averaging_start(10, 0.99) == 9  # at least the last step enters the average


def test_weight_averaging_is_the_mean_of_the_weights_after_each_step_from_its_start_and_keeps_the_last():
    signs = toy_signs()
    arch, graph = STGCNPPConfig(base_channels=6), kinect20_graph()
    cfg = SupervisedConfig(frames=8, epochs=2, batch_size=8)  # 36 samples: 5 steps per epoch, 10 in all
    after_step: list[list[torch.Tensor]] = []

    def record(optimizer: torch.optim.Optimizer, *_: object) -> None:
        after_step.append([p.detach().clone() for p in optimizer.param_groups[0]["params"]])
    handle = register_optimizer_step_post_hook(record)
    try:
        averaged = fit(signs.x, signs.y, 3, graph, arch, replace(cfg, average_from=0.6), seed=0)
    finally:
        handle.remove()
    last = fit(signs.x, signs.y, 3, graph, arch, cfg, seed=0)
    assert last.averaged is None and last.model is last.last
    assert len(after_step) == 10
    expected = [torch.stack(weights).mean(0) for weights in zip(*after_step[6:])]  # steps 6-9 of 0-9
    for got, want in zip(averaged.averaged.parameters(), expected):
        torch.testing.assert_close(got, want)
    # averaging draws no random numbers: the last weights are exactly those of the same run without it
    assert all(torch.equal(a, b) for a, b in zip(averaged.last.state_dict().values(), last.last.state_dict().values()))
    assert averaged.model is averaged.averaged and not averaged.averaged.training
    # its BatchNorm statistics are its own, recomputed on the training samples for the averaged weights
    assert not torch.equal(averaged.averaged.backbone.data_bn.running_mean, torch.zeros(60))
    assert not torch.equal(averaged.averaged.backbone.gcn[-1].gcn.bn.running_mean,
                           averaged.last.backbone.gcn[-1].gcn.bn.running_mean)


def test_weight_averaging_must_start_inside_training():
    with pytest.raises(ValueError, match="average_from must be in \\[0, 1\\), got 1.0"):
        SupervisedConfig.from_config({"backbone": {"pretrain": {"supervised": {"average_from": 1.0}}}})


def test_adapting_to_a_signer_takes_the_input_statistics_from_that_signers_samples():
    signs = toy_signs()
    model, _ = train_classifier(signs.x[:24], signs.y[:24], 3, kinect20_graph(), STGCNPPConfig(base_channels=6),
                                SupervisedConfig(frames=8, epochs=1, batch_size=8), seed=0)
    new_signer = signs.x[24:] * 1.3 + 0.2  # larger and shifted: statistics the training signers did not have
    adapt_to_signer(model, new_signer, kinect20_graph(), SupervisedConfig(frames=8, batch_size=12))  # one batch
    assert not model.training
    # data_bn normalises each (joint, channel) over samples and time: its statistics are now the new signer's
    stats = model.backbone.data_bn.running_mean.view(20, 3).numpy()
    np.testing.assert_allclose(stats, new_signer.mean(axis=(0, 1)), rtol=1e-4, atol=1e-5)


@pytest.mark.real_data
def test_adapting_to_a_real_signer_moves_the_statistics_onto_that_signers_posture():
    """isl_kinect take 1 (../shared/data): real signers stand differently enough that the held-out signer's input
    statistics are not the training signers'; adaptation replaces the latter by the former."""
    folder = real_data_path("isl_kinect", "RawDataset")
    graph = kinect20_graph()
    names = [n for n in list_files(folder) if parse_name(n) is not None]
    x = np.stack([prepare(read_skeleton(folder / n, n), graph, 8) for n in names])
    y_names = [parse_name(n)[0] for n in names]
    y = np.array([sorted(set(y_names)).index(v) for v in y_names])
    held_out = np.array([parse_name(n)[1] == "prateek" for n in names])
    assert held_out.sum() == 30 and len(x) == 300
    cfg = SupervisedConfig(frames=8, epochs=1, batch_size=30)  # the held-out signer's 30 samples: one batch
    model, _ = train_classifier(x[~held_out], y[~held_out], 30, graph, STGCNPPConfig(base_channels=6), cfg, seed=0)
    trained = model.backbone.data_bn.running_mean.view(20, 3).numpy().copy()
    adapt_to_signer(model, x[held_out], graph, cfg)
    adapted = model.backbone.data_bn.running_mean.view(20, 3).numpy()
    np.testing.assert_allclose(adapted, x[held_out].mean(axis=(0, 1)), rtol=1e-4, atol=1e-5)
    # prateek is the signer closest to the others, yet some joint sits 0.1 shoulder widths away on average
    assert np.abs(adapted - trained).max() > 0.05


def test_loso_adapts_batchnorm_to_the_held_out_signer_only_when_asked():
    two = two_signers()
    arch = STGCNPPConfig(in_channels=3, base_channels=6)
    seen: dict[bool, np.ndarray] = {}
    for adapt in (False, True):
        cfg = SupervisedConfig(frames=8, epochs=1, batch_size=8, adapt_batchnorm=adapt)
        loso(two, kinect20_graph(), arch, cfg, seed=0, held_out=["a"],
             on_stream=lambda signer, stream, probs, adapt=adapt: seen.__setitem__(adapt, probs))
    assert not np.allclose(seen[False], seen[True])  # the same trained model, other BatchNorm statistics
    assert metric(SupervisedConfig()) == "top-1 accuracy | leave-one-signer-out | one sample per file"
    assert metric(SupervisedConfig(adapt_batchnorm=True)).endswith("unlabeled samples (AdaBN)")


def test_loso_rows_and_floors():
    two = two_signers()
    cfg = SupervisedConfig(frames=8, epochs=1, batch_size=8)
    rows = loso(two, kinect20_graph(), STGCNPPConfig(in_channels=3, base_channels=6), cfg, seed=0)
    assert [r["held_out_signer"] for r in rows] == ["a", "b"]
    assert all(r["test_samples"] == 12 and r["train_samples"] == 12 and r["classes"] == 3 for r in rows)
    # balanced signs: chance and the constant-output floor are both 1/3
    assert all(r["chance"] == pytest.approx(1 / 3) and r["constant_baseline"] == pytest.approx(1 / 3) for r in rows)
    assert all(1 <= r["distinct_predictions"] <= 3 for r in rows)
    mean = mean_row(rows)
    assert mean["accuracy"] == pytest.approx((rows[0]["accuracy"] + rows[1]["accuracy"]) / 2)
    assert mean["seconds"] == pytest.approx(sum(r["seconds"] for r in rows))


def test_cli_writes_table_and_an_importable_checkpoint(tmp_path):
    from hatl.keypoint_store import KeypointRecord, write_keypoints
    from hatl.datasets.manifest import Manifest, assign_shards, write_manifest
    import pandas as pd

    rng = np.random.default_rng(2)
    rows, records = [], []
    for signer in ("a", "b"):
        for sign, name in enumerate(("down", "left", "up")):
            for take in range(2):
                sid = f"{name}_{signer}_{take}"
                seq = sign_take(sign, rng, frames=12)
                records.append(KeypointRecord(sid, "trainval", seq, np.ones((12, 1), bool), 30.0))
                rows.append({"sample_id": sid, "split": "trainval", "fold": 0 if signer == "a" else 1, "signer": signer,
                             "gloss": name, "text": "", "source": "x", "source_kind": "skeleton", "fps": 30.0,
                             "n_frames": 12})
    write_manifest(Manifest("isl", assign_shards(pd.DataFrame(rows), 64), {"dataset": "isl"}), tmp_path / "m.parquet")
    write_keypoints(tmp_path / "k.parquet", records, build_layout(("kinect20",)), {"stage": "keypoints"})
    cfg = tmp_path / "c.yaml"
    cfg.write_text("datasets:\n  medasl: {adapter: demo, demo_profile: medasl, cross_validation: {folds: 5}}\n"
                   "backbone:\n  base_channels: 6\n"
                   "  pretrain: {supervised: {frames: 8, epochs: 2, batch_size: 4, head: joints}}\n")
    out = tmp_path / "pre.pth"
    code = main(["pretrain-supervised", "--config", str(cfg), "--manifest", str(tmp_path / "m.parquet"),
                 "--keypoints", str(tmp_path / "k.parquet"), "--csv", str(tmp_path / "t.csv"), "--out", str(out),
                 "--report", str(tmp_path / "r.json"), "--threads", "1"])
    assert code == 0
    table = list(csv.DictReader(open(tmp_path / "t.csv")))
    assert [r["held_out_signer"] for r in table] == ["a", "b", "mean"]
    assert float(table[-1]["chance"]) == pytest.approx(1 / 3, abs=1e-4)
    blob = torch.load(out, map_location="cpu", weights_only=True)
    assert blob["state_dict"]["backbone.gcn.0.gcn.A"].shape == (3, 20, 20)
    # the evaluation read each joint (head: joints); the checkpoint keeps pyskl's head, the translator's pooling
    assert blob["state_dict"]["cls_head.fc_cls.weight"].shape == (3, 24)
    assert blob["meta"]["hatl"]["layout"] == "kinect20" and blob["meta"]["hatl"]["supervised"]["head"] == "joints"
    # enters the chain like a pyskl file: the kinect20 joints with a MediaPipe meaning carry over
    layout = build_layout(("pose", "left_hand", "right_hand"))
    result = checkpoint.import_checkpoint(out, STGCNPPConfig(in_channels=3, base_channels=6), layout)
    assert result.report.source_layout == "kinect20"
    carried = next(n for n in result.report.notes if n.startswith("joints carried over"))
    assert carried.startswith("joints carried over (9)") and "pose.right_wrist" in carried
    src = blob["state_dict"]["backbone.gcn.3.gcn.A"]
    dst = result.model.state_dict()["gcn.3.gcn.A"]
    nose, r_wrist = layout.index("pose", 0), layout.index("pose", 16)
    assert dst[1, nose, r_wrist] == src[1, 0, 7]  # head/nose <- right wrist entry carried from kinect20

    # --dataset: the checkpoint takes that dataset's view of the config (a demo dataset's narrower backbone)
    cfg.write_text(cfg.read_text() + "demo:\n  overrides: {backbone: {base_channels: 8}}\n")
    code = main(["pretrain-supervised", "--config", str(cfg), "--dataset", "medasl", "--manifest",
                 str(tmp_path / "m.parquet"), "--keypoints", str(tmp_path / "k.parquet"), "--out", str(out),
                 "--threads", "1"])
    assert code == 0
    assert torch.load(out, map_location="cpu", weights_only=True)["state_dict"]["cls_head.fc_cls.weight"].shape == (3, 32)


def test_checkpoint_width_must_match_the_backbone(tmp_path):
    from hatl.errors import InputError
    from hatl.models.pretrain import pyskl_state_dict, save_pyskl_checkpoint
    from hatl.models.stgcnpp import STGCNPP

    model = _Classifier(STGCNPP(kinect20_graph().adjacency(), STGCNPPConfig(in_channels=3, base_channels=6)), 3)
    save_pyskl_checkpoint(tmp_path / "p.pth", pyskl_state_dict(model), {})
    with pytest.raises(InputError, match="base_channels"):
        checkpoint.import_checkpoint(tmp_path / "p.pth", STGCNPPConfig(in_channels=3, base_channels=8),
                                     build_layout(("pose",)))


def test_cli_evaluation_and_checkpoint_are_separate_jobs(tmp_path, caplog):
    from hatl.keypoint_store import KeypointRecord, write_keypoints
    from hatl.datasets.manifest import Manifest, assign_shards, write_manifest
    import pandas as pd

    rng = np.random.default_rng(4)
    rows, records = [], []
    for signer in ("a", "b"):
        for sign, name in enumerate(("down", "left", "up")):
            sid = f"{name}_{signer}_1"
            records.append(KeypointRecord(sid, "trainval", sign_take(sign, rng, frames=12), np.ones((12, 1), bool), 30.0))
            rows.append({"sample_id": sid, "split": "trainval", "fold": 0 if signer == "a" else 1, "signer": signer,
                         "gloss": name, "text": "", "source": "x", "source_kind": "skeleton", "fps": 30.0, "n_frames": 12})
    write_manifest(Manifest("isl", assign_shards(pd.DataFrame(rows), 64), {"dataset": "isl"}), tmp_path / "m.parquet")
    write_keypoints(tmp_path / "k.parquet", records, build_layout(("kinect20",)), {"stage": "keypoints"})
    cfg = tmp_path / "c.yaml"
    cfg.write_text("datasets:\n  medasl: {adapter: demo, demo_profile: medasl, cross_validation: {folds: 5}}\n"
                   "backbone:\n  base_channels: 6\n  pretrain: {supervised: {frames: 8, epochs: 1, batch_size: 4}}\n")
    common = ["pretrain-supervised", "--config", str(cfg), "--manifest", str(tmp_path / "m.parquet"),
              "--keypoints", str(tmp_path / "k.parquet"), "--threads", "1"]
    assert main([*common, "--out", str(tmp_path / "p.pth")]) == 0
    meta = torch.load(tmp_path / "p.pth", map_location="cpu", weights_only=True)["meta"]["hatl"]
    assert "loso" not in meta and 0.0 <= meta["final_train_accuracy"] <= 1.0 and meta["samples"] == 6
    assert not (tmp_path / "t.csv").exists()
    assert main([*common, "--csv", str(tmp_path / "t.csv")]) == 2  # --csv without --report
    assert "--csv and --report go together" in caplog.text
    assert main(common) == 2 and "nothing to do" in caplog.text
