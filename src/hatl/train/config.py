"""What defines a run: its identity and inputs (:class:`RunSpec`) and the typed ``training`` section (:class:`TrainConfig`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hatl.errors import ConfigError
from hatl.experiment import STRATEGIES, TASKS, TRANSLATORS
from hatl.train.controller import ControllerConfig, default_release_order
from hatl.train.optim import OptimConfig

METRIC_MODE = {"bleu4": "max", "ctc_loss": "min", "wer": "min"}


@dataclass(frozen=True)
class RunSpec:
    dataset: str
    model: str  # translator: transformer | adat
    task: str
    strategy: str
    fold: str
    data_dir: Path | None
    vocab_dir: Path
    backbone: Path | None
    out_dir: Path
    resume_dir: Path
    threads: int | None = None
    manifest: Path | None = None  # gloss2text only: read glosses and texts from the manifest instead

    def __post_init__(self) -> None:
        for name, value, known in (("model", self.model, TRANSLATORS), ("task", self.task, TASKS), ("strategy", self.strategy, STRATEGIES)):
            if value not in known:
                raise ConfigError(f"--{name} must be one of {known}, not {value!r}")
        if self.task != "gloss2text" and (self.backbone is None or self.data_dir is None):
            raise ConfigError(f"task {self.task} needs --data-dir and --backbone")
        if self.task == "gloss2text" and self.data_dir is None and self.manifest is None:
            raise ConfigError("task gloss2text needs --data-dir or --manifest")

    def identity(self) -> dict[str, str]:
        return {"dataset": self.dataset, "model": self.model, "task": self.task, "strategy": self.strategy, "fold": self.fold}


@dataclass(frozen=True)
class TrainConfig:
    """The ``training`` section (plus the global seed) as typed values; see config/README.md."""

    seed: int = 1234
    max_epochs: int = 100
    batch_size: int = 32
    eval_batch_size: int = 64
    grad_clip: float = 1.0
    bucketing: bool = True
    pool_batches: int = 8
    device: str = "auto"
    threads: int = 0
    eval_every: int = 1
    checkpoint_every_steps: int = 0
    cache_frozen_features: bool = True
    cache_frozen_prefix: bool = True
    cache_max_mb: int = 4096
    greedy_max_len: int = 0
    metric: str = "bleu4"
    threshold: float = 0.002
    tau: float = 0.002
    optim: OptimConfig = field(default_factory=OptimConfig)
    early_stop_patience: int = 5
    min_improvement: float = 0.0
    warmup_epochs: int = 2
    window: int = 3
    patience_first: int = 4
    patience_later: int = 2
    delta_decay: float = 0.95
    delta_decay_every: int = 5
    cooldown_epochs: int = 3
    restore_before_release: bool = True
    release_order: str | tuple[int, ...] = "top_down"

    @classmethod
    def from_config(cls, config: Mapping[str, Any], task: str) -> TrainConfig:
        tr = config.get("training", {}) or {}
        metric = (tr.get("metric") or {}).get(task, "bleu4" if task != "sign2gloss2text" else "ctc_loss")
        if metric in ("ctc_loss", "wer") and task != "sign2gloss2text":
            raise ConfigError(f"training.metric.{task}: {metric} needs gloss predictions; only sign2gloss2text has them")
        hatl = tr.get("hatl", {}) or {}
        threshold = float((hatl.get("thresholds") or {}).get(metric, {"bleu4": 0.002, "ctc_loss": 0.003, "wer": 0.003}[metric]))
        tau = (hatl.get("tau") or {}).get(metric)
        opt = tr.get("optimizer", {}) or {}
        lr = tr.get("lr", {}) or {}
        es = tr.get("early_stopping", {}) or {}
        bk = tr.get("bucketing", {}) or {}
        order = hatl.get("release_order", "top_down")
        return cls(
            seed=int(config.get("seed", 1234)),
            max_epochs=int(tr.get("max_epochs", 100)),
            batch_size=int(tr.get("batch_size", 32)),
            eval_batch_size=int(tr.get("eval_batch_size", 64)),
            grad_clip=float(tr.get("grad_clip", 1.0)),
            bucketing=bool(bk.get("enabled", True)),
            pool_batches=int(bk.get("pool_batches", 8)),
            device=str(tr.get("device", "auto")),
            threads=int(tr.get("threads", 0)),
            eval_every=int(tr.get("eval_every", 1)),
            checkpoint_every_steps=int(tr.get("checkpoint_every_steps", 0)),
            cache_frozen_features=bool(tr.get("cache_frozen_features", True)),
            cache_frozen_prefix=bool(tr.get("cache_frozen_prefix", True)),
            cache_max_mb=int(tr.get("cache_max_mb", 4096)),
            greedy_max_len=int(tr.get("greedy_max_len", 0)),
            metric=metric,
            threshold=threshold,
            tau=threshold if tau is None else float(tau),
            optim=OptimConfig(
                lr_encoder=float(lr.get("encoder", 5e-5)),
                lr_decoder=float(lr.get("decoder", 1e-4)),
                lr_backbone=float(lr.get("backbone", 1e-5)),
                layer_decay=float(lr.get("layer_decay", 0.5)),
                betas=tuple(float(b) for b in opt.get("betas", (0.9, 0.98))),  # type: ignore[arg-type]
                eps=float(opt.get("eps", 1e-8)),
                weight_decay=float(opt.get("weight_decay", 0.01)),
                warmup_min_steps=int(lr.get("warmup_min_steps", 200)),
                warmup_fraction=float(lr.get("warmup_fraction", 0.02)),
                schedule=str(lr.get("schedule", "constant")),
                final_factor=float(lr.get("final_factor", 0.0)),
            ),
            early_stop_patience=int(es.get("patience", 5)),
            min_improvement=float(es.get("min_improvement", 0.0)),
            warmup_epochs=int(hatl.get("warmup_epochs", 2)),
            window=int(hatl.get("window", 3)),
            patience_first=int(hatl.get("patience_first", 4)),
            patience_later=int(hatl.get("patience_later", 2)),
            delta_decay=float(hatl.get("delta_decay", 0.95)),
            delta_decay_every=int(hatl.get("delta_decay_every", 5)),
            cooldown_epochs=int(hatl.get("cooldown_epochs", 3)),
            restore_before_release=bool(hatl.get("restore_before_release", True)),
            release_order=order if isinstance(order, str) else tuple(int(m) for m in order),
        )

    @property
    def rounds(self) -> int:
        """Evaluation rounds: the controller counts these (= epochs with eval_every 1, the paper's setting)."""
        return math.ceil(self.max_epochs / self.eval_every)

    def controller_config(self, strategy: str, n_layers: int) -> ControllerConfig:
        try:
            order = default_release_order(n_layers, self.release_order if isinstance(self.release_order, str) else list(self.release_order))
        except ValueError as err:
            raise ConfigError(f"training.hatl.release_order: {err}") from err
        return ControllerConfig(
            release_order=order if strategy == "hatl" else (),
            mode=METRIC_MODE[self.metric],  # type: ignore[arg-type]
            warmup_epochs=self.warmup_epochs,
            window=self.window,
            patience_first=self.patience_first,
            patience_later=self.patience_later,
            delta=self.threshold,
            tau=self.tau,
            delta_decay=self.delta_decay,
            delta_decay_every=self.delta_decay_every,
            cooldown_epochs=self.cooldown_epochs,
            early_stop_patience=self.early_stop_patience,
            min_improvement=self.min_improvement,
            max_epochs=self.rounds,
            restore_before_release=self.restore_before_release,
        )


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("training.device is 'cuda' but no CUDA device is available")
    return torch.device(name)
