"""Demo pretraining of ST-GCN++ on a synthetic skeleton-action task (``hatl pretrain-demo``).

The real pipeline starts from a released pyskl checkpoint (trained on NTU RGB+D). Without one, the demo
pretrains briefly on its own data and writes the result in pyskl's checkpoint format, so the default run
goes through exactly the import path (:mod:`hatl.models.checkpoint`) a real checkpoint takes.

Skeleton (``layout``): ``mediapipe`` (default) reads every joint of the normalised data on the MediaPipe graph
the translator's backbone uses (:func:`hatl.models.graph.mediapipe_graph`: pose and both hands in the demo),
and records that graph in the checkpoint's ``meta`` so that ``hatl import-backbone`` loads it unchanged.
``coco`` maps the MediaPipe pose joints to pyskl's coco-17 skeleton (nose, eyes, ears, shoulders, elbows,
wrists, hips; knees and ankles are not in the upper-body layout, so they are synthesised as fixed points one
and two torso lengths below each hip), as a released NTU checkpoint has it; the hands then never reach the
pretraining, and the demo's signs differ mostly by handshape, so the backbone learns little that separates
them (bench/learning_ladder.py, isolated rung). Windows of ``window`` frames are cropped at half-window
steps and each is classified:

* ``target: gloss``: the gloss that dominates the window. Glosses are assumed evenly spread over the
  sample (the normalised data has no gloss timing), so the dominant one is the gloss covering the window's
  centre frame. Only the ``max_classes`` most frequent glosses are classes; other windows are skipped.
* ``target: signer``: the signer of the sample.

Every skipped sample or window is counted with its reason and reported.

Two stages (``--init CHECKPOINT``): the backbone starts from a pretrained pyskl-format checkpoint (e.g. the
supervised isl_kinect one) imported onto the windows' MediaPipe graph by the ``import-backbone`` code (the
joints both skeletons have carry over, docs/backbone.md), instead of from random weights; the checkpoint's
provenance records both stages (``pretrained on isl_kinect (real) then phoenix14t windows (synthetic)``).
``--fallback-note`` is said in the provenance label when the workflow could not find a configured real source
and fell back to this pretraining alone.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from hatl.config import effective_config, load_config
from hatl.errors import InputError
from hatl.io import atomic_path, write_json
from hatl.folds import CV_SPLIT, MAIN, describe, fold_index, trains_fold
from hatl.keypoint_store import KeypointRecord, iter_keypoints, read_layout
from hatl.landmarks import Layout
from hatl.errors import ConfigError
from hatl.models.backbone_source import BackboneSource, pretrained_on_files, then, with_note
from hatl.models.checkpoint import import_checkpoint
from hatl.models.graph import Graph, coco_graph, mediapipe_graph
from hatl.models.stgcnpp import STGCNPP, STGCNPPConfig
from hatl.provenance import provenance

log = logging.getLogger(__name__)

# MediaPipe pose indices of coco joints 0-12 (nose, l/r eye, l/r ear, l/r shoulder, l/r elbow, l/r wrist, l/r hip)
COCO_FROM_POSE = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24)
L_SHOULDER, R_SHOULDER, L_HIP, R_HIP = 11, 12, 23, 24


@dataclass(frozen=True)
class PretrainConfig:
    """``backbone.pretrain_demo`` (see config/README.md)."""

    target: str = "gloss"
    layout: str = "mediapipe"  # mediapipe (every joint, the translator's graph) | coco (pyskl's 17 body joints)
    window: int = 32
    epochs: int = 3
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 5e-4
    max_classes: int = 20
    max_windows: int = 1024
    source: str | None = None  # which dataset the workflow feeds in (recorded in the checkpoint, not used here)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> PretrainConfig:
        section = dict(config.get("backbone", {}).get("pretrain_demo", {}) or {})
        return cls(**section)


def pose_to_coco(landmarks: np.ndarray, layout: Layout) -> np.ndarray:
    """(T, V, 3) MediaPipe layout -> (T, 17, 3) coco: 13 mapped joints + synthetic knees and ankles."""
    idx = [layout.index("pose", i) for i in COCO_FROM_POSE]
    out = np.zeros((landmarks.shape[0], 17, 3), dtype=np.float32)
    out[:, :13] = landmarks[:, idx]
    hips = landmarks[:, [layout.index("pose", L_HIP), layout.index("pose", R_HIP)]]
    shoulders = landmarks[:, [layout.index("pose", L_SHOULDER), layout.index("pose", R_SHOULDER)]]
    torso = hips.mean(axis=1) - shoulders.mean(axis=1)  # shoulder-mid -> hip-mid, "down" the body
    # fixed in the body frame: the legs of a standing signer do not move while signing
    out[:, 13:15] = hips + torso[:, None, :]  # knees (left, right)
    out[:, 15:17] = hips + 2.0 * torso[:, None, :]  # ankles
    return out


def skeleton_graph(layout: Layout, name: str) -> Graph:
    """The graph the pretraining runs on: the layout's own MediaPipe graph, or pyskl's coco."""
    if name == "coco":
        return coco_graph()
    if name == "mediapipe":
        return mediapipe_graph(layout)
    raise ValueError(f"backbone.pretrain_demo.layout must be mediapipe or coco, got {name!r}")


def to_skeleton(landmarks: np.ndarray, layout: Layout, name: str) -> np.ndarray:
    """(T, V, 3) normalised landmarks on the pretraining skeleton ``name`` (see :func:`skeleton_graph`)."""
    return pose_to_coco(landmarks, layout) if name == "coco" else landmarks.astype(np.float32, copy=False)


def window_starts(num_frames: int, window: int) -> list[int]:
    """Crops at half-window steps; the last crop is aligned to the end so no frame is left out."""
    if num_frames <= window:
        return [0]
    step = max(1, window // 2)
    starts = list(range(0, num_frames - window + 1, step))
    if starts[-1] != num_frames - window:
        starts.append(num_frames - window)
    return starts


def crop(seq: np.ndarray, start: int, window: int) -> np.ndarray:
    """A window of ``window`` frames; short sequences repeat their last frame (edge padding)."""
    piece = seq[start:start + window]
    if len(piece) < window:
        piece = np.concatenate([piece, np.repeat(piece[-1:], window - len(piece), axis=0)])
    return piece


def dominant_gloss(glosses: list[str], num_frames: int, start: int, window: int) -> str:
    """Gloss covering the window's centre frame under an even spread of glosses over the sample."""
    centre = min(start + window / 2.0, num_frames - 1e-6)
    pos = int(centre * len(glosses) / max(num_frames, 1))
    return glosses[min(pos, len(glosses) - 1)]


