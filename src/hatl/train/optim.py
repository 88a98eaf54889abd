"""Parameter groups, layer-wise learning-rate decay (LLRD), the AdamW (re)build and the linear LR warm-up.

Groups: ``encoder`` (everything of the translator that is not the decoder: input projection, encoder,
gloss/frame heads), ``decoder`` (text embedding, decoder, output projection) and one group per backbone
layer ``L1``..``Ln``. Backbone layer m gets LR_m = lr_backbone · α^(n−m): Ln (nearest the translator)
gets ``lr_backbone`` and every step towards the input multiplies by α (docs/training.md explains how this
reads Table 4's "0.1 × (1/2^d)"). LLRD is a HATL mechanism (paper section 4.2.2): the full fine-tuning
baseline trains every layer at ``lr_backbone`` (α = 1, :func:`strategy_layer_decay`) unless the ablation
switch ``training.lr.full_layer_decay`` gives it HATL's α too.

After the warm-up the LR stays constant (the paper states no decay) or, with ``schedule: cosine``, follows
a half cosine from the target LR down to ``final_factor`` × target over the run's ``max_epochs`` (what a
from-scratch translator such as real PHOENIX14T Gloss2Text needs to settle).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class OptimConfig:
    """``training.lr`` and ``training.optimizer``: built by :class:`hatl.train.config.TrainConfig` (defaults: the schema)."""

    lr_encoder: float
    lr_decoder: float
    lr_backbone: float
    layer_decay: float  # α
    betas: tuple[float, float]
    eps: float
    weight_decay: float
    warmup_min_steps: int
    warmup_fraction: float
    schedule: str  # "constant" or "cosine"
    final_factor: float  # cosine: LR at the last step, as a fraction of the target


@dataclass
class ParamGroup:
    name: str
    params: list[nn.Parameter]
    lr: float


def layer_lr(lr_backbone: float, alpha: float, n_layers: int, m: int) -> float:
    """LR_m = lr_backbone · α^(n−m), m in 1..n (Ln nearest the translator gets lr_backbone)."""
    if not 1 <= m <= n_layers:
        raise ValueError(f"layer {m} outside L1..L{n_layers}")
    return lr_backbone * alpha ** (n_layers - m)


def strategy_layer_decay(strategy: str, alpha: float, full_layer_decay: bool = False) -> float:
    """The α a strategy's optimiser uses: HATL's ``alpha``; 1 (one backbone rate) for the full baseline,
    whose layers the paper trains "simultaneously" from the start, unless the ablation switch asks for
    ``alpha``; classical trains no backbone layer, so its α never reaches a parameter."""
    if strategy == "full" and not full_layer_decay:
        return 1.0
    return alpha


def is_decoder_param(name: str) -> bool:
    """Decoder-side parameters by module name: any path component that names the text decoder."""
    return any(part.startswith(("decoder", "text_decoder", "text_embed", "generator", "output_proj")) for part in name.split("."))


def backbone_layer_of(model: nn.Module, layers: Sequence[nn.Module]) -> dict[int, int]:
    """id(parameter) -> layer index (1-based) for every parameter inside a backbone layer."""
    owner: dict[int, int] = {}
    for m, layer in enumerate(layers, start=1):
        for p in layer.parameters():
            owner.setdefault(id(p), m)
    return owner


def build_groups(model: nn.Module, layers: Sequence[nn.Module], cfg: OptimConfig) -> list[ParamGroup]:
    """Every trainable parameter in exactly one named group (frozen ones are left out of the optimizer)."""
    n = len(layers)
    owner = backbone_layer_of(model, layers)
    backbone_ids = {id(p) for p in model.backbone.parameters()} if getattr(model, "backbone", None) is not None else set()
    # SLTModel says itself which parameters are the decoder's; name matching is the fallback.
    roles = model.parameter_groups() if hasattr(model, "parameter_groups") else None
    decoder_ids = {id(p) for p in roles["decoder"]} if roles is not None else None
    enc: list[nn.Parameter] = []
    dec: list[nn.Parameter] = []
    per_layer: dict[int, list[nn.Parameter]] = {m: [] for m in range(1, n + 1)}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if id(p) in owner:
            per_layer[owner[id(p)]].append(p)
        elif id(p) in backbone_ids:
            raise ValueError(f"backbone parameter {name} belongs to no layer of backbone.layers(); cannot give it a learning rate")
        elif (id(p) in decoder_ids) if decoder_ids is not None else is_decoder_param(name):
            dec.append(p)
        else:
            enc.append(p)
    groups = [ParamGroup("encoder", enc, cfg.lr_encoder), ParamGroup("decoder", dec, cfg.lr_decoder)]
    groups += [ParamGroup(f"L{m}", per_layer[m], layer_lr(cfg.lr_backbone, cfg.layer_decay, n, m)) for m in range(1, n + 1)]
    return [g for g in groups if g.params]


def build_optimizer(groups: Sequence[ParamGroup], cfg: OptimConfig) -> torch.optim.AdamW:
    """A fresh AdamW over the given groups; ``initial_lr`` keeps each group's target LR for the warm-up."""
    param_groups = [{"params": g.params, "lr": g.lr, "initial_lr": g.lr, "name": g.name} for g in groups]
    # foreach=False: the per-parameter loop gives the same bits on every run and after a resume.
    return torch.optim.AdamW(param_groups, lr=cfg.lr_decoder, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay, foreach=False)


def warmup_steps(total_steps: int, cfg: OptimConfig) -> int:
    """Table 4: max(200, 0.02 × training steps)."""
    return max(cfg.warmup_min_steps, math.ceil(cfg.warmup_fraction * total_steps))


def warmup_factor(step: int, n_warmup: int) -> float:
    """Linear warm-up: the k-th update (step = k-1) uses k/n_warmup of the target LR, then 1."""
    if n_warmup <= 0:
        return 1.0
    return min(1.0, (step + 1) / n_warmup)


SCHEDULES = ("constant", "cosine")


def decay_factor(global_step: int, total_steps: int, schedule: str, final_factor: float) -> float:
    """The post-warm-up multiplier at update ``global_step`` (0-based) of ``total_steps``: 1 for constant,
    a half cosine from 1 to ``final_factor`` for cosine (clamped at ``final_factor`` past the end)."""
    if schedule == "constant":
        return 1.0
    if schedule != "cosine":
        raise ValueError(f"unknown LR schedule {schedule!r}; known: {SCHEDULES}")
    progress = min(1.0, global_step / max(1, total_steps - 1))
    return final_factor + (1.0 - final_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def apply_lr(optimizer: torch.optim.Optimizer, step: int, n_warmup: int, decay: float = 1.0) -> None:
    """Set every group's LR to target × warm-up(step) × decay. ``step`` counts updates since the optimizer
    was (re)built (HATL restarts the warm-up at each release); ``decay`` comes from ``decay_factor`` on the
    run's global step."""
    factor = warmup_factor(step, n_warmup) * decay
    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"] * factor


def current_lrs(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    return {g["name"]: float(g["lr"]) for g in optimizer.param_groups}


def count_params(params: Sequence[nn.Parameter]) -> int:
    return int(sum(p.numel() for p in params))
