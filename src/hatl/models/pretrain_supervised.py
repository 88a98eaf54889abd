"""Supervised backbone pretraining on isolated signs (``hatl pretrain-supervised``).

ST-GCN++ + pyskl's GCN head classify whole isolated-sign samples of a pretraining source (isl_kinect: 30
signs, Kinect-20 skeletons, 10 signers) on the source's own skeleton graph (:func:`hatl.models.graph.layout_graph`).

Evaluation is signer-independent: leave-one-signer-out (LOSO), one model per held-out signer trained on all
the others, accuracy on the held-out signer's samples. Beside each figure: chance (1 / classes), the
constant-output floor (always the most frequent training sign) and how many distinct signs the model
predicted. Then one model is trained on every signer and saved in pyskl's checkpoint format
(``backbone.*`` + ``cls_head.fc_cls.*``), which ``hatl import-backbone`` maps onto the MediaPipe graph.

Input per sample (:func:`prepare`): the sequence is resampled to ``frames`` frames (linear interpolation over
time), centred on the mean of the graph's centre joint, turned about the vertical axis so that the mean
shoulder line is the x axis (signers stand at different angles to the sensor) and scaled by the mean shoulder
width (signers differ in size and distance). Joints named in ``drop_joints`` (config.yaml: the static legs, which
carry the signer's stance and not the sign) are zeroed in every sample. Training samples are augmented (seeded),
aimed at what differs between signers: a random turn about the vertical (±``rotate``), pitch and roll
(±``tilt``: posture), an overall scale and a per-axis scale (size, body proportions), optionally each bone's
length on its own (``bone_scale``, off by default: limb proportions), each arm turned about its shoulder and elbow
(``arm_turn``, off by default: where the hands are held), a random temporal crop
(timing, speed) and whole-joint dropout; the loss uses label smoothing; ``mixstyle`` (off by default) mixes
the early blocks' per-sample feature statistics between samples (MixStyle); ``signer_adversarial`` (off by
default, LOSO only) trains a signer classifier against the backbone; ``sample_statistics`` (off by default)
makes every BatchNorm mix each sample's own statistics into its normalisation, in training and prediction alike;
``average_from`` (off by default) uses the mean of the weights over the last part of training; ``head: joints`` (LOSO
only) gives the classifier each joint's features instead of their mean over the body. Held-out samples are
classified by the softmax averaged over ``test_crops`` temporal crops; with ``adapt_batchnorm`` (off by default)
the BatchNorm statistics are first recomputed on the held-out signer's unlabeled samples, a protocol the report's
metric names.
The measured effect of each on the full release is in docs/validation.md section 4. The evaluation may ensemble
input streams (``streams``: joint positions, bones, motion; one model each, as pyskl's multi-stream results; their
softmax combined by ``ensemble``); the exported checkpoint reads positions.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import time
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from hatl.config import effective_config, load_config
from hatl.datasets.manifest import read_manifest
from hatl.devices import DEVICES, resolve_device
from hatl.errors import InputError
from hatl.io import atomic_path, write_json
from hatl.keypoint_store import iter_keypoints, read_layout
from hatl.models.backbone_source import pretrained_on_files
from hatl.models.graph import Graph, layout_graph
from hatl.models.pretrain import (HEADS, _Classifier, joint_features, one_cycle, pyskl_state_dict,
                                  save_pyskl_checkpoint)
from hatl.models.stgcnpp import STGCNPP, STGCNPPConfig
from hatl.provenance import provenance

log = logging.getLogger(__name__)

METRIC = "top-1 accuracy | leave-one-signer-out | one sample per file"
ADAPTED = " | BatchNorm statistics from the held-out signer's unlabeled samples (AdaBN)"
CSV_COLUMNS = ("held_out_signer", "test_samples", "train_samples", "accuracy", "chance", "constant_baseline",
               "distinct_predictions", "classes", "train_accuracy", "seconds")


@dataclass(frozen=True)
class SupervisedConfig:
    """``backbone.pretrain.supervised`` (config/README.md)."""

    frames: int = 48
    epochs: int = 30
    batch_size: int = 16
    lr: float = 0.002
    weight_decay: float = 0.0005
    augment: bool = True
    base_channels: int | None = None
    # augmentation aimed at signer variation (each used only when ``augment``); ranges are half-widths
    rotate: float = 0.3          # turn about the vertical, radians (signers face the sensor at different angles)
    tilt: float = 0.1            # pitch and roll, radians (posture: leaning forward/sideways)
    scale: float = 0.15          # overall size (body size, distance left over after the shoulder-width scaling)
    axis_scale: float = 0.1      # independent per-axis size (body proportions: arm length vs shoulder width)
    # each bone's length on its own, joint angles kept (limb proportions); 0 = off. On isl_kinect 0.2 did not move
    # leave-one-signer-out accuracy (docs/validation.md section 4)
    bone_scale: float = 0.0
    # each upper arm turned about its shoulder and each forearm about its elbow by its own pitch and roll in ±arm_turn
    # radians, the same for every frame: where a signer holds the hands (signing space). On the isl_kinect release the
    # mean right-wrist height differs between signers by 0.46 shoulder widths, and 0.3 lifted the recurrent joint
    # stream's leave-one-signer-out accuracy from 0.826 to 0.849 (docs/validation.md section 4); 0 = off
    arm_turn: float = 0.0
    crop: float = 0.8            # temporal crop keeps this fraction of the frames or more (speed and timing)
    joint_dropout: float = 0.05  # probability of zeroing one joint for a whole training sample
    drop_joints: tuple[str, ...] = ()  # joints (graph names) zeroed in every sample: static, signer-specific parts
    label_smoothing: float = 0.1
    # what one unit of size is in the prepared samples: "shoulder_width" or "bone_lengths" (the mean length of the
    # bones outside drop_joints). On the isl_kinect release the latter varies far less between one signer's files,
    # yet models trained on it do worse on new signers (docs/validation.md section 4)
    body_size: str = "shoulder_width"
    # feature-statistics mixing (MixStyle) after the first MIXSTYLE_BLOCKS blocks: the probability per batch and
    # block; 0 = off. Aimed at signers unseen in training, whose posture and proportions shift those statistics
    mixstyle: float = 0.0
    # LOSO only: the largest weight of a signer classifier trained against the backbone through gradient reversal
    # (DANN, Ganin et al. 2016; the weight ramps up from 0 over training as published), so that the features the
    # sign classifier reads carry as little of who signs as the sign allows; 0 = off. Needs each training sample's
    # signer
    signer_adversarial: float = 0.0
    test_crops: int = 3          # test-time average of the logits over this many temporal crops (1: the whole sample)
    # LOSO only: one model per input stream, softmax combined by ``ensemble`` (pyskl's multi-stream ensembles); the
    # exported checkpoint is always the joint stream, the input the downstream backbone reads. "joint+motion" is one
    # early-fused model; on isl_kinect it does worse on new signers than the same streams as separate models
    # (docs/validation.md)
    streams: tuple[str, ...] = ("joint",)
    # LOSO only: how the streams' softmax are combined, "arithmetic" (their mean, as pyskl) or "geometric" (the
    # normalised exponential of their mean log-probability: a sign any one model finds unlikely loses more). On the
    # isl_kinect release 20 models score 0.898 geometric against 0.890 arithmetic (docs/validation.md section 4)
    ensemble: str = "arithmetic"
    # the weights used are the mean of the weights after every optimiser step from this fraction of the steps on
    # (stochastic weight averaging, dense as in SWAD), BatchNorm statistics recomputed for them; 0 = the last weights.
    # On isl_kinect 0.5 did not help (-0.007 on four folds against the same runs' last weights)
    average_from: float = 0.0
    # LOSO only: every BatchNorm normalises each sample by its own statistics mixed with the batch's (training) or the
    # running ones (prediction) at this weight : 1 - weight (SampleMixedNorm); 0 = plain BatchNorm. The exported
    # checkpoint is trained without it: the downstream backbone normalises as pyskl's does. On isl_kinect 0.2 lifted
    # the joint stream's leave-one-signer-out accuracy from 0.764 to 0.802, no more than prediction-time BatchNorm
    # gives weights trained without it (docs/validation.md section 4)
    sample_statistics: float = 0.0
    # LOSO only: what the classifier reads, "mean" (pyskl's GCNHead: the mean over time and joints), "joints" (the
    # mean over time, each joint's features side by side) or "recurrent" (each joint's features at every time step
    # through a bidirectional GRU). The exported checkpoint is trained with "mean", the pooling over joints the
    # downstream translator uses
    head: str = "mean"
    # LOSO only: recompute BatchNorm statistics on the held-out signer's own samples before classifying them
    # (AdaBN; labels unused). Unsupervised signer adaptation, a protocol other than plain LOSO: off by default
    adapt_batchnorm: bool = False
    # where training and prediction run: "auto" (CUDA when torch sees one, else CPU), "cpu" or "cuda". Seeded runs
    # repeat exactly on CPU; on CUDA they repeat only to within its non-deterministic kernels
    device: str = "auto"

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SupervisedConfig:
        section = dict(config.get("backbone", {}).get("pretrain", {}).get("supervised", {}) or {})
        for key in ("drop_joints", "streams"):
            if key in section:
                section[key] = tuple(section[key] or ())
        for stream in section.get("streams", ()):
            stream_parts(stream)  # a misspelt stream fails here, not after the first fold's training
        for key in ("sample_statistics", "average_from"):  # fractions: a whole 1 would leave nothing of the rest
            if not 0.0 <= section.get(key, 0.0) < 1.0:
                raise ValueError(f"backbone.pretrain.supervised.{key} must be in [0, 1), got {section[key]!r}")
        # refused here, before any data is read
        for key, allowed in (("head", HEADS), ("device", DEVICES), ("ensemble", ENSEMBLE_RULES)):
            if key in section and section[key] not in allowed:
                raise ValueError(f"backbone.pretrain.supervised.{key} must be one of {allowed}, got {section[key]!r}")
        return cls(**section)


@dataclass
class SignSet:
    """Prepared samples: x (N, frames, V, 3), labels, signers, class names, sample ids."""

    x: np.ndarray
    y: np.ndarray
    signers: np.ndarray
    classes: list[str]
    sample_ids: list[str]


MIXSTYLE_BLOCKS = 3    # early blocks: their per-channel statistics carry posture and proportions more than the sign
MIXSTYLE_ALPHA = 0.1   # Beta(alpha, alpha) mixing weights, the published MixStyle setting
ADVERSARY_HIDDEN = 64  # the signer classifier's hidden width (one ReLU layer, as DANN's domain classifier)


# ------------------------------------------------------------------------------------------ preparation
def resample(seq: np.ndarray, frames: int) -> np.ndarray:
    """(T, V, C) -> (frames, V, C) by linear interpolation over time (T = 1 repeats the frame)."""
    t = len(seq)
    if t == 1:
        return np.repeat(seq, frames, axis=0)
    pos = np.linspace(0.0, t - 1, frames)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, t - 1)
    w = (pos - lo)[:, None, None].astype(seq.dtype)
    return seq[lo] * (1 - w) + seq[hi] * w


def rotate_about_vertical(seq: np.ndarray, angle: float) -> np.ndarray:
    """Turn (…, 3) points by ``angle`` radians about the y (vertical) axis."""
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], dtype=seq.dtype)
    return seq @ rot.T


BODY_SIZES = ("shoulder_width", "bone_lengths")


def mean_bone_length(seq: np.ndarray, graph: Graph, exclude: tuple[str, ...] = ()) -> float:
    """Mean over frames and over the graph's bones (child, parent) that touch no joint named in ``exclude``."""
    names = list(graph.joint_names)
    bones = [(c, p) for c, p in graph.inward if names[c] not in exclude and names[p] not in exclude]
    if not bones:
        raise ValueError(f"graph {graph.name} has no bone outside the excluded joints")
    child, parent = zip(*bones)
    return float(np.linalg.norm(seq[:, list(child)] - seq[:, list(parent)], axis=-1).mean())