@dataclass
class WindowSet:
    x: np.ndarray  # (W, window, V, 3)
    y: np.ndarray  # (W,)
    classes: list[str]
    skipped: Counter
    samples: int
    held_out: int = 0  # rows of the fold's dev part, left out on purpose (not counted in samples)
    graph: Graph | None = None  # the skeleton of x (None: pyskl's coco)


def trains_run_fold(path: Path, rec: KeypointRecord, k: int | None) -> bool:
    """Whether a normalised row is a training row of the run fold (the rule of :mod:`hatl.folds`).

    ``main`` (k None) keeps every row of the files given, but refuses cross-validation rows: pretraining
    on all of ``trainval`` would show fold K's dev rows to the backbone fold K fine-tunes. ``foldK`` keeps
    the ``trainval`` rows with fold != K and refuses rows of other splits (test must never be pretrained on).
    """
    if k is None:
        if rec.split == CV_SPLIT:
            raise InputError(path, rec.sample_id, f"a cross-validation ({CV_SPLIT}) row with fold 'main': pass --fold foldK "
                             "so that fold K's dev rows stay out of the pretraining")
        return True
    if rec.split != CV_SPLIT:
        raise InputError(path, rec.sample_id, f"fold{k} pretrains on {CV_SPLIT} rows only; this row is split {rec.split!r}")
    row_fold = rec.extra.get("fold")
    if row_fold is None or int(row_fold) < 0:
        raise InputError(path, rec.sample_id, f"a {CV_SPLIT} row needs a cross-validation fold >= 0, got {row_fold!r}")
    return trains_fold(int(row_fold), k)


