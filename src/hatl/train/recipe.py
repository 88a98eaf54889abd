"""One training run (dataset × translator × task × strategy × fold), resumable at any moment: the loop.

The strategies (classical, full, hatl) share everything but which backbone layers train when, which
:class:`hatl.train.controller.HatlController` decides (docs/training.md). Components: :mod:`.config`,
:mod:`.feature_cache` (batches), :mod:`.step` (one optimisation step, 1 or N processes), :mod:`.dev` (dev
evaluation), :mod:`.state` (resume state), :mod:`hatl.models.trained` (``best.pt``).
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hatl import batches as D
from hatl.devices import resolve_device
from hatl.errors import ConfigError, HatlError
from hatl.experiment import PAD
from hatl.io import write_json, write_text
from hatl.metrics import BleuSettings, collapse_warning
from hatl.models.backbone_source import NONE as NO_BACKBONE
from hatl.models.backbone_source import BackboneSource, synthetic_backbone_warning
from hatl.models.losses import frame_loss_coverage
from hatl.models.trained import model_args, save_trained
from hatl.provenance import provenance
from hatl.vocab import gloss_word_ids
from hatl.train import distributed as DU
from hatl.train.averaging import POOL_DIR, CheckpointPool
from hatl.train.config import METRIC_MODE, RunSpec, TrainConfig, pick_device
from hatl.train.controller import ControllerState, HatlController
from hatl.train.dev import DevResult, epoch_message, evaluate_dev, release_value
from hatl.train.feature_cache import FeatureCache
from hatl.train.optim import apply_lr, build_groups, build_optimizer, count_params, current_lrs, decay_factor, warmup_steps
from hatl.train.precision import autocast, configure_precision
from hatl.train.state import (capture_rng, cpu_state_dict, drill_pause, load_state, on_sigterm, restore_rng, run_fingerprint,
                              save_state, seed_everything)
from hatl.train.step import COUNT_KEYS, LOSS_KEYS, LossForward, add_sums, new_sums, optimizer_update, step_losses

log = logging.getLogger(__name__)

ModelFactory = Callable[["Trainer"], nn.Module]


def default_model_factory(trainer: Trainer) -> nn.Module:
    from hatl.models.slt import SLTModel

    backbone = None
    if trainer.spec.task != "gloss2text":
        from hatl.models.checkpoint import load_backbone

        backbone = load_backbone(trainer.spec.backbone)  # type: ignore[arg-type]
    try:
        return SLTModel(trainer.spec.task, trainer.spec.model, backbone, len(trainer.gloss_vocab), len(trainer.text_vocab),
                        cfg=trainer.config["model"], gloss_words=_gloss_words(trainer))
    except ValueError as err:  # sizes that do not fit together: a config problem the user can fix
        raise ConfigError(f"model section: {err}") from err


def _gloss_words(trainer: Trainer) -> list[int] | None:
    """The gloss -> text word map when this run's translator reads glosses through word embeddings, else None."""
    from hatl.models.slt import ModelConfig

    if trainer.spec.task != "gloss2text":
        return None
    if not ModelConfig.from_dict(trainer.config["model"]).translator(trainer.spec.model).gloss_word_embeddings:
        return None
    words = gloss_word_ids(trainer.gloss_vocab, trainer.text_vocab)
    mapped = [tok for tok, wid in zip(trainer.gloss_vocab.tokens, words) if wid != PAD]
    counts = trainer.gloss_vocab.counts
    running = sum(counts.values())
    share = sum(counts.get(tok, 0) for tok in mapped) / running if running else 0.0
    log.info("gloss word embeddings: %d of %d glosses spell a text word (%.1f%% of training gloss tokens); "
             "the others keep their own embedding", len(mapped), len(trainer.gloss_vocab) - len(trainer.gloss_vocab.special_ids),
             100 * share)
    return words