def body_frame(seq: np.ndarray, graph: Graph, size: str = "shoulder_width",
               exclude: tuple[str, ...] = ()) -> np.ndarray:
    """Centre on the graph's centre joint, turn the shoulder line onto x, divide by the body's size: the shoulder
    width, or (``size="bone_lengths"``) the mean length of the bones that touch no joint in ``exclude``."""
    if size not in BODY_SIZES:
        raise ValueError(f"unknown body size {size!r} (known: {', '.join(BODY_SIZES)})")
    names = list(graph.joint_names)
    left, right = names.index("pose.left_shoulder"), names.index("pose.right_shoulder")
    out = seq - seq[:, graph.center].mean(axis=0)
    line = (out[:, right] - out[:, left]).mean(axis=0)  # subject's left -> right
    out = rotate_about_vertical(out, math.atan2(line[2], line[0]))
    unit = float(np.linalg.norm(line)) if size == "shoulder_width" else mean_bone_length(out, graph, exclude)
    if unit <= 1e-6:
        raise ValueError(f"the body's size ({size}) is zero: its joints coincide")
    return out / unit


def prepare(seq: np.ndarray, graph: Graph, frames: int, size: str = "shoulder_width",
            exclude: tuple[str, ...] = ()) -> np.ndarray:
    return resample(body_frame(seq, graph, size, exclude), frames).astype(np.float32)


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """3x3 rotation: roll about z (depth axis), then pitch about x (shoulder line), then yaw about y (vertical)."""
    cy, sy, cp, sp, cr, sr = (math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch),
                              math.cos(roll), math.sin(roll))
    about_y = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    about_x = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    about_z = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])
    return about_y @ about_x @ about_z