def build_windows(paths: list[Path], cfg: PretrainConfig, fold: str = MAIN) -> WindowSet:
    """Read the run fold's rows of normalised training Parquets and cut labelled windows on the ``cfg.layout``
    skeleton (deterministic order)."""
    if cfg.target not in ("gloss", "signer"):
        raise ValueError(f"backbone.pretrain_demo.target must be gloss or signer, got {cfg.target!r}")
    k = fold_index(fold)
    graph: Graph | None = None
    raw: list[tuple[np.ndarray, list[tuple[int, str]]]] = []
    skipped: Counter = Counter()
    samples = held_out = 0
    for path in paths:
        layout = read_layout(path)
        if cfg.layout == "coco" and "pose" not in layout.groups:
            raise InputError(path, None, "layout has no pose group: the coco mapping needs the pose joints")
        this_graph = skeleton_graph(layout, cfg.layout)
        if graph is not None and this_graph.joint_names != graph.joint_names:
            raise InputError(path, None, f"joint layout {this_graph.name} differs from the first file's {graph.name}: "
                             "one pretraining runs on one skeleton")
        graph = this_graph
        for rec in iter_keypoints(path, columns_extra=("gloss", "signer", "fold")):
            if not trains_run_fold(path, rec, k):
                held_out += 1
                continue
            samples += 1
            if rec.n_frames == 0:
                skipped["sample: no frames"] += 1
                continue
            if cfg.target == "gloss":
                glosses = str(rec.extra.get("gloss") or "").split()
                if not glosses:
                    skipped["sample: no gloss"] += 1
                    continue
                labels = [(s, dominant_gloss(glosses, rec.n_frames, s, cfg.window))
                          for s in window_starts(rec.n_frames, cfg.window)]
            else:
                signer = rec.extra.get("signer")
                if signer in (None, ""):
                    skipped["sample: no signer"] += 1
                    continue
                labels = [(s, str(signer)) for s in window_starts(rec.n_frames, cfg.window)]
            if rec.n_frames < cfg.window:
                skipped["sample: shorter than the window (edge-padded, kept)"] += 1
            raw.append((to_skeleton(rec.landmarks, layout, cfg.layout), labels))
    freq = Counter(label for _, labels in raw for _, label in labels)
    classes = sorted(freq, key=lambda c: (-freq[c], c))[: cfg.max_classes]
    class_id = {c: i for i, c in enumerate(classes)}
    xs, ys = [], []
    for seq, labels in raw:
        for start, label in labels:
            if label not in class_id:
                skipped[f"window: label outside the {cfg.max_classes} most frequent"] += 1
                continue
            xs.append(crop(seq, start, cfg.window))
            ys.append(class_id[label])
    if len(xs) > cfg.max_windows:
        # keep an evenly spaced subset so every part of the data stays represented
        keep = np.linspace(0, len(xs) - 1, cfg.max_windows).round().astype(int)
        skipped["window: beyond max_windows"] += len(xs) - len(keep)
        xs, ys = [xs[i] for i in keep], [ys[i] for i in keep]
    if len(classes) < 2 or not xs:
        where = paths[0] if paths else None
        raise InputError(where, None, f"need at least 2 classes of '{cfg.target}' windows to pretrain; "
                         f"found {len(classes)} classes, {len(xs)} windows (skipped: {dict(skipped)})")
    return WindowSet(np.stack(xs).astype(np.float32), np.asarray(ys, dtype=np.int64), classes, skipped, samples, held_out,
                     graph)


