"""What defines a run: its identity and inputs (:class:`RunSpec`) and the typed ``training`` section (:class:`TrainConfig`)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hatl.devices import resolve_device
from hatl.errors import ConfigError
from hatl.experiment import STRATEGIES, TEXT_ONLY_TASKS, TRAINED_TASKS, TRANSLATORS, seed_folder, trained_tasks
from hatl.train.controller import ControllerConfig, default_release_order
from hatl.train.averaging import AveragingConfig
from hatl.train.distributed import DDPConfig, DistContext
from hatl.train.gpu_claim import claim_gpu, should_claim
from hatl.train.optim import OptimConfig, strategy_layer_decay

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
    seed: int | None = None  # the training seed (its run folder level seed<N>); None: a run outside the seed axis

    def __post_init__(self) -> None:
        for name, value, known in (("model", self.model, TRANSLATORS), ("task", self.task, TRAINED_TASKS), ("strategy", self.strategy, STRATEGIES)):
            if value not in known:
                raise ConfigError(f"--{name} must be one of {known}, not {value!r}")
        if self.task != "gloss2text" and (self.backbone is None or self.data_dir is None):
            raise ConfigError(f"task {self.task} needs --data-dir and --backbone")
        if self.task == "gloss2text" and self.data_dir is None and self.manifest is None:
            raise ConfigError("task gloss2text needs --data-dir or --manifest")

    def identity(self) -> dict[str, str]:
        identity = {"dataset": self.dataset, "model": self.model, "task": self.task, "strategy": self.strategy, "fold": self.fold}
        if self.seed is not None:
            identity["seed"] = seed_folder(self.seed)
        return identity


def release_thresholds(hatl: Mapping[str, Any], metric: str) -> tuple[float, float]:
    """(Δ₀, τ) of the release rule for a run selecting on ``metric`` (docs/training.md, "Δ and τ").

    ``per_metric`` (default): Table 4's "CTC: 0.003; BLEU-4: 0.002" names the dev metric each value is
    measured on, so a run uses its own metric's value as Δ₀ and τ (``hatl.tau.<metric>`` may set τ apart).
    ``delta_tau``: the two values are Algorithm 1's input pair, Δ₀ = the CTC value and τ = the BLEU-4 value,
    whatever metric the run watches.
    """
    if hatl["threshold_reading"] == "delta_tau":
        return float(hatl["thresholds"]["ctc_loss"]), float(hatl["thresholds"]["bleu4"])
    threshold, tau = float(hatl["thresholds"][metric]), hatl["tau"][metric]
    return threshold, threshold if tau is None else float(tau)


@dataclass(frozen=True)
class TrainConfig:
    """The ``training`` section (plus the global seed) as typed values (config/README.md says what each means).

    Built from a config that :func:`hatl.config.validate_config` has filled: every default is the schema's
    and none is repeated here.
    """

    seed: int
    max_epochs: int
    batch_size: int
    eval_batch_size: int
    grad_clip: float
    bucketing: bool
    pool_batches: int
    device: str
    threads: int
    eval_every: int
    checkpoint_every_steps: int
    cache_frozen_features: bool
    cache_frozen_prefix: bool
    cache_max_mb: int
    greedy_max_len: int
    metric: str  # the dev metric that drives release, best checkpoint and early stopping (training.metric.<task>)
    release_order: str | tuple[int, ...]  # training.hatl.release_order, resolved per run by controller_config
    optim: OptimConfig  # HATL's; a run's own is optim_for(strategy)
    full_layer_decay: bool  # training.lr.full_layer_decay: the full baseline's LLRD ablation
    controller: ControllerConfig  # the schedule, with no release order yet
    ddp: DDPConfig
    averaging: AveragingConfig | None = None  # training.average_checkpoints: the weights best.pt holds

    @classmethod
    def from_config(cls, config: Mapping[str, Any], task: str, strategy: str | None = None) -> TrainConfig:
        """``strategy`` applies its ``training.by_strategy`` entry (max_epochs, early-stopping patience)."""
        try:
            return cls._from_filled(config, task, strategy)
        except KeyError as err:
            raise ConfigError(f"config key {err} is missing: training settings are read from a config that "
                              "hatl.config.load_config / validate_config has filled with the schema's defaults") from err

    @classmethod
    def _from_filled(cls, config: Mapping[str, Any], task: str, strategy: str | None = None) -> TrainConfig:
        tr = config["training"]
        if task not in tr["metric"]:
            raise ConfigError(f"task {task} is not trained on its own (a cascade of {list(trained_tasks(task))}): "
                              "train those runs instead")
        # a frozen-feature (classical) epoch costs a fraction of a fine-tuning one: each strategy may get its own budget
        # (a text-only task has no backbone: its one run is labelled 'full' but costs a frozen epoch's fraction)
        budget = {} if task in TEXT_ONLY_TASKS else (tr.get("by_strategy") or {}).get(strategy) or {}
        max_epochs = int(budget.get("max_epochs", tr["max_epochs"]))
        metric = tr["metric"][task]
        hatl, lr, opt, es = tr["hatl"], tr["lr"], tr["optimizer"], tr["early_stopping"]
        threshold, tau = release_thresholds(hatl, metric)
        order = hatl["release_order"]
        return cls(
            seed=int(config["seed"]),
            max_epochs=max_epochs,
            batch_size=int(tr["batch_size"]),
            eval_batch_size=int(tr["eval_batch_size"]),
            grad_clip=float(tr["grad_clip"]),
            bucketing=bool(tr["bucketing"]["enabled"]),
            pool_batches=int(tr["bucketing"]["pool_batches"]),
            device=str(tr["device"]),
            threads=int(tr["threads"]),
            eval_every=int(tr["eval_every"]),
            checkpoint_every_steps=int(tr["checkpoint_every_steps"]),
            cache_frozen_features=bool(tr["cache_frozen_features"]),
            cache_frozen_prefix=bool(tr["cache_frozen_prefix"]),
            cache_max_mb=int(tr["cache_max_mb"]),
            greedy_max_len=int(tr["greedy_max_len"]),
            metric=metric,
            release_order=order if isinstance(order, str) else tuple(int(m) for m in order),
            optim=OptimConfig(
                lr_encoder=float(lr["encoder"]),
                lr_decoder=float(lr["decoder"]),
                lr_backbone=float(lr["backbone"]),
                layer_decay=float(lr["layer_decay"]),
                betas=tuple(float(b) for b in opt["betas"]),  # type: ignore[arg-type]
                eps=float(opt["eps"]),
                weight_decay=float(opt["weight_decay"]),
                warmup_min_steps=int(lr["warmup_min_steps"]),
                warmup_fraction=float(lr["warmup_fraction"]),
                schedule=str(lr["schedule"]),
                final_factor=float(lr["final_factor"]),
            ),
            full_layer_decay=bool(lr["full_layer_decay"]),
            controller=ControllerConfig(
                release_order=(),
                mode=METRIC_MODE[metric],  # type: ignore[arg-type]
                warmup_epochs=int(hatl["warmup_epochs"]),
                window=int(hatl["window"]),
                patience_first=int(hatl["patience_first"]),
                patience_later=int(hatl["patience_later"]),
                delta=threshold,
                tau=tau,
                delta_decay=float(hatl["delta_decay"]),
                delta_decay_every=int(hatl["delta_decay_every"]),
                cooldown_epochs=int(hatl["cooldown_epochs"]),
                early_stop_patience=int(budget.get("patience", es["patience"])),
                min_improvement=float(es["min_improvement"]),
                # the controller counts evaluation rounds (= epochs with eval_every 1, the paper's setting)
                max_epochs=math.ceil(max_epochs / int(tr["eval_every"])),
                restore_before_release=bool(hatl["restore_before_release"]),
            ),
            ddp=DDPConfig.from_config(config),
            averaging=AveragingConfig.from_config(tr.get("average_checkpoints")),
        )

    def optim_for(self, strategy: str) -> OptimConfig:
        """The optimiser settings of one run: the full baseline has one backbone rate (α = 1) unless
        ``training.lr.full_layer_decay`` (docs/training.md, "Baselines")."""
        alpha = strategy_layer_decay(strategy, self.optim.layer_decay, self.full_layer_decay)
        return dataclasses.replace(self.optim, layer_decay=alpha)

    def controller_config(self, strategy: str, n_layers: int) -> ControllerConfig:
        """The schedule of one run: HATL releases its backbone's layers in the configured order, the baselines none."""
        try:
            order = default_release_order(n_layers, self.release_order if isinstance(self.release_order, str) else list(self.release_order))
        except ValueError as err:
            raise ConfigError(f"training.hatl.release_order: {err}") from err
        return dataclasses.replace(self.controller, release_order=order if strategy == "hatl" else ())


def pick_device(tc: TrainConfig, dist: DistContext) -> torch.device:
    """training.device; one GPU per DDP rank; on a multi-GPU workstation a free GPU is claimed."""
    device = resolve_device(tc.device)
    if dist.enabled and device.type == "cuda":
        return torch.device("cuda", dist.local_rank)
    if device.type == "cuda" and should_claim(torch.cuda.device_count()):
        claimed = claim_gpu(torch.cuda.device_count())  # concurrent trainings on one workstation
        if claimed is not None:
            torch.cuda.set_device(claimed)
            return torch.device("cuda", claimed)
    return device