def outward_edges(graph: Graph) -> list[tuple[int, int]]:
    """The graph's (parent, child) edges in an order that reaches every parent before its children, starting at
    the centre joint."""
    children: dict[int, list[int]] = {}
    for child, parent in graph.inward:
        children.setdefault(parent, []).append(child)
    order, frontier = [], [graph.center]
    while frontier:
        parent = frontier.pop(0)
        for child in children.get(parent, []):
            order.append((parent, child))
            frontier.append(child)
    if len(order) != len(graph.inward):
        raise ValueError(f"graph {graph.name}: not every joint hangs from the centre joint {graph.center}")
    return order


def scale_bones(seq: np.ndarray, graph: Graph, factors: np.ndarray) -> np.ndarray:
    """(T, V, 3) positions with every bone (a joint minus its parent) times its child joint's factor, rebuilt
    outwards from the centre joint, which stays put: other limb proportions, the same joint angles."""
    out = seq.copy()
    for parent, child in outward_edges(graph):
        out[:, child] = out[:, parent] + factors[child] * (seq[:, child] - seq[:, parent])
    return out


# the joints each arm turns about, shoulders before elbows: the upper arm and the forearm each get their own angles
ARM_PIVOTS = ("pose.left_shoulder", "pose.right_shoulder", "pose.left_elbow", "pose.right_elbow")


def descendants(graph: Graph, joint: int) -> list[int]:
    """Every joint that hangs from ``joint`` (its children, their children, ...), in outward order."""
    below = [joint]
    for parent, child in outward_edges(graph):
        if parent in below:
            below.append(child)
    return below[1:]


def turn_arms(seq: np.ndarray, graph: Graph, angles: np.ndarray) -> np.ndarray:
    """(T, V, 3) positions with everything below each joint of ``ARM_PIVOTS`` turned about it by ``angles[i] =
    (pitch, roll)`` radians, shoulders first: the same movement, made higher or lower, further forward or to the
    side, with the elbow bent more or less. Bone lengths are kept."""
    names = list(graph.joint_names)
    missing = [name for name in ARM_PIVOTS if name not in names]
    if missing:
        raise ValueError(f"arm_turn: graph {graph.name} has no {', '.join(missing)} to turn the arms about")
    out = seq.copy()
    for (pitch, roll), pivot_name in zip(angles, ARM_PIVOTS):
        pivot = names.index(pivot_name)
        below = descendants(graph, pivot)
        centre = out[:, pivot:pivot + 1]
        out[:, below] = centre + (out[:, below] - centre) @ rotation(0.0, pitch, roll).T.astype(seq.dtype)
    return out


def augment(seq: np.ndarray, cfg: SupervisedConfig, rng: np.random.Generator,
            graph: Graph | None = None) -> np.ndarray:
    """A randomly cropped (time), turned, tilted, scaled and joint-dropped copy of a prepared (frames, V, 3)
    sample; every range comes from ``cfg`` (:class:`SupervisedConfig`). ``bone_scale`` and ``arm_turn`` need the
    ``graph``."""
    frames = cfg.frames
    keep = int(round(frames * rng.uniform(cfg.crop, 1.0)))
    start = int(rng.integers(0, frames - keep + 1))
    out = resample(seq[start:start + keep], frames)
    on_graph = [name for name in ("bone_scale", "arm_turn") if getattr(cfg, name) > 0]
    if on_graph:  # drawn only when on, so the other draws (and earlier results) stay as they were
        if graph is None:
            raise ValueError(f"augment: {' and '.join(on_graph)} {'needs' if len(on_graph) == 1 else 'need'} "
                             "the skeleton graph")
        if cfg.bone_scale > 0:
            out = scale_bones(out, graph, rng.uniform(1 - cfg.bone_scale, 1 + cfg.bone_scale, out.shape[1]))
        if cfg.arm_turn > 0:
            out = turn_arms(out, graph, rng.uniform(-cfg.arm_turn, cfg.arm_turn, (len(ARM_PIVOTS), 2)))
    rot = rotation(rng.uniform(-cfg.rotate, cfg.rotate), rng.uniform(-cfg.tilt, cfg.tilt),
                   rng.uniform(-cfg.tilt, cfg.tilt))
    size = rng.uniform(1 - cfg.scale, 1 + cfg.scale) * rng.uniform(1 - cfg.axis_scale, 1 + cfg.axis_scale, 3)
    out = (out @ rot.T) * size
    if cfg.joint_dropout > 0:
        out = out * (rng.random(out.shape[1]) >= cfg.joint_dropout)[None, :, None]
    return out.astype(np.float32)