HEADS = ("mean", "joints", "recurrent")
RECURRENT_HIDDEN = 128  # bench/isl_loso_reference.py's GRU width, the classifier that generalised best to new signers
# the reference GRU's peak learning rate: at the backbone's 0.02 (AdamW) the recurrent head fit isl_kinect's training
# signers to 0.75-0.87 only, against 0.97 with head: joints (docs/validation.md section 4)
RECURRENT_LR = 2e-3


def joint_features(feats: torch.Tensor) -> torch.Tensor:
    """Backbone output (N, M, C, T, V) averaged over persons and time, each joint's channels side by side:
    (N, C * V), channel-major. What ``head: joints`` classifies and the signer adversary reads."""
    return feats.mean(dim=(1, 3)).flatten(1)


class _Classifier(nn.Module):
    """Backbone + a linear ``fc_cls`` over pooled features. ``head``: ``mean`` is pyskl's GCNHead (mean over persons,
    time and joints: the pooling the downstream translator's ``frame_features`` uses per frame); ``joints`` pools
    persons and time only and puts each joint's features side by side (C x V numbers), so the classifier sees which
    joint did what instead of the sum over the body; ``recurrent`` reads those per-joint features at every remaining
    time step through a linear layer, a bidirectional GRU and the mean of its states (then dropout 0.5), so it also
    sees in which order things happened."""

    def __init__(self, backbone: STGCNPP, num_classes: int, head: str = "mean") -> None:
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        self.backbone = backbone
        self.head = head
        features = backbone.out_channels * (1 if head == "mean" else backbone.num_joints)
        if head == "recurrent":
            self.head_in = nn.Linear(features, RECURRENT_HIDDEN)
            self.head_rnn = nn.GRU(RECURRENT_HIDDEN, RECURRENT_HIDDEN, batch_first=True, bidirectional=True)
            self.head_dropout = nn.Dropout(0.5)
            features = 2 * RECURRENT_HIDDEN
        self.fc_cls = nn.Linear(features, num_classes)
        nn.init.normal_(self.fc_cls.weight, std=0.01)  # GCNHead's init_std
        nn.init.zeros_(self.fc_cls.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.backbone(x)  # (N, M, C, T, V)
        if self.head == "joints":
            return self.fc_cls(joint_features(feats))
        if self.head == "recurrent":
            steps = feats.mean(dim=1).permute(0, 2, 1, 3).flatten(2)  # (N, T, C * V), channel-major per step
            states, _ = self.head_rnn(torch.relu(self.head_in(steps)))
            return self.fc_cls(self.head_dropout(states.mean(dim=1)))
        return self.fc_cls(feats.mean(dim=(3, 4)).mean(dim=1))

    def optimiser_groups(self, lr: float) -> list[dict[str, Any]]:
        """Parameter groups with their peak learning rates: a recurrent head's input layer and GRU at
        ``RECURRENT_LR`` (``lr`` when that is lower), everything else at ``lr``. One group for the other heads."""
        if self.head != "recurrent":
            return [{"params": list(self.parameters()), "lr": lr}]
        recurrent = [*self.head_in.parameters(), *self.head_rnn.parameters()]
        ids = {id(q) for q in recurrent}
        return [{"params": [q for q in self.parameters() if id(q) not in ids], "lr": lr},
                {"params": recurrent, "lr": min(lr, RECURRENT_LR)}]


def one_cycle(optimizer: torch.optim.Optimizer, max_lr: float | list[float], steps: int,
              warmup: float = 0.1) -> torch.optim.lr_scheduler.OneCycleLR:
    """torch's one-cycle schedule over ``steps`` optimiser steps (at least one): a warm-up over the fraction
    ``warmup`` of them, then a cosine decay. torch divides by zero when the warm-up is exactly one step (its first
    phase then ends at step 0: 10 steps at 0.1), so such a warm-up is taken as two steps; every other step count
    keeps ``warmup`` unchanged."""
    steps = max(steps, 1)
    if float(warmup * steps) - 1 == 0 and steps > 2:
        warmup = 2 / steps
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=steps, pct_start=warmup)