class Trainer:
    def __init__(self, spec: RunSpec, config: dict[str, Any], model_factory: ModelFactory | None = None,
                 dist: DU.DistContext | None = None) -> None:
        self.spec, self.config = spec, config
        self.tc = TrainConfig.from_config(config, spec.task, spec.strategy)
        self.dist = dist or DU.DistContext()
        self.device = pick_device(self.tc, self.dist)
        self.amp = configure_precision(config, self.device)  # bf16 autocast on CUDA unless training.precision is fp32
        self._autocast = functools.partial(autocast, self.device, self.amp)  # the context every forward runs in
        threads = spec.threads if spec.threads else self.tc.threads
        if threads:
            torch.set_num_threads(threads)
        self._load_data()
        seed_everything(self.tc.seed)  # one seed for every run of the config: all strategies start from the same init
        self.model = (model_factory or default_model_factory)(self).to(self.device)
        if self.dist.enabled and self.tc.ddp.sync_batchnorm:
            import torch.distributed as torch_dist

            # Its own process group: the statistics' all-reduces run inside forward/backward, beside DDP's.
            n_bn = DU.globalise_batchnorm(self.model, group=torch_dist.new_group())
            log.info("batch norm: %d layer(s) use global-batch statistics across %d ranks", n_bn, self.dist.world_size)
        self.layers: list[nn.Module] = list(self.model.backbone.layers()) if getattr(self.model, "backbone", None) is not None else []
        self.n_layers = len(self.layers)
        self.controller = HatlController(self.tc.controller_config(spec.strategy, self.n_layers))
        self.optim = self.tc.optim_for(spec.strategy)  # the full baseline: one backbone rate (no LLRD)
        self.cache = FeatureCache(self.model, self.layers, {"train": self.train, "dev": self.dev}, self.device, self._autocast,
                                  frozen_features=self.tc.cache_frozen_features, frozen_prefix=self.tc.cache_frozen_prefix,
                                  max_mb=self.tc.cache_max_mb, group_size=self.tc.eval_batch_size)
        self.loss_weights = self.model.loss_weights()
        self._warn_frame_loss_coverage()
        self.backbone_source, self.warnings = self._backbone_source()
        self.forward: nn.Module = LossForward(self.model)  # replaced by its DDP wrapper in a multi-process run
        # The batch count is the same every epoch (fixed pool sizes), so epoch 1's gives the total step count.
        self.train_steps_per_epoch = len(self._epoch_batches(1))
        self.total_steps = self.tc.max_epochs * self.train_steps_per_epoch
        self.n_warmup = warmup_steps(self.total_steps, self.tc.optim)
        self.trainable: list[int] = list(range(1, self.n_layers + 1)) if spec.strategy == "full" else []
        self._apply_trainable()
        self.optimizer = self._new_optimizer()
        self.opt_step = 0  # updates since the optimizer was (re)built: drives the LR warm-up
        self.global_step = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        # training.average_checkpoints: epoch weights kept on disk beside the resume state (rank 0 writes them)
        self.pool = (CheckpointPool(self.tc.averaging, Path(spec.resume_dir) / POOL_DIR, METRIC_MODE[self.tc.metric])
                     if self.tc.averaging is not None else None)
        self.log_lines: list[dict[str, Any]] = []
        self.wall_time_s = 0.0
        self.terminate_requested = False  # set by SIGTERM (e.g. a SLURM walltime): save at the next step, exit
        self.fingerprint = run_fingerprint(spec.identity(), config, spec.dataset, self._input_files())

    # -- set-up ----------------------------------------------------------------------------------
    def _load_data(self) -> None:
        self.gloss_vocab, self.text_vocab = D.load_vocabularies(self.spec.vocab_dir, self.spec.fold)
        self.vocab_paths = {name: self.spec.vocab_dir / f"{name}.json" for name in ("gloss", "text")}
        if self.spec.data_dir is not None:
            sources = D.split_sources(self.spec.data_dir, self.spec.fold)
        else:
            sources = D.manifest_sources(self.spec.manifest, self.spec.fold)  # type: ignore[arg-type]
        options = D.split_options(self.config["datasets"][self.spec.dataset], self.spec.task)
        self.sources = {k: sources[k] for k in ("train", "dev")}
        self.train = D.load_split(self.sources["train"], self.gloss_vocab, self.text_vocab, **options)
        self.dev = D.load_split(self.sources["dev"], self.gloss_vocab, self.text_vocab, **options)
        self.max_len = self.tc.greedy_max_len or max(len(s.text_ids) for s in self.train.samples) + 10
        log.info("data: %d train / %d dev samples (%d / %d skipped)", len(self.train.samples), len(self.dev.samples),
                 len(self.train.skipped), len(self.dev.skipped))

    def _backbone_source(self) -> tuple[BackboneSource, list[str]]:
        """What the backbone was pretrained on (recorded by import-backbone), and the warning of a real dataset
        whose backbone saw only synthetic data (logged now and at the end, kept in summary.json)."""
        if self.spec.task == "gloss2text" or self.spec.backbone is None:
            return NO_BACKBONE, []
        from hatl.models.checkpoint import backbone_source_of

        source = backbone_source_of(self.spec.backbone)
        demo = (self.config["datasets"].get(self.spec.dataset) or {}).get("adapter") == "demo"
        warning = synthetic_backbone_warning(self.spec.dataset, source, demo)
        log.info("backbone: %s", source.label)
        if warning is not None:
            log.warning("%s", warning)
        return source, [warning] if warning else []

    def _warn_frame_loss_coverage(self) -> None:
        """Say when L_enc / L_bb are on but training samples lack the glosses their frame labels come from."""
        mode = self.model.frame_target_mode() if hasattr(self.model, "frame_target_mode") else None
        with_gloss = sum(1 for s in self.train.samples if len(s.gloss_ids) > 0)
        note = frame_loss_coverage(self.spec.task, mode, with_gloss, len(self.train.samples))
        if note is not None:
            log.warning("%s", note)

    def _input_files(self) -> list[Path]:
        inputs = [self.sources["train"].path, self.vocab_paths["gloss"], self.vocab_paths["text"]]
        if self.sources["dev"].path != self.sources["train"].path:
            inputs.append(self.sources["dev"].path)
        if self.spec.task != "gloss2text" and self.spec.backbone is not None:
            inputs.append(self.spec.backbone)
        return inputs

    # -- trainable set and optimizer ---------------------------------------------------------------
    def _apply_trainable(self) -> None:
        keep = set(self.trainable)
        for m, layer in enumerate(self.layers, start=1):
            for p in layer.parameters():
                p.requires_grad_(m in keep)
        self.cache.set_trainable(self.trainable)
        if self.dist.enabled:
            # DDP fixes its parameter set when built, so every change of the trainable set needs a new wrapper;
            # building it broadcasts rank 0's weights, which puts every rank on the same ones after a restore.
            from torch.nn.parallel import DistributedDataParallel

            self.forward = DistributedDataParallel(LossForward(self.model), find_unused_parameters=True,
                                                   device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def _new_optimizer(self) -> torch.optim.AdamW:
        self.groups = build_groups(self.model, self.layers, self.optim)
        return build_optimizer(self.groups, self.optim)

    def _set_lr(self) -> None:
        """The warm-up of the current optimizer times the run's decay schedule."""
        decay = decay_factor(self.global_step, self.total_steps, self.tc.optim.schedule, self.tc.optim.final_factor)
        apply_lr(self.optimizer, self.opt_step, self.n_warmup, decay)

    def set_train_mode(self) -> None:
        """Train mode, except frozen backbone layers: eval, so their batch-norm statistics never move."""
        self.forward.train()
        keep = set(self.trainable)
        for m, layer in enumerate(self.layers, start=1):
            if m not in keep:
                layer.eval()

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        return D.epoch_batches(self.train.lengths(), self.tc.batch_size, self.tc.seed, epoch,
                               bucketing=self.tc.bucketing, pool_batches=self.tc.pool_batches)

    # -- the run -----------------------------------------------------------------------------------
    def request_termination(self, signum: int | None = None, frame: Any = None) -> None:
        """Signal handler: finish the current step, save the state, stop (SIGKILL needs no handler)."""
        log.warning("signal %s received: saving the state after the current step", signum)
        self.terminate_requested = True

    def run(self) -> dict[str, Any]:
        with on_sigterm(self.request_termination):
            return self._run()

    def _run(self) -> dict[str, Any]:
        state = load_state(self.spec.resume_dir, self.fingerprint)
        epoch, start_step, sums, epoch_time, events = 1, 0, new_sums(), 0.0, []
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
                    sums = new_sums()
                resumed_mid_epoch = True
            log.info("resuming %s at epoch %d, step %d", self.spec.resume_dir, epoch, start_step)
        while epoch <= self.tc.max_epochs and not self.controller.stopped:
            if not resumed_mid_epoch:
                events = self._epoch_start(epoch)
            resumed_mid_epoch = False
            sums, epoch_time = self.train_epoch(epoch, start_step, sums, epoch_time, events)
            t_eval = time.perf_counter()
            line = self._end_epoch(epoch, DU.reduce_sums(sums, self.dist), events)
            epoch_time += time.perf_counter() - t_eval
            self.wall_time_s += epoch_time
            line["epoch_time_s"], line["wall_time_s"] = round(epoch_time, 3), round(self.wall_time_s, 3)
            self.log_lines.append(line)
            log.info("%s", epoch_message(line))
            self.save(epoch, 0, True, new_sums(), 0.0, [])
            if self.dist.enabled:  # a SIGTERM may have reached only some ranks during the evaluation
                self.terminate_requested = DU.all_reduce_sum([float(self.terminate_requested)])[0] > 0
            if self.terminate_requested and not self.controller.stopped and epoch < self.tc.max_epochs:
                raise HatlError(f"terminated by signal after epoch {epoch}; state saved in {self.spec.resume_dir}: "
                                "rerun the same command to resume")
            epoch, start_step, sums, epoch_time = epoch + 1, 0, new_sums(), 0.0
        return self.finish()

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
            log.info("epoch %d: released L%d (trainable layers %s)", epoch, plan.release, sorted(self.trainable))
        return plan.events

    def train_epoch(self, epoch: int, start_step: int, sums: dict[str, float], epoch_time: float,
                    events: list[dict[str, Any]]) -> tuple[dict[str, float], float]:
        from tqdm import tqdm

        batches = self._epoch_batches(epoch)
        self.set_train_mode()
        params = [p for p in self.model.parameters() if p.requires_grad]
        make_batch = functools.partial(self.cache.make_batch, "train")
        t0 = time.perf_counter()
        bar = tqdm(total=len(batches), initial=start_step, desc=f"epoch {epoch}", leave=False, disable=None if self.dist.is_main else True)
        for step in range(start_step, len(batches)):
            where = f"epoch {epoch}, step {step + 1}/{len(batches)}"
            part = step_losses(self.forward, make_batch, batches[step], self.dist, self._autocast, self.loss_weights,
                               lambda: self.terminate_requested, where, self.spec.resume_dir)
            if self.dist.enabled:  # the flag all-reduced with this step: every rank stops at the same step
                self.terminate_requested = part.stop
            optimizer_update(part.total, params, self.optimizer, self.tc.grad_clip, self._set_lr, where)
            self.opt_step += 1
            self.global_step += 1
            add_sums(sums, part.sums)
            bar.update(1)
            # Periodic resume state, and the stop a SIGTERM asked for (saved first; at the last step the epoch end saves).
            every = self.tc.checkpoint_every_steps
            if step + 1 < len(batches) and (self.terminate_requested or (every and self.global_step % every == 0)):
                self.save(epoch, step + 1, False, sums, epoch_time + time.perf_counter() - t0, events)
            if self.terminate_requested and step + 1 < len(batches):
                bar.close()
                raise HatlError(f"terminated by signal at {where}; state saved in {self.spec.resume_dir}: rerun the same command to resume")
        bar.close()
        return sums, epoch_time + time.perf_counter() - t0

    def evaluate(self) -> DevResult:
        """Greedy dev evaluation of the live model (leaves it in eval mode)."""
        return evaluate_dev(self.model, self.dev, functools.partial(self.cache.make_batch, "dev"), task=self.spec.task,
                            text_vocab=self.text_vocab, gloss_vocab=self.gloss_vocab, batch_size=self.tc.eval_batch_size,
                            max_len=self.max_len, bleu=BleuSettings.from_config(self.config["evaluation"]),
                            autocast=self._autocast, device=self.device)

    def _end_epoch(self, epoch: int, sums: dict[str, float], events: list[dict[str, Any]]) -> dict[str, Any]:
        n = max(1, sums["n"])
        line: dict[str, Any] = {"epoch": epoch, "wall_time_s": None, "epoch_time_s": None}
        line.update({f"loss_{k}": sums[k] / n for k in LOSS_KEYS})
        line.update({f"train_{k}": int(sums[k]) for k in COUNT_KEYS})
        evaluated = epoch % self.tc.eval_every == 0 or epoch == self.tc.max_epochs
        dev: dict[str, float | None] = {"bleu4": None, "ctc_loss": None, "wer": None, "ce_loss": None, "loss_total": None}
        metric = avg = delta = None
        events = list(events)
        if evaluated:  # under DDP rank 0 evaluates; every rank takes the controller step on its numbers
            dev = DU.broadcast_object(self.evaluate().metrics if self.dist.is_main else None) if self.dist.enabled else self.evaluate().metrics
            metric = release_value(self.tc.metric, dev)
            end = self.controller.end_epoch(self.controller.state.last_epoch + 1, metric)
            avg, delta = end.metric_avg, end.delta
            if end.improved:
                self.best_state = cpu_state_dict(self.model)
            events += end.events
        if self.pool is not None and self.dist.is_main:
            self.pool.offer(epoch, metric, cpu_state_dict(self.model))
        line.update({f"dev_{k}": v for k, v in dev.items()})
        line.update({
            "metric_name": self.tc.metric, "metric": metric, "metric_avg": avg, "best_metric": self.controller.state.best,
            "delta": delta, "tau": self.tc.controller.tau, "trainable_layers": sorted(self.trainable), "n_trainable_layers": len(self.trainable),
            "n_trainable_params": count_params([p for p in self.model.parameters() if p.requires_grad]), "lr": current_lrs(self.optimizer),
            "cached_backbone_features": self.cache.use_features(), "cached_frozen_layers": self.cache.cached_layers(), "events": events,
        })
        return line

    # -- outputs -----------------------------------------------------------------------------------
    def _epoch_of_round(self, r: int) -> int:
        return min(r * self.tc.eval_every, self.tc.max_epochs) if r else 0

    def summary(self) -> dict[str, Any]:
        st = self.controller.state
        best_line = next((line for line in self.log_lines if line["epoch"] == self._epoch_of_round(st.best_epoch)), None)
        return {
            **self.spec.identity(),
            "best_epoch": self._epoch_of_round(st.best_epoch), "best_metric": st.best,
            "metric_name": self.tc.metric, "metric_mode": METRIC_MODE[self.tc.metric],
            "best_dev": {k[4:]: v for k, v in (best_line or {}).items() if k.startswith("dev_")},
            "epochs_run": len(self.log_lines), "total_hours": self.wall_time_s / 3600.0, "train_time_s": self.wall_time_s,
            # a release applies at the start of its round: the first epoch of that round
            "release_epochs": {str(m): (r - 1) * self.tc.eval_every + 1 for m, r in st.release_epochs.items()},
            "release_order": list(self.controller.config.release_order), "n_backbone_layers": self.n_layers,
            "layer_decay": self.optim.layer_decay,  # α applied to the backbone's layers (1: one backbone rate)
            "stop_reason": st.stop_reason, "final_trainable_layers": sorted(self.trainable),
            "backbone": self.backbone_source.to_dict(), "warnings": list(self.warnings),
            "samples": {"train": len(self.train.samples), "dev": len(self.dev.samples)},
            "world_size": self.dist.world_size, "global_batch_size": self.tc.batch_size,
            "skipped": {"train": self.train.skipped, "dev": self.dev.skipped},
            "provenance": provenance(self.config, run=self.spec.identity(), fingerprint=self.fingerprint),
        }

    def finish(self) -> dict[str, Any]:
        """Mark the resume state finished, then write the declared outputs (summary.json last)."""
        if self.best_state is None:
            raise HatlError(f"run {self.spec.identity()} ended without any evaluated epoch: no best checkpoint")
        self.save(len(self.log_lines), 0, True, new_sums(), 0.0, [], finished=True)
        summary = self.summary()
        if not self.dist.is_main:  # rank 0 alone writes the outputs
            return summary
        weights = self.best_state
        if self.pool is not None:
            weights, summary["averaged"] = self._averaged_model()
        out = self.spec.out_dir
        out.mkdir(parents=True, exist_ok=True)
        args = model_args(self.model, self.spec.task, self.spec.model, len(self.gloss_vocab), len(self.text_vocab),
                          self.config["model"])
        save_trained(out / "best.pt", weights, args,
                     vocab={k: str(p) for k, p in self.vocab_paths.items()}, run=self.spec.identity(),
                     best_epoch=summary["best_epoch"], best_metric=summary["best_metric"], metric_name=self.tc.metric,
                     config=self.config, provenance=summary["provenance"], backbone=summary["backbone"],
                     averaged_epochs=summary.get("averaged", {}).get("epochs"))
        write_text(out / "log.jsonl", "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in self.log_lines))
        write_json(out / "summary.json", summary)
        log.info("finished: best %s %.5g at epoch %s; stop: %s; %.1f s", self.tc.metric, summary["best_metric"],
                 summary["best_epoch"], summary["stop_reason"], self.wall_time_s)
        if "averaged" in summary:
            log.info("best.pt holds the average of epochs %s (%s): dev %s %.5g", summary["averaged"]["epochs"],
                     summary["averaged"]["selection"], self.tc.metric, summary["averaged"]["metric"])
        if (warning := collapse_warning(summary)) is not None:
            log.warning(warning)
        for warning in self.warnings:  # said at the start too; repeated where a reader of the log's end sees it
            log.warning("%s", warning)
        return summary

    def _averaged_model(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The mean of the pool's epoch weights and what summary.json says of it, its dev score included
        (the same greedy evaluation as every epoch's). Leaves the averaged weights in the live model."""
        assert self.pool is not None
        weights = self.pool.average()
        self.model.load_state_dict(weights)
        metrics = self.evaluate().metrics
        return weights, {"selection": self.pool.config.selection, "count": self.pool.config.count,
                         "epochs": self.pool.epochs(), "epoch_metrics": [e.metric for e in self.pool.entries],
                         "metric_name": self.tc.metric, "metric": release_value(self.tc.metric, metrics), "dev": metrics}

    # -- resume state ------------------------------------------------------------------------------
    def save(self, epoch: int, step_in_epoch: int, epoch_done: bool, sums: dict[str, float], epoch_time: float,
             events: list[dict[str, Any]], finished: bool = False) -> None:
        drill_pause(epoch, step_in_epoch, epoch_done)  # test hook (HATL_DRILL_PAUSE), a no-op in real runs
        rng_ranks = None
        if self.dist.enabled:  # a collective: every rank calls save at the same points; rank 0 writes
            rng_ranks = DU.gather_objects(capture_rng())
            sums = DU.reduce_sums(sums, self.dist)
            if not self.dist.is_main:
                return
        save_state(self.spec.resume_dir, {
            "fingerprint": self.fingerprint, "epoch": epoch, "step_in_epoch": step_in_epoch, "epoch_done": epoch_done,
            "finished": finished, "global_step": self.global_step, "opt_step": self.opt_step,
            "model": cpu_state_dict(self.model), "optimizer": self.optimizer.state_dict(), "trainable": list(self.trainable),
            "controller": self.controller.state.to_dict(), "rng": capture_rng(),
            "rng_ranks": rng_ranks,  # per rank (dropout masks differ by rank); None for a single process
            "world_size": self.dist.world_size, "epoch_sums": dict(sums), "epoch_time_s": epoch_time, "epoch_events": list(events),
            "wall_time_s": self.wall_time_s + (epoch_time if not epoch_done else 0.0), "best_state": self.best_state,
            "log": list(self.log_lines), "averaging": self.pool.to_dict() if self.pool is not None else None,
        })
        if self.pool is not None:  # only now that the saved state no longer names them
            self.pool.prune()

    def restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.trainable = list(state["trainable"])
        self._apply_trainable()
        self.optimizer = self._new_optimizer()
        self.optimizer.load_state_dict(state["optimizer"])
        self.opt_step, self.global_step = int(state["opt_step"]), int(state["global_step"])
        self.controller.state = ControllerState.from_dict(state["controller"])
        self.best_state = state["best_state"]
        self.log_lines = list(state["log"])
        if self.pool is not None:
            self.pool.load(state.get("averaging"))
        self.wall_time_s = float(state["wall_time_s"]) - (0.0 if state["epoch_done"] else float(state["epoch_time_s"]))
        # A state from another world size resumes too (the run is defined by the global batch); only the
        # per-rank random streams cannot carry over then, and each rank continues rank 0's.
        ranks = state.get("rng_ranks")
        restore_rng(ranks[self.dist.rank] if ranks is not None and len(ranks) == self.dist.world_size else state["rng"])


def train_run(spec: RunSpec, config: dict[str, Any], model_factory: ModelFactory | None = None) -> dict[str, Any]:
    """Train one run to completion (resuming if a state exists) and write its outputs; returns the summary.

    Under torchrun (WORLD_SIZE > 1) every process calls this; it joins the process group (nccl on CUDA,
    gloo on CPU), trains its shard of every global batch, and rank 0 writes the outputs.
    """
    ctx = DU.context_from_env()
    if not ctx.enabled:
        return Trainer(spec, config, model_factory).run()
    tc = TrainConfig.from_config(config, spec.task, spec.strategy)
    device = resolve_device(tc.device)
    if device.type == "cuda":
        torch.cuda.set_device(ctx.local_rank)
    if not ctx.is_main:  # one readable log: the other ranks report only warnings and errors
        logging.getLogger("hatl").setLevel(logging.WARNING)
    DU.init_process_group(ctx, DU.pick_backend(tc.ddp.backend, device), tc.ddp.timeout_min)
    try:
        return Trainer(spec, config, model_factory, dist=ctx).run()
    finally:
        DU.destroy_process_group()


__all__ = ["RunSpec", "TrainConfig", "Trainer", "train_run", "default_model_factory"]
