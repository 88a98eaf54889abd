"""Masked keypoint pretraining of ST-GCN++ (``hatl pretrain-masked``), after MS-MAE (Mo et al. 2025).

Unlabeled keypoint sequences (the training rows of configured datasets, and pretraining sources such as
isl_kinect, labels ignored) are cut into windows; in each window a fraction of the time steps of each stream
is masked and the network reconstructs the masked keypoints. Only the backbone is kept: it is saved in pyskl's
checkpoint format on the coco-17 skeleton, so ``hatl import-backbone`` maps it onto each dataset's MediaPipe
graph exactly like a released pyskl checkpoint or ``pretrain-demo``'s.

What is MS-MAE's and what is simplified (docs/backbone.md says the same):

* streams and masking as MS-MAE's "DiffMask": three streams (body, left arm, right arm), time cut into cubes of
  ``CUBE`` frames (MS-MAE's stride 4), ``mask_ratio`` of the cubes of EACH stream masked independently (0.5, the
  paper's best ratio); the loss is the mean squared error over the masked keypoints only, ignoring keypoints that
  were never observed (MS-MAE ignores MediaPipe failures the same way).
* simplified: the encoder is ST-GCN++ (the backbone HATL fine-tunes), not a Transformer, so masked cubes cannot
  be dropped from the input: they are zeroed (BERT/SignBERT-style in-place masking), and the "decoder" is a
  two-layer 1x1 convolution from each backbone output step (which spans one cube: the backbone downsamples time by
  4) to the cube's 4 frames of that joint. The streams are coco joints, not MediaPipe's 21-point hands: pyskl's
  checkpoint layouts have no hand joints, so the hands are the left/right arm chains (elbow, wrist).
* the skeleton is coco-17: MediaPipe pose joints map as in ``pretrain-demo`` (knees/ankles are not observed in
  upper-body video: they are zero and never scored), Kinect-20 joints as :data:`COCO_FROM_KINECT20` (eyes and
  ears missing). Each window is centred on its mean shoulder midpoint and scaled by its mean shoulder width;
  Kinect skeletons are first turned about the vertical so the shoulders face the sensor and flipped into image
  orientation (x to the viewer's right, y down), the orientation of MediaPipe's coordinates.

Residual formulation (not MS-MAE's: its Transformer drops the masked tokens): the masked frames of each joint
are first filled by linear interpolation between its nearest visible frames before and after (the one visible
side when only one exists), the network reads that filled sequence and predicts the offset from it. The
decoder's last layer starts at zero, so the untrained model IS the interpolation baseline, and training can
only start from there; without it a zero-filled input leaves the network to relearn the pose itself, and 5
epochs ended above copy-last-frame (docs/validation.md, 4b).

Reported beside the model (held-out windows, fixed masks): the reconstruction error of copying the last visible
frame of the same joint into the masked frames (the first visible later frame when none precedes), of linear
interpolation (the residual's starting point), and of predicting the centre (zero), per stream too. Errors are
in shoulder widths.
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hatl.config import load_config
from hatl.errors import InputError
from hatl.folds import MAIN, fold_index
from hatl.io import write_json
from hatl.keypoint_store import iter_keypoints, read_layout
from hatl.landmarks import Layout
from hatl.models.backbone_source import pretrained_on_files
from hatl.models.graph import coco_graph
from hatl.models.pretrain import one_cycle, pose_to_coco, save_pyskl_checkpoint, trains_run_fold, window_starts
from hatl.models.pretrain_supervised import rotate_about_vertical
from hatl.models.stgcnpp import STGCNPP, STGCNPPConfig
from hatl.provenance import provenance

log = logging.getLogger(__name__)

CUBE = 4  # frames per masked time step: MS-MAE's cube stride, and the backbone's temporal downsampling (2 x 2)
METRIC = "masked-keypoint MSE | masked, observed coco joints | shoulder widths^2 | held-out windows, fixed masks"
COCO_JOINTS = 17
L_SHOULDER, R_SHOULDER = 5, 6
# coco indices of each stream (MS-MAE's body / left hand / right hand, on a skeleton without hands)
STREAMS: dict[str, tuple[int, ...]] = {
    "body": (0, 1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16),
    "left_arm": (7, 9),
    "right_arm": (8, 10),
}
# coco joint -> kinect20 joint (hatl.landmarks.KINECT20_NAMES order); eyes and ears (1-4) have no Kinect joint
COCO_FROM_KINECT20 = {0: 0, 5: 2, 6: 3, 7: 4, 8: 5, 9: 6, 10: 7, 11: 12, 12: 13, 13: 14, 14: 15, 15: 16, 16: 17}
KINECT_SHOULDERS = (2, 3)  # left, right


@dataclass(frozen=True)
class MaskedConfig:
    """``backbone.pretrain.masked`` (config/README.md)."""

    window: int = 32
    mask_ratio: float = 0.5
    epochs: int = 5
    batch_size: int = 32
    lr: float = 0.002
    weight_decay: float = 0.0005
    max_windows: int = 4096
    val_fraction: float = 0.1
    base_channels: int | None = None

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> MaskedConfig:
        return cls(**dict(config.get("backbone", {}).get("pretrain", {}).get("masked", {}) or {}))

    def check(self) -> None:
        if self.window < CUBE or self.window % CUBE:
            raise ValueError(f"backbone.pretrain.masked.window must be a positive multiple of {CUBE}, got {self.window}")
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError(f"backbone.pretrain.masked.mask_ratio must lie in (0, 1), got {self.mask_ratio}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"backbone.pretrain.masked.val_fraction must lie in [0, 1), got {self.val_fraction}")


# ------------------------------------------------------------------------------------------ coco sequences
def coco_from_mediapipe(landmarks: np.ndarray, pose_observed: np.ndarray, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """(T, 17, 3) coco joints and (T, 17) observed flags; the synthesised legs of pose_to_coco are unobserved."""
    coco = pose_to_coco(landmarks, layout)
    observed = np.repeat(pose_observed[:, None], COCO_JOINTS, axis=1)
    observed[:, 13:] = False
    coco[:, 13:] = 0.0
    return coco, observed


def coco_from_kinect20(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kinect camera space (metres, y up, x to the subject's right) -> coco joints in image orientation.

    Turned about the vertical so the mean shoulder line is the x axis (the signer faces the sensor), then x
    and y flipped: in MediaPipe's image coordinates x grows to the viewer's right (the subject's left) and y
    grows downwards.
    """
    left, right = KINECT_SHOULDERS
    line = (landmarks[:, right] - landmarks[:, left]).mean(axis=0)  # subject's left -> right
    turned = rotate_about_vertical(landmarks - landmarks[:, [left, right]].mean(axis=(0, 1)), math.atan2(line[2], line[0]))
    turned = turned * np.array([-1.0, -1.0, 1.0], dtype=turned.dtype)
    coco = np.zeros((len(landmarks), COCO_JOINTS, 3), dtype=np.float32)
    observed = np.zeros((len(landmarks), COCO_JOINTS), dtype=bool)
    for c, k in COCO_FROM_KINECT20.items():
        coco[:, c] = turned[:, k]
        observed[:, c] = True
    return coco, observed