def pretrain(windows: WindowSet, arch: STGCNPPConfig, cfg: PretrainConfig, seed: int,
             init: STGCNPP | None = None) -> tuple[_Classifier, list[dict]]:
    """Train backbone + head on the windows (on their graph); returns the model and one history row per epoch.
    ``init``: a backbone on the windows' graph to start from (a first pretraining stage) instead of random weights."""
    torch.manual_seed(seed)
    graph = windows.graph or coco_graph()
    backbone = STGCNPP(graph.adjacency(), arch)
    if init is not None:  # same graph and widths (checked by the caller): every weight, the learned A included
        backbone.load_state_dict(init.state_dict(), strict=True)
    model = _Classifier(backbone, len(windows.classes))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    x = torch.from_numpy(windows.x).unsqueeze(1)  # M = 1
    y = torch.from_numpy(windows.y)
    steps_per_epoch = math.ceil(len(y) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.epochs * steps_per_epoch))
    gen = torch.Generator().manual_seed(seed)
    history = []
    bar = tqdm(range(cfg.epochs), desc="pretrain-demo", disable=not sys.stderr.isatty())
    for epoch in bar:
        model.train()
        order = torch.randperm(len(y), generator=gen)
        total, correct, seen = 0.0, 0, 0
        t0 = time.perf_counter()
        for i in range(0, len(y), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            if len(idx) < 2:  # BatchNorm needs more than one value per channel in training mode
                continue
            logits = model(x[idx])
            loss = F.cross_entropy(logits, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == y[idx]).sum())
            seen += len(idx)
        row = {"epoch": epoch + 1, "loss": total / max(seen, 1), "accuracy": correct / max(seen, 1),
               "seconds": round(time.perf_counter() - t0, 3)}
        history.append(row)
        bar.set_postfix(loss=f"{row['loss']:.3f}", acc=f"{row['accuracy']:.3f}")
        log.info("epoch %d/%d: loss %.4f, train accuracy %.3f (chance %.3f), %.1fs", epoch + 1, cfg.epochs,
                 row["loss"], row["accuracy"], 1.0 / len(windows.classes), row["seconds"])
    model.eval()
    return model, history


def pyskl_state_dict(model: _Classifier) -> dict[str, torch.Tensor]:
    """Keys as in a pyskl RecognizerGCN checkpoint: backbone.* and cls_head.fc_cls.*."""
    out = {f"backbone.{k}": v.detach().cpu().clone() for k, v in model.backbone.state_dict().items()}
    out["cls_head.fc_cls.weight"] = model.fc_cls.weight.detach().cpu().clone()
    out["cls_head.fc_cls.bias"] = model.fc_cls.bias.detach().cpu().clone()
    return out