def drop_joints(x: np.ndarray, graph: Graph, names: tuple[str, ...]) -> np.ndarray:
    """Zero the named joints of prepared samples (…, V, 3); an unknown name is an error."""
    if not names:
        return x
    known = list(graph.joint_names)
    missing = [n for n in names if n not in known]
    if missing:
        raise ValueError(f"drop_joints: {', '.join(missing)} not on graph {graph.name} ({', '.join(known)})")
    out = x.copy()
    out[..., [known.index(n) for n in names], :] = 0.0
    return out


def crop_views(x: np.ndarray, cfg: SupervisedConfig) -> list[np.ndarray]:
    """The whole samples, or ``test_crops`` evenly placed crops of the mean kept length resampled to ``frames``."""
    if cfg.test_crops <= 1:
        return [x]
    keep = int(round(cfg.frames * (1 + cfg.crop) / 2))
    starts = np.linspace(0, cfg.frames - keep, cfg.test_crops).round().astype(int)
    return [np.stack([resample(s[b:b + keep], cfg.frames) for s in x]).astype(np.float32) for b in starts]


STREAMS = ("joint", "bone", "motion", "bone_motion")
ENSEMBLE_RULES = ("arithmetic", "geometric")
# the smallest probability the geometric rule takes the log of: a softmax that underflowed to 0 in one model lowers
# that sign's score by a bounded amount instead of ruling it out whatever the other models say
PROBABILITY_FLOOR = 1e-9


def combine(probs: list[np.ndarray], rule: str = "arithmetic") -> np.ndarray:
    """One (N, classes) distribution from several models' softmax of the same samples: their mean
    (``arithmetic``) or the normalised exponential of their mean log-probability (``geometric``)."""
    if not probs:
        raise ValueError("no softmax to combine")
    stacked = np.stack([np.asarray(p, dtype=np.float64) for p in probs])
    if rule == "arithmetic":
        return stacked.mean(0)
    if rule != "geometric":
        raise ValueError(f"ensemble rule must be one of {ENSEMBLE_RULES}, got {rule!r}")
    log_mean = np.log(np.maximum(stacked, PROBABILITY_FLOOR)).mean(0)
    unnormalised = np.exp(log_mean - log_mean.max(1, keepdims=True))
    return unnormalised / unnormalised.sum(1, keepdims=True)


def stream_parts(stream: str) -> list[str]:
    """The streams one network reads: ``joint`` alone, or ``joint+motion`` (their channels side by side, one
    network: early fusion, as EfficientGCN feeds positions, velocities and bones together)."""
    parts = stream.split("+")
    unknown = [p for p in parts if p not in STREAMS]
    if unknown or len(set(parts)) != len(parts):
        raise ValueError(f"unknown or repeated input stream in {stream!r} (known: {', '.join(STREAMS)}, "
                         f"joined with '+')")
    return parts


def stream_arch(arch: STGCNPPConfig, stream: str) -> STGCNPPConfig:
    """``arch`` with as many input channels as ``stream`` stacks (3 per part for 3-channel positions)."""
    return replace(arch, in_channels=arch.in_channels * len(stream_parts(stream)))


def to_stream(x: np.ndarray, stream: str, graph: Graph) -> np.ndarray:
    """Joint positions (…, T, V, 3) as one of ST-GCN++'s input streams: ``joint`` (as is), ``bone`` (each joint
    minus its parent towards the centre; the centre joint 0), ``motion`` (next frame minus this one; the last
    frame 0) or ``bone_motion`` (the motion of the bones). All keep 3 channels, so each stream is the same network;
    a fused stream (``joint+motion``) concatenates its parts' channels."""
    if "+" in stream:
        return np.concatenate([to_stream(x, part, graph) for part in stream_parts(stream)], axis=-1)
    if stream == "joint":
        return x
    if stream == "bone":
        parent = np.arange(graph.num_nodes)
        for child, par in graph.inward:
            parent[child] = par
        return x - x[..., parent, :]
    if stream == "bone_motion":
        return to_stream(to_stream(x, "bone", graph), "motion", graph)
    if stream == "motion":
        out = np.zeros_like(x)
        out[..., :-1, :, :] = x[..., 1:, :, :] - x[..., :-1, :, :]
        return out
    raise ValueError(f"unknown input stream {stream!r} (known: {', '.join(STREAMS)})")


def load_signs(manifest: Path, shards: list[Path], frames: int, size: str = "shoulder_width",
               exclude: tuple[str, ...] = ()) -> tuple[SignSet, Graph]:
    """Join keypoint shards with the manifest's gloss (= sign) and signer; every sample is prepared (``size`` and
    ``exclude`` as in :func:`body_frame`)."""
    rows = read_manifest(manifest).set_index("sample_id")
    graph: Graph | None = None
    xs, labels, signers, ids = [], [], [], []
    for path in shards:
        layout = read_layout(path)
        this_graph = layout_graph(layout)
        if graph is not None and this_graph.name != graph.name:
            raise InputError(path, None, f"shard is on graph {this_graph.name}, earlier shards on {graph.name}")
        graph = this_graph
        for rec in iter_keypoints(path):
            if rec.sample_id not in rows.index:
                raise InputError(path, rec.sample_id, f"sample is not in the manifest {manifest}")
            row = rows.loc[rec.sample_id]
            if not str(row["gloss"]).strip():
                raise InputError(manifest, rec.sample_id, "empty gloss: an isolated sign needs its label")
            try:
                xs.append(prepare(rec.landmarks, graph, frames, size, exclude))
            except ValueError as err:
                raise InputError(path, rec.sample_id, str(err)) from err
            labels.append(str(row["gloss"]))
            signers.append(str(row["signer"]))
            ids.append(rec.sample_id)
    if graph is None or not xs:
        raise InputError(manifest, None, "no keypoint samples to pretrain on")
    classes = sorted(set(labels))
    index = {c: i for i, c in enumerate(classes)}
    return SignSet(np.stack(xs), np.array([index[c] for c in labels]), np.array(signers), classes, ids), graph


