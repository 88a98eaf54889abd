"""One training run: a dataset × translator × task × strategy (× fold), resumable at any moment.

Strategies (paper section 5.2 and Algorithm 1):

* ``classical``: the backbone stays frozen, only the translator trains;
* ``full``: backbone and translator train from the first step;
* ``hatl``: the translator trains alone through the warm-up, then backbone layers are released one at a
  time by :class:`hatl.train.controller.HatlController` (restore best → release → rebuild AdamW with
  layer-wise LR decay → LR warm-up → cooldown), with early stopping once releases stop helping.

All three share the data, the optimizer settings, the dev metric, best-checkpoint selection and early
stopping, so they differ only in which backbone layers are trainable when.

Outputs (``--out-dir``, written only at the very end, each atomically): ``best.pt``, ``log.jsonl``,
``summary.json``. The resume state lives in ``--resume-dir`` (see :mod:`hatl.train.state`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hatl.errors import ConfigError, HatlError, InputError
from hatl.evaluate import collapse
from hatl.evaluate.metrics import edit_distance
from hatl.io import atomic_path, write_json, write_text
from hatl.provenance import provenance
from hatl.train import data as D
from hatl.train import distributed as DU
from hatl.train.controller import ControllerConfig, ControllerState, HatlController, default_release_order
from hatl.train.gpu_claim import claim_gpu, should_claim
from hatl.train.optim import (
    OptimConfig,
    apply_lr,
    build_groups,
    build_optimizer,
    count_params,
    current_lrs,
    decay_factor,
    warmup_steps,
)
from hatl.train.state import capture_rng, cpu_state_dict, drill_pause, file_identity, fingerprint, load_state, restore_rng, save_state

log = logging.getLogger(__name__)

STRATEGIES = ("classical", "full", "hatl")
TASKS = ("sign2text", "sign2gloss2text", "gloss2text")
TRANSLATORS = ("transformer", "adat")
METRIC_MODE = {"bleu4": "max", "ctc_loss": "min", "wer": "min"}
LOSS_KEYS = ("total", "ctc", "ce", "enc", "bb")
TERM_KEYS = ("ctc", "ce", "enc", "bb")  # the mean-reduced terms whose weighted sum is "total"
COUNT_KEYS = ("skipped_no_gloss", "skipped_too_short")
BEST_FORMAT = "hatl.run/1"


# ---------------------------------------------------------------------------------------------- config
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


# ---------------------------------------------------------------------------------------------- metrics
def greedy_decode(model: nn.Module, encoded: Any, max_len: int, bos: int = D.BOS, eos: int = D.EOS) -> list[list[int]]:
    """Greedy text hypotheses (ids without BOS/EOS) from ``model.next_token_logprobs``."""
    batch = encoded.memory.shape[0]
    device = encoded.memory.device
    prefix = torch.full((batch, 1), bos, dtype=torch.long, device=device)
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    for _ in range(max_len):
        logp = model.next_token_logprobs(encoded, prefix)
        nxt = logp.argmax(dim=-1)
        nxt = torch.where(done, torch.full_like(nxt, D.PAD), nxt)
        prefix = torch.cat([prefix, nxt[:, None]], dim=1)
        done |= nxt == eos
        if bool(done.all()):
            break
    out = []
    for row in prefix[:, 1:].tolist():
        ids = []
        for tok in row:
            if tok in (eos, D.PAD):
                break
            ids.append(tok)
        out.append(ids)
    return out


def dev_bleu4(hyps: Sequence[str], refs: Sequence[str], evaluation: Mapping[str, Any]) -> float:
    """Corpus BLEU-4 (0-100) with sacrebleu, using the scoring stage's settings (``evaluation.bleu``).

    sacrebleu is called directly (not through hatl.evaluate.metrics) so a training run does not pay for
    importing the ROUGE/nltk stack every epoch's metric does not need.
    """
    from sacrebleu.metrics import BLEU

    bleu = evaluation.get("bleu", {}) or {}
    metric = BLEU(
        max_ngram_order=4,
        tokenize=bleu.get("tokenize", "none"),
        lowercase=bool(bleu.get("lowercase", False)),
        smooth_method=bleu.get("smooth_method", "none"),
        effective_order=bool(bleu.get("effective_order", True)),
    )
    return float(metric.corpus_score(list(hyps), [list(refs)]).score)


def corpus_wer(hyps: Sequence[str], refs: Sequence[str]) -> float | None:
    """Gloss WER ×100 (summed word edits / summed reference words), as the scoring stage defines it."""
    words = sum(len(r.split()) for r in refs)
    if words == 0:
        return None
    return 100.0 * sum(edit_distance(h.split(), r.split()) for h, r in zip(hyps, refs)) / words


def release_value(metric: str, dev: Mapping[str, float | None]) -> float:
    """M(e) on the scale the thresholds are given in: BLEU-4 and WER as fractions, CTC loss as is."""
    if metric == "bleu4":
        return float(dev["bleu4"] or 0.0) / 100.0
    if metric == "wer":
        return float(dev["wer"] if dev["wer"] is not None else 100.0) / 100.0
    return float(dev["ctc_loss"])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- trainer
ModelFactory = Callable[["Trainer"], nn.Module]


class LossForward(nn.Module):
    """What DDP wraps in a multi-process run: the model's forward and its losses in one call, returning
    (losses, counts of each term's averaging unit). Only tensors that feed a loss are returned, so DDP's
    search for unused parameters sees exactly the parameters the step trains."""

    def __init__(self, model: nn.Module, count_terms: Callable[[dict[str, Any], Any], list[float]]) -> None:
        super().__init__()
        self.model = model
        self.count_terms = count_terms

    def forward(self, batch: dict[str, Any]) -> tuple[dict[str, torch.Tensor], list[float]]:
        out = self.model(batch)
        return self.model.losses(batch, out), self.count_terms(batch, out)


def default_model_factory(trainer: Trainer) -> nn.Module:
    from hatl.models.slt import SLTModel

    backbone = None
    if trainer.spec.task != "gloss2text":
        from hatl.models.checkpoint import load_backbone

        backbone = load_backbone(trainer.spec.backbone)  # type: ignore[arg-type]
    try:
        return SLTModel(trainer.spec.task, trainer.spec.model, backbone, len(trainer.gloss_vocab), len(trainer.text_vocab),
                        cfg=trainer.config.get("model"))
    except ValueError as err:  # sizes that do not fit together: a config problem the user can fix
        raise ConfigError(f"model section: {err}") from err


class Trainer:
    def __init__(self, spec: RunSpec, config: dict[str, Any], model_factory: ModelFactory | None = None,
                 dist: DU.DistContext | None = None) -> None:
        self.spec = spec
        self.config = config
        self.tc = TrainConfig.from_config(config, spec.task)
        self.model_factory = model_factory or default_model_factory
        self.dist = dist or DU.DistContext()
        self.ddp_config = DU.DDPConfig.from_config(config)
        self.ddp_model: nn.Module | None = None  # the DistributedDataParallel wrapper (multi-process runs only)
        self.device = resolve_device(self.tc.device)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)  # one GPU per rank
        elif self.device.type == "cuda" and should_claim(torch.cuda.device_count()):
            claimed = claim_gpu(torch.cuda.device_count())  # concurrent trainings on one workstation
            if claimed is not None:
                self.device = torch.device("cuda", claimed)
                torch.cuda.set_device(claimed)
        self.amp = self.device.type == "cuda"
        threads = spec.threads if spec.threads else self.tc.threads
        if threads:
            torch.set_num_threads(threads)
        self._load_data()
        self._seed_all()
        self.model = self.model_factory(self).to(self.device)
        if self.dist.enabled and self.ddp_config.sync_batchnorm:
            import torch.distributed as torch_dist

            # Its own process group: the statistics' all-reduces run inside forward/backward, beside DDP's.
            n_bn = DU.globalise_batchnorm(self.model, group=torch_dist.new_group())
            log.info("batch norm: %d layer(s) use global-batch statistics across %d ranks", n_bn, self.dist.world_size)
        self.layers: list[nn.Module] = list(self.model.backbone.layers()) if getattr(self.model, "backbone", None) is not None else []
        self.n_layers = len(self.layers)
        self.controller = HatlController(self.tc.controller_config(spec.strategy, self.n_layers))
        # The batch count is the same every epoch (fixed pool sizes), so epoch 1's gives the total step count.
        self.train_steps_per_epoch = len(D.epoch_batches(self.train.lengths(), self.tc.batch_size, self.tc.seed, 1,
                                                         bucketing=self.tc.bucketing, pool_batches=self.tc.pool_batches))
        self.total_steps = self.tc.max_epochs * self.train_steps_per_epoch
        self.n_warmup = warmup_steps(self.total_steps, self.tc.optim)
        self.trainable: list[int] = list(range(1, self.n_layers + 1)) if spec.strategy == "full" else []
        self._apply_trainable()
        self.optimizer = self._new_optimizer()
        self.opt_step = 0  # updates since the optimizer was (re)built: drives the LR warm-up
        self.global_step = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.log_lines: list[dict[str, Any]] = []
        self.wall_time_s = 0.0
        self.caches: dict[str, list[torch.Tensor] | None] = {"train": None, "dev": None}
        self.prefix_caches: dict[str, list[torch.Tensor] | None] = {"train": None, "dev": None}
        self.prefix_too_big: set[int] = set()  # prefix depths whose cache would exceed cache_max_mb
        self.terminate_requested = False  # set by SIGTERM (e.g. a SLURM walltime): save at the next step, exit
        self.fingerprint = fingerprint(self._fingerprint_spec())

    # -- set-up ----------------------------------------------------------------------------------
    def _load_data(self) -> None:
        from hatl.vocab import Vocabulary

        vdir = self.spec.vocab_dir
        self.gloss_vocab = Vocabulary.load(vdir / "gloss.json")
        self.text_vocab = Vocabulary.load(vdir / "text.json")
        self.gloss_vocab.require_fold(vdir / "gloss.json", self.spec.fold)
        self.text_vocab.require_fold(vdir / "text.json", self.spec.fold)
        if self.spec.data_dir is not None:
            sources = D.split_sources(self.spec.data_dir, self.spec.fold)
        else:
            sources = D.manifest_sources(self.spec.manifest, self.spec.fold)  # type: ignore[arg-type]
        ds_text = (self.config.get("datasets", {}).get(self.spec.dataset, {}) or {}).get("text", {}) or {}
        kwargs = dict(
            lowercase=bool(ds_text.get("lowercase", True)),
            strip_punctuation=bool(ds_text.get("strip_punctuation", True)),
            need_gloss=self.spec.task in ("sign2gloss2text", "gloss2text"),
            need_text=True,
        )
        self.sources = {k: sources[k] for k in ("train", "dev")}
        self.train = D.load_split(self.sources["train"], self.gloss_vocab, self.text_vocab, **kwargs)
        self.dev = D.load_split(self.sources["dev"], self.gloss_vocab, self.text_vocab, **kwargs)
        longest = max(len(s.text_ids) for s in self.train.samples)
        self.max_len = self.tc.greedy_max_len or longest + 10
        log.info("data: %d train / %d dev samples (%d / %d skipped)", len(self.train.samples), len(self.dev.samples),
                 len(self.train.skipped), len(self.dev.skipped))

    def _seed_all(self) -> None:
        # One seed for every run of the config: all three strategies start from the same translator init.
        import random

        random.seed(self.tc.seed)
        np.random.seed(self.tc.seed % (2**32))
        torch.manual_seed(self.tc.seed)

    def _fingerprint_spec(self) -> dict[str, Any]:
        inputs = [self.sources["train"].path, self.gloss_vocab_path, self.text_vocab_path]
        if self.sources["dev"].path != self.sources["train"].path:
            inputs.append(self.sources["dev"].path)
        if self.spec.task != "gloss2text" and self.spec.backbone is not None:
            inputs.append(self.spec.backbone)
        cfg = {k: v for k, v in self.config.items() if k not in ("datasets",)}
        cfg["dataset"] = self.config.get("datasets", {}).get(self.spec.dataset)
        return {"run": self.spec.identity(), "config": cfg, "inputs": [file_identity(p) for p in inputs]}

    @property
    def gloss_vocab_path(self) -> Path:
        return self.spec.vocab_dir / "gloss.json"

    @property
    def text_vocab_path(self) -> Path:
        return self.spec.vocab_dir / "text.json"

    # -- trainable set and optimizer ---------------------------------------------------------------
    def _apply_trainable(self) -> None:
        keep = set(self.trainable)
        for m, layer in enumerate(self.layers, start=1):
            for p in layer.parameters():
                p.requires_grad_(m in keep)
        if self.dist.enabled:
            self._wrap_ddp()

    def _wrap_ddp(self) -> None:
        """(Re)build the DDP wrapper: DDP fixes its parameter set when built, so every change of the
        trainable set (a HATL release, a resume) needs a new one. Building it also broadcasts rank 0's
        parameters and buffers, which puts every rank on the same weights after a restore."""
        from torch.nn.parallel import DistributedDataParallel

        # find_unused_parameters: heads a task does not use (e.g. frame heads of gloss-free sign2text) get no
        # gradient. DDP finds them by walking back from what forward returns, so the wrapped module returns
        # the losses (LossForward), not the model outputs (which hold those heads' unused logits).
        self.ddp_model = DistributedDataParallel(
            LossForward(self.model, self._term_counts), device_ids=[self.device.index] if self.device.type == "cuda" else None,
            find_unused_parameters=True,
        )

    def backbone_frozen(self) -> bool:
        return self.n_layers > 0 and not self.trainable

    def _new_optimizer(self) -> torch.optim.AdamW:
        self.groups = build_groups(self.model, self.layers, self.tc.optim)
        return build_optimizer(self.groups, self.tc.optim)

    def set_train_mode(self) -> None:
        """Train mode, except frozen backbone layers: eval, so their batch-norm statistics never move."""
        (self.ddp_model or self.model).train()
        keep = set(self.trainable)
        for m, layer in enumerate(self.layers, start=1):
            if m not in keep:
                layer.eval()

    def n_trainable_params(self) -> int:
        return count_params([p for p in self.model.parameters() if p.requires_grad])

    # -- batches and the frozen-feature cache ------------------------------------------------------
    def _use_cache(self) -> bool:
        return self.tc.cache_frozen_features and self.backbone_frozen()

    def _cache(self, name: str) -> list[torch.Tensor]:
        """Per-sample backbone features of a frozen backbone (eval mode), computed once per split."""
        cache = self.caches[name]
        if cache is None:
            split = self.train if name == "train" else self.dev
            was_training = self.model.training
            self.model.eval()
            cache: list[torch.Tensor] = [torch.empty(0)] * len(split.samples)
            with torch.no_grad(), self._autocast():
                for idxs in self._same_length_groups(split):
                    kp = torch.from_numpy(np.stack([split.samples[i].keypoints for i in idxs])).to(self.device)
                    feats, fmask = self.model.backbone_features(kp, torch.ones(kp.shape[:2], dtype=torch.bool, device=self.device))
                    for row, i in enumerate(idxs):
                        cache[i] = feats[row, : int(fmask[row].sum())].float().clone()
            self.model.train(was_training)
            self.caches[name] = cache
            log.info("cached frozen-backbone features for %d %s samples", len(cache), name)
        return cache

    def _same_length_groups(self, split: D.SplitData) -> list[list[int]]:
        """Sample indices grouped by frame count (chunks of eval_batch_size): batched cache passes need no
        padding, so every sample's cached output is what it gets alone."""
        by_len: dict[int, list[int]] = {}
        for i, s in enumerate(split.samples):
            by_len.setdefault(s.n_frames, []).append(i)
        size = self.tc.eval_batch_size
        return [group[j : j + size] for _, group in sorted(by_len.items()) for j in range(0, len(group), size)]

    def frozen_prefix(self) -> int:
        """k such that L1..Lk are frozen below the lowest trainable layer (0 = none / no prefix cache).

        With a top-down release order this is every layer not yet released: their output never changes,
        so it is computed once per sample (eval mode, no autograd) and the training step runs only
        L(k+1)..Ln, the part that learns.
        """
        if not self.tc.cache_frozen_prefix or not self.trainable or self.n_layers == 0:
            return 0
        k = min(self.trainable) - 1
        return 0 if k in self.prefix_too_big else k

    def _prefix_cache(self, name: str, k: int) -> list[torch.Tensor] | None:
        """Per-sample outputs (C, T_k, V) of frozen layers L1..Lk, or None when they would not fit the cap."""
        cache = self.prefix_caches[name]
        if cache is not None:
            return cache
        split = self.train if name == "train" else self.dev
        last = self.layers[k - 1]
        hooked = list(last)[-1] if isinstance(last, nn.ModuleList) else last  # L1 is a view [data_bn, block 0]
        captured: list[torch.Tensor] = []
        handle = hooked.register_forward_hook(lambda _m, _i, out: captured.append(out))
        was_training = self.model.training
        self.model.eval()
        cache: list[torch.Tensor] = [torch.empty(0)] * len(split.samples)
        total_frames = sum(split.lengths())
        try:
            with torch.no_grad(), self._autocast():
                for g, idxs in enumerate(self._same_length_groups(split)):
                    kp = torch.from_numpy(np.stack([split.samples[i].keypoints for i in idxs])).to(self.device)
                    self.model.backbone_features(kp, torch.ones(kp.shape[:2], dtype=torch.bool, device=self.device))
                    acts = captured.pop()
                    for row, i in enumerate(idxs):
                        cache[i] = acts[row].float().clone()
                    if g == 0:
                        estimate_mb = acts[0].numel() * 4 / kp.shape[1] * total_frames / 2**20
                        if estimate_mb > self.tc.cache_max_mb:
                            log.info("not caching frozen L1..L%d for %s: ~%.0f MB > training.cache_max_mb=%d",
                                     k, name, estimate_mb, self.tc.cache_max_mb)
                            self.prefix_too_big.add(k)
                            return None
        finally:
            handle.remove()
            self.model.train(was_training)
        self.prefix_caches[name] = cache
        log.info("cached outputs of frozen L1..L%d for %d %s samples", k, len(cache), name)
        return cache

    def suffix_features(self, acts: torch.Tensor, lengths: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Run L(k+1)..Ln on cached L1..Lk outputs (B, C, T_k, V) → the backbone features and their mask,
        pooled exactly as ``SLTModel.backbone_features`` pools the backbone's output."""
        from hatl.models.slt import downsampled_lengths, pool_backbone_output
        from hatl.models.transformer import lengths_to_mask

        x = acts
        for layer in self.layers[k:]:
            x = layer(x)
        feats = pool_backbone_output(x.unsqueeze(1))  # (B, M=1, C, T', V) -> (B, T', C)
        out_len = downsampled_lengths(lengths).clamp(max=feats.shape[1])
        return feats, lengths_to_mask(out_len, feats.shape[1])

    def make_batch(self, name: str, idxs: Sequence[int], pad_like: Sequence[int] = ()) -> dict[str, Any]:
        """The batch of samples ``idxs``; ``pad_like`` (a DDP shard's global batch) sets the padded widths."""
        split = self.train if name == "train" else self.dev
        batch = D.collate([split.samples[i] for i in idxs], [split.samples[i] for i in pad_like] or None)
        k = self.frozen_prefix()
        cache = self._prefix_cache(name, k) if k else None
        if cache is not None:
            acts = [cache[i] for i in idxs]
            t_max = max(cache[i].shape[1] for i in [*idxs, *pad_like])
            padded = acts[0].new_zeros((len(acts), acts[0].shape[0], t_max, acts[0].shape[2]))
            for row, a in enumerate(acts):
                padded[row, :, : a.shape[1]] = a
            batch = D.to_device(batch, self.device, non_blocking=self.device.type == "cuda")
            acts_dev = padded.to(self.device, non_blocking=self.device.type == "cuda")
            lengths = batch["frame_mask"].sum(1)
            # Built here, inside the caller's autograd/autocast context, so released layers get gradients.
            with self._autocast():
                batch["backbone_features"], batch["backbone_mask"] = self.suffix_features(acts_dev, lengths, k)
            return batch
        if self._use_cache():
            feats = [self._cache(name)[i] for i in idxs]
            t_max = max(self._cache(name)[i].shape[0] for i in [*idxs, *pad_like])
            padded = feats[0].new_zeros((len(feats), t_max, feats[0].shape[1]))
            mask = torch.zeros((len(feats), t_max), dtype=torch.bool, device=padded.device)
            for row, f in enumerate(feats):
                padded[row, : f.shape[0]] = f
                mask[row, : f.shape[0]] = True
            batch["backbone_features"], batch["backbone_mask"] = padded, mask
        return D.to_device(batch, self.device, non_blocking=self.device.type == "cuda")

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # -- one epoch -----------------------------------------------------------------------------------
    def train_epoch(self, epoch: int, start_step: int, sums: dict[str, float], epoch_time: float, events: list[dict[str, Any]]) -> tuple[dict[str, float], float]:
        from tqdm import tqdm

        batches = D.epoch_batches(self.train.lengths(), self.tc.batch_size, self.tc.seed, epoch,
                                  bucketing=self.tc.bucketing, pool_batches=self.tc.pool_batches)
        self.set_train_mode()
        params = [p for p in self.model.parameters() if p.requires_grad]
        t0 = time.perf_counter()
        bar = tqdm(total=len(batches), initial=start_step, desc=f"epoch {epoch}", leave=False,
                   disable=None if self.dist.is_main else True)
        for step in range(start_step, len(batches)):
            if self.dist.enabled:
                self._distributed_step(epoch, step, batches, params, sums)
                bar.update(1)
                self._after_step(epoch, step, batches, sums, epoch_time + time.perf_counter() - t0, events, bar)
                continue
            batch = self.make_batch("train", batches[step])
            with self._autocast():
                out = self.model(batch)
                losses = self.model.losses(batch, out)
            total = losses["total"]
            if not bool(torch.isfinite(total.detach())):
                values = {k: float(losses[k].detach()) for k in LOSS_KEYS if k in losses}
                raise HatlError(
                    f"non-finite training loss at epoch {epoch}, step {step + 1}/{len(batches)} "
                    f"(samples {batch['sample_ids'][:4]}...): {values}; the resume state in {self.spec.resume_dir} "
                    "keeps the last good state"
                )
            self._optimizer_step(total, params, epoch, step)
            n = len(batch["sample_ids"])
            sums["n"] += n
            for k in LOSS_KEYS:
                sums[k] += float(losses[k].detach().float()) * n
            for k in COUNT_KEYS:
                if k in losses:
                    sums[k] += int(losses[k])
            bar.update(1)
            self._after_step(epoch, step, batches, sums, epoch_time + time.perf_counter() - t0, events, bar)
        bar.close()
        return sums, epoch_time + time.perf_counter() - t0

    def _optimizer_step(self, total: torch.Tensor, params: list[nn.Parameter], epoch: int, step: int) -> None:
        """Backward, clip (a non-finite gradient stops the run), warm-up LR, AdamW step: the same in 1 or N processes."""
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if self.tc.grad_clip > 0:
            try:
                torch.nn.utils.clip_grad_norm_(params, self.tc.grad_clip, error_if_nonfinite=True)
            except RuntimeError as err:
                raise HatlError(
                    f"non-finite gradient at epoch {epoch}, step {step + 1}: {err}; the resume state keeps the last good state"
                ) from err
        decay = decay_factor(self.global_step, self.total_steps, self.tc.optim.schedule, self.tc.optim.final_factor)
        apply_lr(self.optimizer, self.opt_step, self.n_warmup, decay)
        self.optimizer.step()
        self.opt_step += 1
        self.global_step += 1

    def _after_step(self, epoch: int, step: int, batches: list[list[int]], sums: dict[str, float], elapsed: float,
                    events: list[dict[str, Any]], bar: Any) -> None:
        """Periodic resume state, and the stop a SIGTERM asked for (saved first)."""
        every = self.tc.checkpoint_every_steps
        if step + 1 < len(batches) and (self.terminate_requested or (every and self.global_step % every == 0)):
            self.save(epoch, step + 1, False, sums, elapsed, events)
        if self.terminate_requested and step + 1 < len(batches):  # at the last step the epoch end saves
            bar.close()
            raise HatlError(f"terminated by signal at epoch {epoch}, step {step + 1}/{len(batches)}; "
                            f"state saved in {self.spec.resume_dir}: rerun the same command to resume")

    # -- one distributed step ----------------------------------------------------------------------
    def _term_weights(self) -> list[float]:
        """w_k of total = Σ w_k·term_k, as SLTModel.losses combines them (checked every step)."""
        lcfg = self.model.cfg.loss
        frames = 1.0 if self.model.frame_target_mode() is not None else 0.0
        w_ctc = lcfg.w_ctc if self.spec.task == "sign2gloss2text" else 0.0
        return [float(w_ctc), float(lcfg.w_ce), frames * float(lcfg.w_enc), frames * float(lcfg.w_bb)]

    def _term_counts(self, batch: dict[str, Any], out: Any) -> list[float]:
        """What each loss term averages over in this batch: CTC usable rows, text tokens, labelled frames
        (twice: L_enc and L_bb share the labels). Mirrors SLTModel.losses' normalisers."""
        from hatl.models.losses import IGNORE, ctc_usable, frame_targets

        n_tokens = float((batch["text_out"] != D.PAD).sum())
        mode = self.model.frame_target_mode()
        uses_ctc = self.spec.task == "sign2gloss2text"
        if not uses_ctc and mode is None:
            return [0.0, n_tokens, 0.0, 0.0]
        frame_lengths = out.frame_mask.sum(1)
        device = frame_lengths.device
        if batch.get("gloss") is None:
            gloss = torch.zeros(frame_lengths.shape[0], 0, dtype=torch.long, device=device)
            gloss_lengths = torch.zeros(frame_lengths.shape[0], dtype=torch.long, device=device)
        else:
            gloss, gloss_lengths = batch["gloss"].to(device), batch["gloss_lengths"].to(device)
        feasible = ctc_usable(frame_lengths, gloss_lengths, gloss)
        n_ctc = float(feasible.sum()) if uses_ctc else 0.0
        n_frames = 0.0
        if mode is not None:
            usable = feasible if mode == "viterbi" else (gloss_lengths > 0) & (frame_lengths > 0)
            with torch.no_grad():
                labels = frame_targets(mode, out.gloss_logprobs.detach(), frame_lengths, gloss, gloss_lengths, D.BLANK,
                                       usable, self.model.cfg.loss.supervise_blank_frames)
            n_frames = float((labels != IGNORE).sum())
        return [n_ctc, n_tokens, n_frames, n_frames]

    def _distributed_step(self, epoch: int, step: int, batches: list[list[int]], params: list[nn.Parameter],
                          sums: dict[str, float]) -> None:
        """One optimizer step of the global batch ``batches[step]``, this rank holding its shard.

        Each term's local mean is rescaled by this rank's share of the term's global count, so the
        gradient DDP averages equals the single-process gradient of the global batch. A rank whose shard is
        empty (a global batch smaller than the world) runs one real sample with weight 0, because every
        rank must take part in DDP's gradient all-reduce.
        """
        world = self.dist.world_size
        idxs = batches[step]
        mine = DU.shard(idxs, self.dist.rank, world)
        batch = self.make_batch("train", mine or idxs[:1], pad_like=idxs)
        assert self.ddp_model is not None
        with self._autocast():
            losses, counts = self.ddp_model(batch)
        if not mine:
            counts = [0.0] * len(TERM_KEYS)
        finite = bool(torch.isfinite(losses["total"].detach()))
        reduced = DU.all_reduce_sum([*counts, 0.0 if finite else 1.0, 1.0 if self.terminate_requested else 0.0])
        global_counts, bad_ranks, stop = reduced[: len(TERM_KEYS)], reduced[-2], reduced[-1]
        if bad_ranks > 0:  # every rank raises together, so none is left waiting in a collective
            values = {k: float(losses[k].detach()) for k in LOSS_KEYS if k in losses}
            raise HatlError(
                f"non-finite training loss at epoch {epoch}, step {step + 1}/{len(batches)} on {int(bad_ranks)} rank(s) "
                f"(this rank {self.dist.rank}: samples {batch['sample_ids'][:4]}..., {values}); the resume state in "
                f"{self.spec.resume_dir} keeps the last good state"
            )
        self.terminate_requested = stop > 0
        weights = self._term_weights()
        terms = [losses[k] for k in TERM_KEYS]
        combined = sum(w * t.detach().float() for w, t in zip(weights, terms))
        if not torch.allclose(combined, losses["total"].detach().float(), rtol=1e-4, atol=1e-6):
            raise HatlError(f"the model's total loss {float(losses['total']):.6g} is not Σ w_k·term_k = {float(combined):.6g}; "
                            "multi-process training cannot rescale it to the global batch")
        scales = DU.term_scales(counts, global_counts, world)
        total = sum(w * s * t for w, s, t in zip(weights, scales, terms))
        self._optimizer_step(total, params, epoch, step)  # under DDP backward all-reduces the gradients
        # Sums whose total over ranks is what the single process adds for this global batch.
        n_global = len(idxs)
        sums["n"] += len(mine)
        sums["total"] += float(total.detach().float()) / world * n_global
        for k, s, t in zip(TERM_KEYS, scales, terms):
            sums[k] += float(t.detach().float()) * s / world * n_global
        if mine:
            for k in COUNT_KEYS:
                if k in losses:
                    sums[k] += int(losses[k])

    @torch.no_grad()
    def evaluate(self) -> dict[str, float | None]:
        from hatl.evaluate.ctc_decode import ctc_greedy

        self.model.eval()
        hyps, refs, ghyps, grefs = [], [], [], []
        sums = {"ctc": 0.0, "ce": 0.0, "total": 0.0, "n": 0}
        for idxs in D.eval_batches(self.dev.lengths(), self.tc.eval_batch_size):
            batch = self.make_batch("dev", idxs)
            with self._autocast():
                out = self.model(batch)
                losses = self.model.losses(batch, out)
                ids = greedy_decode(self.model, out.encoded, self.max_len)
            n = len(idxs)
            sums["n"] += n
            for k in ("ctc", "ce", "total"):
                sums[k] += float(losses[k].float()) * n
            hyps += [self.text_vocab.decode(h) for h in ids]
            refs += [self.dev.samples[i].text for i in idxs]
            if self.spec.task == "sign2gloss2text":
                lengths = out.frame_mask.sum(1).tolist()
                for row, i in enumerate(idxs):
                    g = ctc_greedy(out.gloss_logprobs[row, : int(lengths[row])].float(), D.BLANK)
                    ghyps.append(self.gloss_vocab.decode(g))
                    grefs.append(self.dev.samples[i].gloss)
        result: dict[str, float | None] = {
            "bleu4": dev_bleu4(hyps, refs, self.config.get("evaluation", {}) or {}),
            "ce_loss": sums["ce"] / sums["n"],
            "loss_total": sums["total"] / sums["n"],
            "ctc_loss": sums["ctc"] / sums["n"] if self.spec.task == "sign2gloss2text" else None,
            "wer": corpus_wer(ghyps, grefs) if ghyps else None,
        }
        result.update(collapse.log_fields(hyps, refs))  # dev_distinct_outputs / dev_distinct_refs in log.jsonl
        return result

    # -- state ---------------------------------------------------------------------------------------
    def save(self, epoch: int, step_in_epoch: int, epoch_done: bool, sums: dict[str, float], epoch_time: float,
             events: list[dict[str, Any]], finished: bool = False) -> None:
        drill_pause(epoch, step_in_epoch, epoch_done)  # test hook (HATL_DRILL_PAUSE), a no-op in real runs
        rng_ranks = None
        if self.dist.enabled:  # a collective: every rank calls save at the same points; rank 0 writes
            rng_ranks = DU.gather_objects(capture_rng())
            sums = self._reduce_sums(sums)
            if not self.dist.is_main:
                return
        state = {
            "fingerprint": self.fingerprint,
            "epoch": epoch,
            "step_in_epoch": step_in_epoch,
            "epoch_done": epoch_done,
            "finished": finished,
            "global_step": self.global_step,
            "opt_step": self.opt_step,
            "model": cpu_state_dict(self.model),
            "optimizer": self.optimizer.state_dict(),
            "trainable": list(self.trainable),
            "controller": self.controller.state.to_dict(),
            "rng": capture_rng(),
            "rng_ranks": rng_ranks,  # per rank (dropout masks differ by rank); None for a single process
            "world_size": self.dist.world_size,
            "epoch_sums": dict(sums),
            "epoch_time_s": epoch_time,
            "epoch_events": list(events),
            "wall_time_s": self.wall_time_s + (epoch_time if not epoch_done else 0.0),
            "best_state": self.best_state,
            "log": list(self.log_lines),
        }
        save_state(self.spec.resume_dir, state)

    def restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.trainable = list(state["trainable"])
        self._apply_trainable()
        self.optimizer = self._new_optimizer()
        self.optimizer.load_state_dict(state["optimizer"])
        self.opt_step = int(state["opt_step"])
        self.global_step = int(state["global_step"])
        self.controller.state = ControllerState.from_dict(state["controller"])
        self.best_state = state["best_state"]
        self.log_lines = list(state["log"])
        self.wall_time_s = float(state["wall_time_s"]) - (0.0 if state["epoch_done"] else float(state["epoch_time_s"]))
        ranks = state.get("rng_ranks")
        # A state from another world size resumes too (the run is defined by the global batch); only the
        # per-rank random streams cannot carry over then, and each rank continues rank 0's.
        same_world = ranks is not None and len(ranks) == self.dist.world_size
        restore_rng(ranks[self.dist.rank] if same_world else state["rng"])

    def _reduce_sums(self, sums: dict[str, float]) -> dict[str, float]:
        """The epoch's running sums over all ranks (identity for a single process)."""
        if not self.dist.enabled:
            return sums
        keys = sorted(sums)
        return dict(zip(keys, DU.all_reduce_sum([float(sums[k]) for k in keys])))

    # -- the run -------------------------------------------------------------------------------------
    def _epoch_start(self, epoch: int) -> list[dict[str, Any]]:
        """Apply what the controller decided at the end of the previous round (restore, release)."""
        if (epoch - 1) % self.tc.eval_every != 0:
            return []
        plan = self.controller.begin_epoch((epoch - 1) // self.tc.eval_every + 1)
        if plan.restore_best and self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        if plan.release is not None:
            self.trainable.append(plan.release)
            self._apply_trainable()
            self.optimizer = self._new_optimizer()
            self.opt_step = 0  # fresh AdamW: restart the LR warm-up so new layers start gently
            self.caches = {"train": None, "dev": None}  # the backbone is no longer frozen
            self.prefix_caches = {"train": None, "dev": None}  # the frozen prefix is one layer shorter
            log.info("epoch %d: released L%d (trainable layers %s)", epoch, plan.release, sorted(self.trainable))
        return plan.events

    def request_termination(self, signum: int | None = None, frame: Any = None) -> None:
        """Signal handler: finish the current step, save the state, stop (SIGKILL needs no handler)."""
        log.warning("signal %s received: saving the state after the current step", signum)
        self.terminate_requested = True

    def run(self) -> dict[str, Any]:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, self.request_termination)
            try:
                return self._run()
            finally:
                signal.signal(signal.SIGTERM, previous)
        return self._run()

    def _run(self) -> dict[str, Any]:
        state = load_state(self.spec.resume_dir, self.fingerprint)
        epoch, start_step = 1, 0
        sums = self._new_sums()
        epoch_time = 0.0
        events: list[dict[str, Any]] = []
        resumed_mid_epoch = False
        if state is not None:
            self.restore(state)
            if state.get("finished"):
                log.info("resume state in %s is a finished run: writing its outputs again", self.spec.resume_dir)
                return self.finish()
            if state["epoch_done"]:
                epoch = int(state["epoch"]) + 1
            else:
                epoch, start_step = int(state["epoch"]), int(state["step_in_epoch"])
                sums, epoch_time, events = dict(state["epoch_sums"]), float(state["epoch_time_s"]), list(state["epoch_events"])
                if not self.dist.is_main:  # the saved sums are already the sum over ranks: rank 0 carries them
                    sums = self._new_sums()
                resumed_mid_epoch = True
            log.info("resuming %s at epoch %d, step %d", self.spec.resume_dir, epoch, start_step)
        while epoch <= self.tc.max_epochs and not self.controller.stopped:
            if not resumed_mid_epoch:
                events = self._epoch_start(epoch)
            resumed_mid_epoch = False
            sums, epoch_time = self.train_epoch(epoch, start_step, sums, epoch_time, events)
            sums = self._reduce_sums(sums)
            t_eval = time.perf_counter()
            line = self._end_epoch(epoch, sums, events)
            epoch_time += time.perf_counter() - t_eval
            self.wall_time_s += epoch_time
            line["epoch_time_s"] = round(epoch_time, 3)
            line["wall_time_s"] = round(self.wall_time_s, 3)
            self.log_lines.append(line)
            self._log_epoch(line)
            self.save(epoch, 0, True, self._new_sums(), 0.0, [])
            if self.dist.enabled:  # a SIGTERM may have reached only some ranks during the evaluation
                self.terminate_requested = DU.all_reduce_sum([float(self.terminate_requested)])[0] > 0
            if self.terminate_requested and not self.controller.stopped and epoch < self.tc.max_epochs:
                raise HatlError(f"terminated by signal after epoch {epoch}; state saved in {self.spec.resume_dir}: "
                                "rerun the same command to resume")
            epoch, start_step, sums, epoch_time = epoch + 1, 0, self._new_sums(), 0.0
        return self.finish()

    @staticmethod
    def _new_sums() -> dict[str, float]:
        return {"n": 0, **{k: 0.0 for k in LOSS_KEYS}, **{k: 0 for k in COUNT_KEYS}}

    def _end_epoch(self, epoch: int, sums: dict[str, float], events: list[dict[str, Any]]) -> dict[str, Any]:
        n = max(1, sums["n"])
        line: dict[str, Any] = {"epoch": epoch, "wall_time_s": None, "epoch_time_s": None}
        line.update({f"loss_{k}": sums[k] / n for k in LOSS_KEYS})
        line.update({f"train_{k}": int(sums[k]) for k in COUNT_KEYS})
        evaluated = epoch % self.tc.eval_every == 0 or epoch == self.tc.max_epochs
        dev: dict[str, float | None] = {"bleu4": None, "ctc_loss": None, "wer": None, "ce_loss": None, "loss_total": None}
        metric = avg = delta = None
        events = list(events)
        if evaluated:
            if self.dist.enabled:  # rank 0 evaluates; every rank takes the controller step on its numbers
                dev = DU.broadcast_object(self.evaluate() if self.dist.is_main else None)
            else:
                dev = self.evaluate()
            metric = release_value(self.tc.metric, dev)
            end = self.controller.end_epoch(self.controller.state.last_epoch + 1, metric)
            avg, delta = end.metric_avg, end.delta
            if end.improved:
                self.best_state = cpu_state_dict(self.model)
            events += end.events
        line.update({f"dev_{k}": v for k, v in dev.items()})
        line.update({
            "metric_name": self.tc.metric,
            "metric": metric,
            "metric_avg": avg,
            "best_metric": self.controller.state.best,
            "delta": delta,
            "tau": self.tc.tau,
            "trainable_layers": sorted(self.trainable),
            "n_trainable_layers": len(self.trainable),
            "n_trainable_params": self.n_trainable_params(),
            "lr": current_lrs(self.optimizer),
            "cached_backbone_features": self._use_cache(),
            "cached_frozen_layers": self.n_layers if self._use_cache() else (self.frozen_prefix() if self.prefix_caches["train"] is not None else 0),
            "events": events,
        })
        return line

    def _log_epoch(self, line: dict[str, Any]) -> None:
        parts = [f"epoch {line['epoch']}", f"loss {line['loss_total']:.4f}"]
        if line["metric"] is not None:
            parts.append(f"dev bleu4 {line['dev_bleu4']:.2f}")
            if line["dev_ctc_loss"] is not None:
                parts.append(f"ctc {line['dev_ctc_loss']:.4f} wer {line['dev_wer'] if line['dev_wer'] is not None else float('nan'):.2f}")
            parts.append(f"M {line['metric']:.5f} M̄ {line['metric_avg']:.5f} Δ {line['delta']:.5f}")
        parts.append(f"layers {line['trainable_layers']}")
        parts.append(f"{line['epoch_time_s']:.1f}s")
        ev = ", ".join(e["type"] + (f" L{e['layer']}" if "layer" in e else "") for e in line["events"])
        log.info("%s%s", " | ".join(parts), f" | {ev}" if ev else "")

    # -- outputs -------------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        st = self.controller.state
        best_line = next((line for line in self.log_lines if line["epoch"] == self._epoch_of_round(st.best_epoch)), None)
        return {
            **self.spec.identity(),
            "best_epoch": self._epoch_of_round(st.best_epoch),
            "best_metric": st.best,
            "metric_name": self.tc.metric,
            "metric_mode": METRIC_MODE[self.tc.metric],
            "best_dev": {k[4:]: v for k, v in (best_line or {}).items() if k.startswith("dev_")},
            "epochs_run": len(self.log_lines),
            "total_hours": self.wall_time_s / 3600.0,
            "train_time_s": self.wall_time_s,
            # a release applies at the start of its round: the first epoch of that round
            "release_epochs": {str(m): (r - 1) * self.tc.eval_every + 1 for m, r in st.release_epochs.items()},
            "release_order": list(self.controller.config.release_order),
            "n_backbone_layers": self.n_layers,
            "stop_reason": st.stop_reason,
            "final_trainable_layers": sorted(self.trainable),
            "samples": {"train": len(self.train.samples), "dev": len(self.dev.samples)},
            "world_size": self.dist.world_size,
            "global_batch_size": self.tc.batch_size,
            "skipped": {"train": self.train.skipped, "dev": self.dev.skipped},
            "provenance": provenance(self.config, run=self.spec.identity(), fingerprint=self.fingerprint),
        }

    def _epoch_of_round(self, r: int) -> int:
        return min(r * self.tc.eval_every, self.tc.max_epochs) if r else 0

    def finish(self) -> dict[str, Any]:
        """Mark the resume state finished, then write the declared outputs (summary.json last)."""
        if self.best_state is None:
            raise HatlError(f"run {self.spec.identity()} ended without any evaluated epoch: no best checkpoint")
        self.save(len(self.log_lines), 0, True, self._new_sums(), 0.0, [], finished=True)
        summary = self.summary()
        if not self.dist.is_main:  # rank 0 alone writes the outputs
            return summary
        out = self.spec.out_dir
        out.mkdir(parents=True, exist_ok=True)
        blob = {
            "format": BEST_FORMAT,
            "model_state": self.best_state,
            "model_args": {
                "task": self.spec.task,
                "translator": self.spec.model,
                "gloss_vocab_size": len(self.gloss_vocab),
                "text_vocab_size": len(self.text_vocab),
                "model_config": self.config.get("model", {}),
                "backbone": self._backbone_args(),
            },
            "vocab": {"gloss": str(self.gloss_vocab_path), "text": str(self.text_vocab_path)},
            "run": self.spec.identity(),
            "best_epoch": summary["best_epoch"],
            "best_metric": summary["best_metric"],
            "metric_name": self.tc.metric,
            "config": self.config,
            "provenance": summary["provenance"],
        }
        with atomic_path(out / "best.pt") as tmp:
            torch.save(blob, tmp)
        write_text(out / "log.jsonl", "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in self.log_lines))
        write_json(out / "summary.json", summary)
        log.info("finished: best %s %.5g at epoch %s; stop: %s; %.1f s", self.tc.metric, summary["best_metric"],
                 summary["best_epoch"], summary["stop_reason"], self.wall_time_s)
        if (warning := collapse.collapse_warning(summary)) is not None:
            log.warning(warning)
        return summary

    def _backbone_args(self) -> dict[str, Any] | None:
        bb = getattr(self.model, "backbone", None)
        if bb is None:
            return None
        graph = getattr(bb, "graph", None)
        return {"config": bb.config.to_dict(), "graph": graph.to_dict() if graph is not None else None, "num_joints": bb.num_joints}


def load_trained(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model of a finished run from its ``best.pt`` (no other file needed) and return (model, blob)."""
    from hatl.models.graph import Graph
    from hatl.models.slt import SLTModel
    from hatl.models.stgcnpp import STGCNPP, STGCNPPConfig

    try:
        blob = torch.load(path, map_location=map_location, weights_only=False)
    except FileNotFoundError as err:
        raise InputError(path, None, "trained checkpoint does not exist") from err
    if not isinstance(blob, dict) or blob.get("format") != BEST_FORMAT:
        raise InputError(path, None, f"not a {BEST_FORMAT} checkpoint written by `hatl train`")
    args = blob["model_args"]
    backbone = None
    if args["backbone"] is not None:
        bb = args["backbone"]
        if bb["graph"] is not None:
            adjacency = Graph.from_dict(bb["graph"]).adjacency()
        else:
            adjacency = np.zeros((3, bb["num_joints"], bb["num_joints"]), dtype=np.float32)  # overwritten by the state dict
        backbone = STGCNPP(adjacency, STGCNPPConfig.from_dict(bb["config"]))
    model = SLTModel(args["task"], args["translator"], backbone, args["gloss_vocab_size"], args["text_vocab_size"], cfg=args["model_config"])
    model.load_state_dict(blob["model_state"], strict=True)
    model.eval()
    return model, blob


def train_run(spec: RunSpec, config: dict[str, Any], model_factory: ModelFactory | None = None) -> dict[str, Any]:
    """Train one run to completion (resuming if a state exists) and write its outputs; returns the summary.

    Under torchrun (WORLD_SIZE > 1) every process calls this; it joins the process group (nccl on CUDA,
    gloo on CPU), trains its shard of every global batch, and rank 0 writes the outputs.
    """
    ctx = DU.context_from_env()
    if not ctx.enabled:
        return Trainer(spec, config, model_factory).run()
    ddp = DU.DDPConfig.from_config(config)
    device = resolve_device(TrainConfig.from_config(config, spec.task).device)
    if device.type == "cuda":
        torch.cuda.set_device(ctx.local_rank)
    if not ctx.is_main:  # one readable log: the other ranks report only warnings and errors
        logging.getLogger("hatl").setLevel(logging.WARNING)
    DU.init_process_group(ctx, DU.pick_backend(ddp.backend, device), ddp.timeout_min)
    try:
        return Trainer(spec, config, model_factory, dist=ctx).run()
    finally:
        DU.destroy_process_group()


__all__ = ["RunSpec", "TrainConfig", "Trainer", "train_run", "load_trained", "greedy_decode", "release_value"]