def save_pyskl_checkpoint(path: str | Path, state_dict: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save({"meta": meta, "state_dict": state_dict}, tmp)


# ---------------------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="pipeline config YAML")
    parser.add_argument("--dataset", default=None, help="dataset whose effective config applies (demo overrides)")
    parser.add_argument("--data", required=True, nargs="+", help="normalised training Parquet(s), e.g. results/DS/normalised/train.parquet")
    parser.add_argument("--out", required=True, help="pyskl-format checkpoint, e.g. results/pretrained/stgcnpp_demo.pth")
    parser.add_argument("--fold", default=MAIN, help="run fold whose training rows are used: 'main' (every row of --data; "
                        "cross-validation rows are refused) or 'foldK' (trainval rows with fold != K); default main")
    parser.add_argument("--report", default=None, help="optional JSON summary (history, classes, skipped counts)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's own choice); pass the job's core count")
    parser.add_argument("--init", default=None, help="pyskl-format checkpoint to start from (a first pretraining "
                        "stage, e.g. results/pretrained/stgcnpp_isl_kinect.pth), imported onto the windows' graph")
    parser.add_argument("--fallback-note", default=None, help="said in the provenance label: why a configured "
                        "real pretraining source was not used (the workflow passes it when the source is missing)")


def first_stage(path: str | Path, arch: STGCNPPConfig, data: Path, cfg: PretrainConfig,
                graph: Graph) -> tuple[STGCNPP, BackboneSource, dict[str, Any]]:
    """The ``--init`` checkpoint imported onto the windows' MediaPipe graph (the import-backbone joint map)."""
    if cfg.layout != "mediapipe":
        raise ConfigError(f"pretrain-demo --init needs backbone.pretrain_demo.layout mediapipe (the importer maps a "
                          f"checkpoint onto MediaPipe graphs), got {cfg.layout!r}")
    result = import_checkpoint(path, arch, read_layout(data))
    if result.graph.joint_names != graph.joint_names:
        raise InputError(path, None, f"imported onto {result.graph.name}, but the windows are on {graph.name}")
    report = {"checkpoint": str(path), "source": result.source.to_dict(), "counts": result.report.counts(),
              "notes": list(result.report.notes)}
    return result.model, result.source, report


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_config(args.config)
    if args.dataset:
        config = effective_config(config, args.dataset)
    cfg = PretrainConfig.from_config(config)
    bb = config.get("backbone", {})
    arch = STGCNPPConfig(in_channels=int(bb.get("in_channels", 3)), base_channels=int(bb.get("base_channels", 64)))
    paths = [Path(p) for p in args.data]
    for p in paths:
        if not p.is_file():
            raise InputError(p, None, "normalised training Parquet does not exist")
    windows = build_windows(paths, cfg, args.fold)
    log.info("pretrain-demo (fold %s): %d windows of %d frames from %d samples (%d dev rows of the fold left out), "
             "%d '%s' classes; skipped: %s", args.fold, len(windows.y), cfg.window, windows.samples, windows.held_out,
             len(windows.classes), cfg.target, dict(windows.skipped) or "none")
    seed = int(config.get("seed", 1234))
    graph = windows.graph or coco_graph()
    source = pretrained_on_files(paths)
    init = init_report = None
    if args.init:
        init, first, init_report = first_stage(args.init, arch, paths[0], cfg, graph)
        source = then(first, source)
        log.info("first stage: %s (%s)", first.label, init_report["counts"])
    if args.fallback_note:
        source = with_note(source, args.fallback_note)
        log.warning("backbone source: %s", source.label)
    model, history = pretrain(windows, arch, cfg, seed, init)
    summary = {
        "task": f"classify the {cfg.target} of {cfg.window}-frame {cfg.layout} windows", "layout": cfg.layout,
        "graph": graph.to_dict(),
        "architecture": arch.to_dict(), "pretrain_demo": asdict(cfg), "classes": windows.classes,
        "windows": int(len(windows.y)), "samples": windows.samples, "skipped": dict(windows.skipped),
        "history": history, "data": [str(p) for p in paths],
        "fold": args.fold, "rows": "every row of data" if args.fold == MAIN else describe(args.fold)["train"],
        "held_out_rows": windows.held_out, "init": init_report, "backbone_source": source.label,
    }
    # what the backbone saw, carried through import-backbone into every row it fills (hatl.models.backbone_source)
    meta = {"hatl": summary, "provenance": provenance(config), "backbone": source.to_dict()}
    save_pyskl_checkpoint(args.out, pyskl_state_dict(model), meta)
    if args.report:
        write_json(args.report, {**summary, "provenance": provenance(config)})
    log.info("wrote %s", args.out)
    return 0