# ------------------------------------------------------------------------------------------------ model
def stream_input(x: np.ndarray, graph: Graph, cfg: SupervisedConfig, stream: str) -> np.ndarray:
    """Prepared positions -> the network's input: ``cfg.drop_joints`` zeroed, the stream taken, and the dropped
    joints zeroed again (a dropped joint's bone or motion would otherwise carry its neighbour's position)."""
    return drop_joints(to_stream(drop_joints(x, graph, cfg.drop_joints), stream, graph), graph, cfg.drop_joints)


class SampleMixedNorm:
    """A BatchNorm (mixed into torch's classes below) that normalises each sample by its own statistics (per channel
    over the other axes: time and joints, or time alone in the input's per-joint ``data_bn``) mixed at
    ``own_weight`` : 1 - ``own_weight`` with the batch's in training and the running ones at prediction: batch-instance
    normalisation with a fixed mix (Nam & Kim 2018), and at prediction the prediction-time BatchNorm of Schneider et
    al. (2020), so training sees what prediction does. Each sample is classified from itself and the training data
    alone. Running statistics follow the batch's as torch's do (momentum, or a cumulative mean when it is None), and
    parameters and buffers are BatchNorm's own, so a state dict loads either way. Written here because torch has no
    BatchNorm that mixes in each sample's statistics."""

    own_weight: float = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(2, x.dim()))
        shape = (1, -1) + (1,) * len(dims)
        own_mean, own_var = x.mean(dims, keepdim=True), x.var(dims, unbiased=False, keepdim=True)
        if self.training:
            ref_mean, ref_var = x.mean((0, *dims), keepdim=True), x.var((0, *dims), unbiased=False, keepdim=True)
            self._track(ref_mean.flatten(), ref_var.flatten(), x.numel() // x.shape[1])
        else:
            ref_mean, ref_var = self.running_mean.view(shape), self.running_var.view(shape)
        w = self.own_weight
        mean, var = (1 - w) * ref_mean + w * own_mean, (1 - w) * ref_var + w * own_var
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight.view(shape) + self.bias.view(shape)

    @torch.no_grad()
    def _track(self, mean: torch.Tensor, var: torch.Tensor, count: int) -> None:
        self.num_batches_tracked += 1
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean.mul_(1 - factor).add_(mean, alpha=factor)
        self.running_var.mul_(1 - factor).add_(var * count / max(count - 1, 1), alpha=factor)  # unbiased, as torch


class SampleMixedBatchNorm1d(SampleMixedNorm, torch.nn.BatchNorm1d):
    pass


class SampleMixedBatchNorm2d(SampleMixedNorm, torch.nn.BatchNorm2d):
    pass


MIXED_NORMS = {torch.nn.BatchNorm1d: SampleMixedBatchNorm1d, torch.nn.BatchNorm2d: SampleMixedBatchNorm2d}


def mix_sample_statistics(model: torch.nn.Module, own_weight: float) -> torch.nn.Module:
    """Every BatchNorm of ``model`` (in place) a :class:`SampleMixedNorm` with ``own_weight``, keeping its parameters,
    statistics and mode; returns ``model``."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, SampleMixedNorm):
                child.own_weight = own_weight
            elif type(child) in MIXED_NORMS:
                if not (child.affine and child.track_running_stats):
                    raise ValueError(f"{name}: only an affine BatchNorm with running statistics can mix in each "
                                     "sample's statistics")
                twin = MIXED_NORMS[type(child)](child.num_features, eps=child.eps, momentum=child.momentum,
                                                device=child.weight.device)
                twin.load_state_dict(child.state_dict())
                twin.own_weight = own_weight
                setattr(parent, name, twin.train(child.training))
    return model


@dataclass
class Trained:
    """One training run: its last weights and, with ``average_from``, the averaged weights (each in eval mode,
    BatchNorm statistics recomputed on the training samples), the last epoch's train accuracy and, with
    ``signer_adversarial``, the adversary's last-epoch accuracy at naming the signer (1 / signers: nothing left)."""

    last: _Classifier
    averaged: _Classifier | None
    train_accuracy: float
    signer_accuracy: float | None = None

    @property
    def model(self) -> _Classifier:
        """The weights the configuration asks for."""
        return self.averaged if self.averaged is not None else self.last


def averaging_start(steps: int, average_from: float) -> int | None:
    """Index of the first optimiser step whose weights enter the average; None when averaging is off."""
    return None if average_from <= 0 else min(int(average_from * steps), steps - 1)


def train_classifier(x: np.ndarray, y: np.ndarray, n_classes: int, graph: Graph, arch: STGCNPPConfig,
                     cfg: SupervisedConfig, seed: int, stream: str = "joint",
                     signers: np.ndarray | None = None) -> tuple[_Classifier, float]:
    """Train backbone + head on prepared samples (positions; ``stream`` says what the network reads); returns the
    model (eval mode, BatchNorm statistics recomputed on ``x``) and the last epoch's train accuracy. ``signers``:
    each sample's signer, which ``signer_adversarial`` needs."""
    trained = fit(x, y, n_classes, graph, arch, cfg, seed, stream, signers)
    return trained.model, trained.train_accuracy


def new_classifier(graph: Graph, arch: STGCNPPConfig, n_classes: int, cfg: SupervisedConfig,
                   stream: str = "joint") -> _Classifier:
    """An untrained ST-GCN++ classifier for ``stream`` as ``cfg`` trains it (its ``head``, and every BatchNorm
    mixing in each sample's statistics when ``sample_statistics`` > 0), on the CPU; a kept model's weights load into
    it."""
    model = _Classifier(STGCNPP(graph.adjacency(), stream_arch(arch, stream)), n_classes, cfg.head)
    return mix_sample_statistics(model, cfg.sample_statistics) if cfg.sample_statistics > 0 else model


class GradientReversal(torch.autograd.Function):
    """The identity forward; backward, the gradient times ``-weight`` (DANN's reversal layer)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: float) -> torch.Tensor:
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.weight * grad, None


class SignerAdversary(torch.nn.Module):
    """Predicts the training signer from the backbone's last features averaged over persons and time, each joint's
    side by side (what ``head: joints`` reads), through a gradient reversal: the adversary learns to tell signers
    apart while the backbone learns to make that hard."""

    def __init__(self, features: int, signers: int) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(features, ADVERSARY_HIDDEN), torch.nn.ReLU(),
                                       torch.nn.Linear(ADVERSARY_HIDDEN, signers))

    def forward(self, feats: torch.Tensor, weight: float) -> torch.Tensor:  # feats (N, M, C, T, V)
        return self.net(GradientReversal.apply(joint_features(feats), weight))


def adversary_weight(peak: float, progress: float) -> float:
    """DANN's schedule: ``peak`` * (2 / (1 + exp(-10 p)) - 1) at the fraction ``progress`` of training: 0 at the
    start, when the features mean nothing yet, near ``peak`` from the middle on."""
    return peak * (2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0)


def fit(x: np.ndarray, y: np.ndarray, n_classes: int, graph: Graph, arch: STGCNPPConfig, cfg: SupervisedConfig,
        seed: int, stream: str = "joint", signers: np.ndarray | None = None) -> Trained:
    """:func:`train_classifier`, keeping the last weights beside the averaged ones. Averaging draws no random
    numbers, so the last weights are those of the same run without it."""
    if cfg.signer_adversarial > 0 and (signers is None or len(signers) != len(y)):
        raise ValueError("signer_adversarial needs each training sample's signer (signers, one per sample)")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    # cfg.drop_joints are zeroed by stream_input, after augmentation (which moves each joint on its own, so a
    # dropped joint contributes nothing either way)
    device = resolve_device(cfg.device, "backbone.pretrain.supervised.device")
    model = new_classifier(graph, arch, n_classes, cfg, stream).to(device)
    groups = model.optimiser_groups(cfg.lr)
    adversary, captured = None, {}
    if cfg.signer_adversarial > 0:  # built only when on, so the random draws of runs without it stay as they were
        signer_names, signer_index = np.unique(signers, return_inverse=True)
        signer_targets = torch.from_numpy(signer_index).to(device)
        backbone = model.backbone
        adversary = SignerAdversary(backbone.out_channels * backbone.num_joints, len(signer_names)).to(device)
        groups.append({"params": list(adversary.parameters()), "lr": cfg.lr})
    opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * math.ceil(len(y) / cfg.batch_size)
    sched = one_cycle(opt, [group["lr"] for group in groups], steps)
    targets = torch.from_numpy(y).to(device)
    first_averaged = averaging_start(steps, cfg.average_from)
    averaged = torch.optim.swa_utils.AveragedModel(model) if first_averaged is not None else None
    hooks = [block.register_forward_hook(mixstyle_hook(cfg.mixstyle)) for block in
             model.backbone.gcn[:MIXSTYLE_BLOCKS]] if cfg.mixstyle > 0 else []
    if adversary is not None:  # the backbone's output, for the adversary beside the head that reads it
        hooks.append(model.backbone.register_forward_hook(lambda module, inputs, out: captured.update(feats=out)))
    train_acc, signer_acc = 0.0, None
    for _ in range(cfg.epochs):
        model.train()
        order = rng.permutation(len(y))
        correct, seen = torch.zeros((), dtype=torch.long, device=device), 0  # summed on the device: no sync per step
        named = torch.zeros((), dtype=torch.long, device=device)  # samples whose signer the adversary named
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            if len(idx) < 2:  # BatchNorm needs more than one value per channel in training mode
                sched.step()
                continue
            batch = np.stack([augment(x[j], cfg, rng, graph) for j in idx]) if cfg.augment else x[idx]
            labels = targets[torch.from_numpy(idx).to(device)]
            logits = model(torch.from_numpy(stream_input(batch, graph, cfg, stream)).to(device).unsqueeze(1))
            loss = F.cross_entropy(logits, labels, label_smoothing=cfg.label_smoothing)
            if adversary is not None:
                weight = adversary_weight(cfg.signer_adversarial, sched.last_epoch / steps)
                who = signer_targets[torch.from_numpy(idx).to(device)]
                guess = adversary(captured.pop("feats"), weight)
                loss = loss + F.cross_entropy(guess, who)
                named += (guess.argmax(1) == who).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if averaged is not None and sched.last_epoch > first_averaged:  # last_epoch: the steps taken so far
                averaged.update_parameters(model)
            correct += (logits.argmax(1) == labels).sum()
            seen += len(idx)
        train_acc = int(correct) / max(seen, 1)
        signer_acc = int(named) / max(seen, 1) if adversary is not None else None
    for hook in hooks:  # training only: the statistics recomputed below and every prediction see plain features
        hook.remove()
    inputs = stream_input(x, graph, cfg, stream)
    recalibrate_batchnorm(model, inputs, cfg.batch_size)
    mean_model = None
    if averaged is not None:
        if int(averaged.n_averaged) == 0:
            raise ValueError(f"average_from {cfg.average_from}: no optimiser step of {steps} entered the average")
        mean_model = averaged.module  # the averaged parameters; BatchNorm statistics are recomputed for them
        recalibrate_batchnorm(mean_model, inputs, cfg.batch_size)
    return Trained(model, mean_model, train_acc, signer_acc)


def mix_statistics(x: torch.Tensor, alpha: float = MIXSTYLE_ALPHA, eps: float = 1e-6) -> torch.Tensor:
    """MixStyle (Zhou et al., ICLR 2021) on block features (N, C, T, V): each sample is normalised by its own
    per-channel mean and standard deviation over time and joints, then rescaled with a Beta(alpha, alpha) mix of
    its own and a random other sample's. Statistics are detached, as published. Torch's global generator (seeded
    by the trainer) draws the partners and weights, so training stays reproducible."""
    n = x.shape[0]
    mean = x.mean(dim=(2, 3), keepdim=True).detach()
    std = (x.var(dim=(2, 3), keepdim=True) + eps).sqrt().detach()
    weight = torch.distributions.Beta(alpha, alpha).sample((n, 1, 1, 1)).to(x.device)
    partner = torch.randperm(n).to(x.device)
    mixed_mean = weight * mean + (1 - weight) * mean[partner]
    mixed_std = weight * std + (1 - weight) * std[partner]
    return (x - mean) / std * mixed_std + mixed_mean


def mixstyle_hook(probability: float) -> Callable[[torch.nn.Module, Any, torch.Tensor], torch.Tensor | None]:
    """A forward hook that mixes a training batch's feature statistics with ``probability``; in eval mode, and for
    the other batches, the block's output passes unchanged."""
    def hook(module: torch.nn.Module, inputs: Any, output: torch.Tensor) -> torch.Tensor | None:
        if not module.training or float(torch.rand(())) >= probability:
            return None
        return mix_statistics(output)
    return hook


@torch.no_grad()
def recalibrate_batchnorm(model: torch.nn.Module, x: np.ndarray, batch_size: int) -> None:
    """Recompute every BatchNorm's running statistics from samples ``x`` (the unaugmented training samples, or a
    held-out signer's in :func:`adapt_to_signer`) under the final weights, then switch to eval mode. The statistics
    are the mean over batches of ``batch_size`` (a short last batch weighs as much as a full one).

    Short schedules move the weights faster than the running averages (momentum 0.1) follow, and evaluation
    with stale statistics predicts one class (measured: train accuracy 0.7, eval-mode 0.33 = constant on a
    3-class toy after 36 steps). Cumulative averaging (momentum None) over one pass fixes that.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    device = device_of(model)
    for i in range(0, len(x), batch_size):
        model(torch.from_numpy(x[i:i + batch_size]).to(device).unsqueeze(1))
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    model.eval()


def adapt_to_signer(model: _Classifier, x: np.ndarray, graph: Graph, cfg: SupervisedConfig,
                    stream: str = "joint") -> None:
    """AdaBN: every BatchNorm's statistics recomputed on one signer's prepared samples ``x`` (labels are not read),
    so that this signer's posture, proportions and size of movement are normalised as the training signers' were.
    Using the held-out signer's unlabeled samples is unsupervised adaptation; results say so (:func:`metric`)."""
    recalibrate_batchnorm(model, stream_input(x, graph, cfg, stream), cfg.batch_size)


def metric(cfg: SupervisedConfig) -> str:
    return METRIC + (ADAPTED if cfg.adapt_batchnorm else "")


def device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def logits_of(model: _Classifier, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    device = device_of(model)
    return np.concatenate([model(torch.from_numpy(x[i:i + batch_size]).to(device).unsqueeze(1)).cpu().numpy()
                           for i in range(0, len(x), batch_size)])


def probabilities(model: _Classifier, x: np.ndarray, graph: Graph, cfg: SupervisedConfig,
                  stream: str = "joint") -> np.ndarray:
    """(N, classes) softmax of prepared positions ``x``, averaged over ``cfg.test_crops`` temporal crops."""
    views = crop_views(x, cfg)
    return sum(torch.softmax(torch.from_numpy(logits_of(model, stream_input(v, graph, cfg, stream))), 1).numpy()
               for v in views) / len(views)


def loso(signs: SignSet, graph: Graph, arch: STGCNPPConfig, cfg: SupervisedConfig, seed: int,
         held_out: list[str] | None = None,
         on_stream: Callable[[str, str, np.ndarray], None] | None = None) -> list[dict[str, Any]]:
    """One row per held-out signer (all signers, or ``held_out``). With several ``cfg.streams`` one model is
    trained per stream and the held-out signer is classified by their softmax combined by ``cfg.ensemble``;
    ``stream_accuracy`` gives each stream alone and ``train_accuracy`` is their mean. ``on_stream(signer, stream,
    softmax)`` receives each stream's held-out softmax (benchmarks keep them to score other ensembles)."""
    rows = []
    n_classes = len(signs.classes)
    for signer in held_out if held_out is not None else sorted(set(signs.signers.tolist())):
        test = signs.signers == signer
        if not test.any():
            raise ValueError(f"signer {signer!r} has no samples")
        start = time.perf_counter()
        truth = signs.y[test]
        per_stream, stream_accuracy, train_accuracies = [], {}, []
        for stream in cfg.streams:
            model, train_acc = train_classifier(signs.x[~test], signs.y[~test], n_classes, graph, arch, cfg, seed,
                                                stream, signs.signers[~test])
            if cfg.adapt_batchnorm:
                adapt_to_signer(model, signs.x[test], graph, cfg, stream)
            stream_probs = probabilities(model, signs.x[test], graph, cfg, stream)
            stream_accuracy[stream] = float((stream_probs.argmax(1) == truth).mean())
            if on_stream is not None:
                on_stream(str(signer), stream, stream_probs)
            train_accuracies.append(train_acc)
            per_stream.append(stream_probs)
        pred = combine(per_stream, cfg.ensemble).argmax(1)
        most_frequent = Counter(signs.y[~test].tolist()).most_common(1)[0][0]
        row = {
            "held_out_signer": str(signer), "test_samples": int(test.sum()), "train_samples": int((~test).sum()),
            "accuracy": float((pred == truth).mean()), "chance": 1.0 / n_classes,
            "constant_baseline": float((truth == most_frequent).mean()),
            "distinct_predictions": int(len(set(pred.tolist()))), "classes": n_classes,
            "train_accuracy": float(np.mean(train_accuracies)), "seconds": round(time.perf_counter() - start, 1),
            "stream_accuracy": stream_accuracy,
        }
        log.info("held out %s: accuracy %.3f (%d/%d; chance %.3f, constant %.3f, %d distinct predictions), "
                 "train accuracy %.3f, %.0f s; per stream %s%s", signer, row["accuracy"], int((pred == truth).sum()),
                 len(truth), row["chance"], row["constant_baseline"], row["distinct_predictions"],
                 row["train_accuracy"], row["seconds"], stream_accuracy,
                 "; BatchNorm adapted to the held-out signer" if cfg.adapt_batchnorm else "")
        rows.append(row)
    return rows


def mean_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The mean over held-out signers (each signer weighs the same, as LOSO papers report)."""
    out: dict[str, Any] = {"held_out_signer": "mean"}
    for key in CSV_COLUMNS[1:]:
        values = [r[key] for r in rows]
        out[key] = sum(values) if key in ("seconds",) else float(np.mean(values))
    out["stream_accuracy"] = {stream: float(np.mean([r["stream_accuracy"][stream] for r in rows]))
                              for stream in rows[0]["stream_accuracy"]}
    return out


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()})


# -------------------------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="pipeline config YAML (backbone.pretrain.supervised)")
    parser.add_argument("--manifest", required=True, type=Path, help="the source's manifest.parquet")
    parser.add_argument("--keypoints", required=True, type=Path, nargs="+", help="the source's keypoint shard(s)")
    parser.add_argument("--csv", type=Path, default=None,
                        help="LOSO accuracy table, e.g. results/pretraining/isl_kinect.csv (with --report: run the evaluation)")
    parser.add_argument("--report", type=Path, default=None, help="JSON of the evaluation: config, classes, per-signer rows, provenance")
    parser.add_argument("--out", type=Path, default=None, help="pyskl-format checkpoint trained on every signer")
    parser.add_argument("--held-out", nargs="+", default=None, help="only these held-out signers (default: every signer)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (pass the job's core count)")
    parser.add_argument("--dataset", default=None,
                        help="dataset whose effective config applies (demo overrides: the width of a demo backbone)")


def run(args: argparse.Namespace) -> int:
    """The evaluation (``--csv`` + ``--report``: leave-one-signer-out) and the checkpoint (``--out``: one model on
    every signer) are independent; the workflow runs them as two jobs, so the backbone does not wait for the LOSO."""
    if (args.csv is None) != (args.report is None):
        raise InputError(args.csv or args.report, None, "--csv and --report go together (the LOSO evaluation)")
    if args.csv is None and args.out is None:
        raise InputError(Path(args.config), None, "nothing to do: give --csv/--report (LOSO evaluation) and/or --out (checkpoint)")
    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_config(args.config)
    if args.dataset:
        config = effective_config(config, args.dataset)
    cfg = SupervisedConfig.from_config(config)
    bb = config.get("backbone", {})
    arch = STGCNPPConfig(in_channels=int(bb.get("in_channels", 3)),
                         base_channels=int(cfg.base_channels or bb.get("base_channels", 64)))
    seed = int(config.get("seed", 1234))
    start = time.perf_counter()
    signs, graph = load_signs(args.manifest, list(args.keypoints), cfg.frames, cfg.body_size, cfg.drop_joints)
    log.info("%d samples, %d signs, %d signers on graph %s (%d joints); %s", len(signs.y), len(signs.classes),
             len(set(signs.signers)), graph.name, graph.num_nodes, asdict(cfg))
    summary: dict[str, Any] = {
        "task": f"classify isolated signs ({len(signs.classes)} classes) on the {graph.name} graph",
        "layout": graph.name, "metric": metric(cfg), "architecture": arch.to_dict(), "supervised": asdict(cfg),
        "classes": signs.classes, "samples": int(len(signs.y)), "signers": sorted(set(signs.signers.tolist())),
        "seed": seed, "data": {"manifest": str(args.manifest), "keypoints": [str(p) for p in args.keypoints]},
    }
    if args.csv is not None:
        rows = loso(signs, graph, arch, cfg, seed, args.held_out)
        rows.append(mean_row(rows[:]))
        summary["loso"] = rows
        summary["wall_seconds"] = round(time.perf_counter() - start, 1)
        write_csv(args.csv, rows)
        write_json(args.report, {**summary, "provenance": provenance(config)})
        log.info("LOSO mean accuracy %.4f over %d held-out signer(s) (chance %.4f); wrote %s, %s",
                 rows[-1]["accuracy"], len(rows) - 1, rows[-1]["chance"], args.csv, args.report)
    if args.out is not None:
        final, final_acc = train_classifier(signs.x, signs.y, len(signs.classes), graph, arch,
                                            replace(cfg, sample_statistics=0.0, head="mean", signer_adversarial=0.0),
                                            seed)  # LOSO only
        summary["final_train_accuracy"] = final_acc
        summary["wall_seconds"] = round(time.perf_counter() - start, 1)
        save_pyskl_checkpoint(args.out, pyskl_state_dict(final), {"hatl": summary, "provenance": provenance(config),
                                                                   "backbone": pretrained_on_files(args.keypoints).to_dict()})
        log.info("all-signer model: last-epoch train accuracy %.3f; wrote %s", final_acc, args.out)
    return 0