def body_normalise(coco: np.ndarray, observed: np.ndarray) -> np.ndarray | None:
    """Centre on the mean shoulder midpoint and scale by the mean shoulder width over frames where both
    shoulders are observed; None when there is no such frame or the width is zero."""
    both = observed[:, L_SHOULDER] & observed[:, R_SHOULDER]
    if not both.any():
        return None
    shoulders = coco[both][:, [L_SHOULDER, R_SHOULDER]]
    width = float(np.linalg.norm(shoulders[:, 1] - shoulders[:, 0], axis=-1).mean())
    if width <= 1e-6:
        return None
    out = (coco - shoulders.mean(axis=(0, 1))) / width
    return np.where(observed[..., None], out, 0.0).astype(np.float32)


# ------------------------------------------------------------------------------------------------ windows
@dataclass
class WindowSet:
    """Windows (W, window, 17, 3), observed flags (W, window, 17), sequence index of each window."""

    x: np.ndarray
    observed: np.ndarray
    sequence: np.ndarray
    sources: Counter
    skipped: Counter


def cut_windows(coco: np.ndarray, observed: np.ndarray, window: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Half-overlapping windows; a short sequence is zero-padded and its padding is unobserved."""
    out = []
    for start in window_starts(len(coco), window):
        x, obs = coco[start:start + window], observed[start:start + window]
        if len(x) < window:
            pad = window - len(x)
            x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
            obs = np.concatenate([obs, np.zeros((pad, obs.shape[1]), bool)])
        out.append((x, obs))
    return out


def sequences_of(path: Path, fold: str | None) -> tuple[str, list[tuple[str, np.ndarray, np.ndarray]]]:
    """(kind, [(sample id, coco, observed)]) of one keypoint Parquet.

    ``fold`` None: a pretraining source (every row; labels unused). Otherwise a normalised training Parquet of a
    configured dataset: only the run fold's training rows (the rule of ``pretrain-demo``).
    """
    layout = read_layout(path)
    k = None if fold is None else fold_index(fold)
    if layout.groups == ("kinect20",):
        kind = "kinect20"
    elif "pose" in layout.groups:
        kind = "mediapipe"
    else:
        raise InputError(path, None, f"layout {layout.groups} has neither MediaPipe pose joints nor kinect20 joints: "
                         "masked pretraining reconstructs coco body joints")
    pose_group = layout.groups.index("pose") if kind == "mediapipe" else None
    out = []
    for rec in iter_keypoints(path, columns_extra=("fold",)):
        if fold is not None and not trains_run_fold(path, rec, k):
            continue
        if kind == "kinect20":
            coco, observed = coco_from_kinect20(rec.landmarks)
        else:
            coco, observed = coco_from_mediapipe(rec.landmarks, rec.mask[:, pose_group], layout)
        out.append((rec.sample_id, coco, observed))
    return kind, out


def build_windows(inputs: list[tuple[Path, str | None]], cfg: MaskedConfig, seed: int) -> tuple[WindowSet, WindowSet]:
    """Train and held-out windows; sequences (not windows) are held out, so no frame is in both."""
    xs, obs, seq_of = [], [], []
    sources: Counter = Counter()
    skipped: Counter = Counter()
    n_seq = 0
    for path, fold in inputs:
        kind, sequences = sequences_of(path, fold)
        for sample_id, coco, observed in sequences:
            if len(coco) == 0:
                skipped["sequence without frames"] += 1
                continue
            normed = body_normalise(coco, observed)
            if normed is None:
                skipped["no frame with both shoulders observed"] += 1
                continue
            for x, o in cut_windows(normed, observed, cfg.window):
                xs.append(x)
                obs.append(o)
                seq_of.append(n_seq)
            sources[kind] += 1
            n_seq += 1
    if not xs:
        raise InputError(inputs[0][0] if inputs else Path("."), None,
                         f"no windows to pretrain on (skipped: {dict(skipped) or 'none'})")
    x, observed, sequence = np.stack(xs), np.stack(obs), np.asarray(seq_of)
    rng = np.random.default_rng(seed)
    held = rng.random(n_seq) < cfg.val_fraction
    if cfg.val_fraction > 0 and not held.any():
        held[rng.integers(n_seq)] = True  # at least one sequence to report on
    if held.all():
        held[rng.integers(n_seq)] = False
    train_idx = np.flatnonzero(~held[sequence])
    val_idx = np.flatnonzero(held[sequence])
    if len(train_idx) > cfg.max_windows:  # a seeded subset: the demo budget caps the work, not the sources
        skipped[f"train windows beyond max_windows ({cfg.max_windows})"] += len(train_idx) - cfg.max_windows
        train_idx = np.sort(rng.choice(train_idx, cfg.max_windows, replace=False))
    val_cap = max(1, int(cfg.max_windows * cfg.val_fraction)) if cfg.val_fraction > 0 else 0
    if len(val_idx) > val_cap:
        skipped[f"held-out windows beyond {val_cap}"] += len(val_idx) - val_cap
        val_idx = np.sort(rng.choice(val_idx, val_cap, replace=False))

    def subset(idx: np.ndarray) -> WindowSet:
        return WindowSet(x[idx], observed[idx], sequence[idx], sources, skipped)

    return subset(train_idx), subset(val_idx)


# ---------------------------------------------------------------------------------------------- masking
def stream_masks(n: int, window: int, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """(n, window, 17) bool: per window and stream, ``round(ratio * cubes)`` (at least 1) random cubes masked."""
    cubes = window // CUBE
    k = min(cubes, max(1, int(round(ratio * cubes))))
    mask = np.zeros((n, window, COCO_JOINTS), dtype=bool)
    for joints in STREAMS.values():
        chosen = np.argsort(rng.random((n, cubes)), axis=1)[:, :k]  # k distinct cubes per window
        cube_mask = np.zeros((n, cubes), dtype=bool)
        np.put_along_axis(cube_mask, chosen, True, axis=1)
        frame_mask = np.repeat(cube_mask, CUBE, axis=1)  # (n, window)
        mask[:, :, list(joints)] |= frame_mask[:, :, None]
    return mask


def copy_last_frame(x: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Fill every frame of every joint with the last visible frame before it (the first visible one after when
    none precedes; zero when the joint is never visible). x (N, T, V, C), visible (N, T, V)."""
    n, t, v, _ = x.shape
    frames = np.arange(t)[None, :, None]
    last = np.maximum.accumulate(np.where(visible, frames, -1), axis=1)
    nxt = np.flip(np.minimum.accumulate(np.flip(np.where(visible, frames, t), axis=1), axis=1), axis=1)
    source = np.where(last >= 0, last, nxt)
    never = source >= t
    source = np.clip(source, 0, t - 1)
    filled = np.take_along_axis(x, source[..., None].repeat(x.shape[-1], axis=-1), axis=1)
    return np.where(never[..., None], 0.0, filled)


def linear_interpolation(x: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Fill every frame of every joint by linear interpolation in time between its nearest visible frames before
    and after; only one of them: copy it; neither: zero. Visible frames keep their value. x (N, T, V, C)."""
    n, t, v, _ = x.shape
    frames = np.arange(t)[None, :, None]
    last = np.maximum.accumulate(np.where(visible, frames, -1), axis=1)
    nxt = np.flip(np.minimum.accumulate(np.flip(np.where(visible, frames, t), axis=1), axis=1), axis=1)
    before = np.where(last >= 0, last, nxt)  # one-sided gaps copy the side that exists
    after = np.where(nxt < t, nxt, last)
    never = (last < 0) & (nxt >= t)
    before, after = np.clip(before, 0, t - 1), np.clip(after, 0, t - 1)
    span = np.maximum(after - before, 1)
    weight = np.where(after > before, (frames - before) / span, 0.0)[..., None]
    take = lambda idx: np.take_along_axis(x, idx[..., None].repeat(x.shape[-1], axis=-1), axis=1)  # noqa: E731
    filled = (1.0 - weight) * take(before) + weight * take(after)
    return np.where(never[..., None], 0.0, filled).astype(x.dtype, copy=False)


def masked_mse(pred: np.ndarray, target: np.ndarray, scored: np.ndarray) -> float:
    """Mean over scored keypoints of the squared distance (summed over x, y, z)."""
    if not scored.any():
        return float("nan")
    return float((((pred - target) ** 2).sum(-1))[scored].mean())


# ------------------------------------------------------------------------------------------------ model
class MaskedReconstructor(nn.Module):
    """ST-GCN++ + a 1x1-conv decoder from each output step to its cube's ``CUBE`` frames of every joint: the offset
    added to the interpolated input (the residual formulation; the last layer starts at zero)."""

    def __init__(self, backbone: STGCNPP, channels: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.channels = channels
        width = backbone.out_channels
        self.decoder = nn.Sequential(nn.Conv2d(width, width, 1), nn.ReLU(), nn.Conv2d(width, CUBE * channels, 1))
        nn.init.zeros_(self.decoder[-1].weight)  # untrained: prediction = the interpolated input
        nn.init.zeros_(self.decoder[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, T, V, C) interpolated input, T a multiple of CUBE -> reconstruction (N, T, V, C): x + offset."""
        feats = self.backbone(x.unsqueeze(1))[:, 0]  # (N, width, T / CUBE, V)
        out = self.decoder(feats)
        n, _, steps, v = out.shape
        offset = out.view(n, CUBE, self.channels, steps, v).permute(0, 3, 1, 4, 2).reshape(n, steps * CUBE, v, self.channels)
        return x + offset


def masked_input(x: np.ndarray, observed: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The network's input: masked and unobserved keypoints filled by interpolation from the visible ones."""
    return linear_interpolation(x, observed & ~mask).astype(np.float32)


def train(model: MaskedReconstructor, windows: WindowSet, cfg: MaskedConfig, seed: int) -> list[dict[str, Any]]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed + 1)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = len(windows.x)
    steps = cfg.epochs * math.ceil(n / cfg.batch_size)
    sched = one_cycle(opt, cfg.lr, steps)
    history = []
    for epoch in range(cfg.epochs):
        model.train()
        start = time.perf_counter()
        total, scored_total = 0.0, 0
        order = rng.permutation(n)
        for i in range(0, n, cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            if len(idx) < 2:  # BatchNorm needs more than one value per channel in training mode
                sched.step()
                continue
            x, obs = windows.x[idx], windows.observed[idx]
            mask = stream_masks(len(idx), cfg.window, cfg.mask_ratio, rng)
            scored = torch.from_numpy(mask & obs)
            pred = model(torch.from_numpy(masked_input(x, obs, mask)))
            err = ((pred - torch.from_numpy(x)) ** 2).sum(-1)
            count = int(scored.sum())
            if count == 0:
                sched.step()
                continue
            loss = err[scored].mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * count
            scored_total += count
        row = {"epoch": epoch + 1, "train_mse": total / max(scored_total, 1),
               "seconds": round(time.perf_counter() - start, 1)}
        history.append(row)
        log.info("epoch %d/%d: masked-keypoint MSE %.4f, %.1f s", epoch + 1, cfg.epochs, row["train_mse"], row["seconds"])
    model.eval()
    return history


@torch.no_grad()
def evaluate(model: MaskedReconstructor, windows: WindowSet, cfg: MaskedConfig, seed: int) -> dict[str, Any]:
    """Held-out reconstruction error of the model and of the two baselines under one fixed set of masks."""
    if len(windows.x) == 0:
        return {"windows": 0}
    mask = stream_masks(len(windows.x), cfg.window, cfg.mask_ratio, np.random.default_rng(seed + 2))
    scored = mask & windows.observed
    visible = windows.observed & ~mask
    preds = [model(torch.from_numpy(masked_input(windows.x[i:i + 64], windows.observed[i:i + 64], mask[i:i + 64]))).numpy()
             for i in range(0, len(windows.x), 64)]
    pred = np.concatenate(preds)
    predictions = {"model_mse": pred, "copy_last_frame_mse": copy_last_frame(windows.x, visible),
                   "interpolation_mse": linear_interpolation(windows.x, visible)}
    return {
        "windows": int(len(windows.x)), "scored_keypoints": int(scored.sum()),
        **{name: masked_mse(p, windows.x, scored) for name, p in predictions.items()},
        "zero_mse": masked_mse(np.zeros_like(windows.x), windows.x, scored),
        "per_stream": {
            stream: {name: masked_mse(p[:, :, list(j)], windows.x[:, :, list(j)], scored[:, :, list(j)])
                     for name, p in predictions.items()}
            for stream, j in STREAMS.items()
        },
    }


def backbone_state_dict(model: MaskedReconstructor) -> dict[str, torch.Tensor]:
    """pyskl's key names (``backbone.*``); the decoder is pretraining-only and not saved."""
    return {f"backbone.{k}": v.detach().clone() for k, v in model.backbone.state_dict().items()}


# -------------------------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="pipeline config YAML (backbone.pretrain.masked)")
    parser.add_argument("--data", nargs="*", default=[], type=Path,
                        help="normalised training Parquet(s) of configured datasets, e.g. results/DS/normalised/train.parquet")
    parser.add_argument("--folds", nargs="*", default=None,
                        help="run fold of each --data file (main or foldK; default main for all): only its training rows")
    parser.add_argument("--sources", nargs="*", default=[], type=Path,
                        help="keypoint shards of pretraining sources (e.g. results/pretraining/isl_kinect/keypoints/*.parquet): every row")
    parser.add_argument("--out", required=True, type=Path, help="pyskl-format checkpoint, e.g. results/pretrained/stgcnpp_masked.pth")
    parser.add_argument("--report", required=True, type=Path, help="JSON: config, history, reconstruction errors, provenance")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (pass the job's core count)")


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_config(args.config)
    cfg = MaskedConfig.from_config(config)
    try:
        cfg.check()
    except ValueError as err:
        raise InputError(Path(args.config), "backbone.pretrain.masked", str(err)) from err
    folds = args.folds or [MAIN] * len(args.data)
    if len(folds) != len(args.data):
        raise InputError(Path(args.config), None, f"{len(args.data)} --data file(s) but {len(folds)} --folds")
    inputs: list[tuple[Path, str | None]] = [(p, f) for p, f in zip(args.data, folds)] + [(p, None) for p in args.sources]
    if not inputs:
        raise InputError(Path(args.config), None, "nothing to pretrain on: give --data and/or --sources")
    for path, _ in inputs:
        if not path.is_file():
            raise InputError(path, None, "keypoint Parquet does not exist")
    bb = config.get("backbone", {})
    arch = STGCNPPConfig(in_channels=int(bb.get("in_channels", 3)),
                         base_channels=int(cfg.base_channels or bb.get("base_channels", 64)))
    seed = int(config.get("seed", 1234))
    start = time.perf_counter()
    train_set, val_set = build_windows(inputs, cfg, seed)
    log.info("masked pretraining: %d train / %d held-out windows of %d frames from %s sequences; skipped: %s; %s",
             len(train_set.x), len(val_set.x), cfg.window, dict(train_set.sources), dict(train_set.skipped) or "none",
             asdict(cfg))
    torch.manual_seed(seed)
    model = MaskedReconstructor(STGCNPP(coco_graph().adjacency(), arch), arch.in_channels)
    before = evaluate(model, val_set, cfg, seed)  # untrained network: shows what training bought
    history = train(model, train_set, cfg, seed)
    after = evaluate(model, val_set, cfg, seed)
    wall = round(time.perf_counter() - start, 1)
    summary = {
        "task": "reconstruct masked coco keypoints (MS-MAE-style stream/cube masking)", "layout": "coco",
        "metric": METRIC, "architecture": arch.to_dict(), "masked": asdict(cfg), "cube": CUBE,
        "streams": {k: list(v) for k, v in STREAMS.items()},
        "train_windows": int(len(train_set.x)), "held_out_windows": int(len(val_set.x)),
        "sequences": dict(train_set.sources), "skipped": dict(train_set.skipped),
        "history": history, "held_out": after, "held_out_untrained": before, "wall_seconds": wall, "seed": seed,
        "data": [{"path": str(p), "fold": f} for p, f in inputs],
    }
    meta = {"hatl": summary, "provenance": provenance(config),
            "backbone": pretrained_on_files([p for p, _ in inputs]).to_dict()}  # what the weights saw (the tables' label)
    save_pyskl_checkpoint(args.out, backbone_state_dict(model), meta)
    write_json(args.report, {**summary, "provenance": provenance(config)})
    if after.get("windows"):
        log.info("held-out masked-keypoint MSE %.4f (copy-last-frame %.4f, linear interpolation %.4f, zero %.4f, "
                 "untrained %.4f) over %d keypoints; wall %.0f s; wrote %s", after["model_mse"],
                 after["copy_last_frame_mse"], after["interpolation_mse"], after["zero_mse"], before["model_mse"],
                 after["scored_keypoints"], wall, args.out)
    return 0
