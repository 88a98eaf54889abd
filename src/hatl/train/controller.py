"""The HATL progressive-unfreezing controller (the paper's Algorithm 1) as a pure unit: no torch, no I/O.

The trainer tells the controller when an epoch starts and what the dev metric was when it ends; the
controller answers with what to do (restore the best checkpoint, release a backbone layer, stop) and
keeps every counter the schedule needs (moving average, Δ and its decay, release streak, cooldown,
early-stopping count). Its whole state is a plain dataclass, so a resumed run continues it exactly.

The same controller drives the two baselines: with nothing left to release (classical: no layer ever
released; full: every layer trainable from the start) it reduces to best-checkpoint tracking plus
early stopping, so all three strategies stop by the same rule.

Counting conventions (see docs/training.md):

* epochs are numbered from 1; ``begin_epoch(e)`` applies a release decided at the end of epoch e-1,
  so a layer becomes trainable at the start of the epoch after the criterion held (Algorithm 1);
* M̄(e) is the mean of the last ``window`` metrics; the release streak only counts once the window is
  full and the epoch is past the warm-up, and never during a cooldown;
* cooldown epochs neither count towards a release nor towards early stopping;
* Δ is multiplied by ``delta_decay`` after every ``delta_decay_every``-th epoch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Mode = Literal["max", "min"]


@dataclass(frozen=True)
class ControllerConfig:
    """Every value of the schedule, filled by :class:`hatl.train.config.TrainConfig` from ``training.*``
    (the defaults, Table 4's values, are the schema's)."""

    release_order: tuple[int, ...]  # layer indices (1-based, L1 nearest the input) in release order
    mode: Mode  # "max" for BLEU-4, "min" for losses and WER
    warmup_epochs: int
    window: int
    patience_first: int
    patience_later: int
    delta: float  # Δ at epoch 1
    tau: float
    delta_decay: float
    delta_decay_every: int
    cooldown_epochs: int
    early_stop_patience: int
    min_improvement: float  # an epoch improves only if it beats the best by more than this
    max_epochs: int
    restore_before_release: bool

    def __post_init__(self) -> None:
        if self.mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', not {self.mode!r}")
        if len(set(self.release_order)) != len(self.release_order):
            raise ValueError(f"release_order repeats a layer: {list(self.release_order)}")
        for name in ("window", "patience_first", "patience_later", "delta_decay_every", "early_stop_patience", "max_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, not {getattr(self, name)}")


@dataclass
class ControllerState:
    delta: float
    history: list[float] = field(default_factory=list)
    best: float | None = None
    best_epoch: int = 0
    streak: int = 0
    cooldown_left: int = 0
    since_improvement: int = 0
    released: list[int] = field(default_factory=list)
    release_epochs: dict[int, int] = field(default_factory=dict)
    pending: int | None = None
    pending_reason: str = ""
    last_epoch: int = 0
    stop_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["release_epochs"] = {str(k): v for k, v in self.release_epochs.items()}  # JSON keys are strings
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ControllerState:
        data = dict(data)
        data["release_epochs"] = {int(k): int(v) for k, v in data.get("release_epochs", {}).items()}
        return cls(**data)


@dataclass
class EpochStart:
    """What the trainer must do before training epoch ``epoch`` (in this order)."""

    epoch: int
    restore_best: bool = False  # load the best checkpoint's weights
    release: int | None = None  # make this backbone layer trainable, then rebuild the optimizer
    in_cooldown: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class EpochEnd:
    epoch: int
    metric: float
    metric_avg: float
    delta: float  # Δ used for this epoch's decision (before any decay)
    tau: float
    improved: bool
    stop: bool
    stop_reason: str | None
    release_next: int | None  # a layer released at the start of the next epoch
    events: list[dict[str, Any]] = field(default_factory=list)


def moving_average(history: list[float], window: int) -> float:
    """M̄(e) = mean of the last ``window`` values (fewer at the start of training)."""
    tail = history[-window:]
    return sum(tail) / len(tail)


def is_better(value: float, best: float | None, mode: Mode, min_improvement: float = 0.0) -> bool:
    if best is None:
        return True
    return value > best + min_improvement if mode == "max" else value < best - min_improvement


class HatlController:
    def __init__(self, config: ControllerConfig, state: ControllerState | None = None) -> None:
        self.config = config
        self.state = state if state is not None else ControllerState(delta=config.delta)

    # -- queries -------------------------------------------------------------------------------
    @property
    def remaining(self) -> list[int]:
        return [m for m in self.config.release_order if m not in self.state.released]

    @property
    def stopped(self) -> bool:
        return self.state.stop_reason is not None

    def patience(self) -> int:
        """Table 4 fixes the patience of the first release only; later ones use ``patience_later``."""
        return self.config.patience_first if not self.state.released else self.config.patience_later

    # -- transitions ---------------------------------------------------------------------------
    def begin_epoch(self, epoch: int) -> EpochStart:
        st, cfg = self.state, self.config
        if epoch != st.last_epoch + 1:
            raise ValueError(f"epoch {epoch} does not follow epoch {st.last_epoch}")
        plan = EpochStart(epoch=epoch)
        if st.pending is not None:
            layer = st.pending
            if cfg.restore_before_release and st.best is not None:
                plan.restore_best = True
                plan.events.append({"type": "restore", "reason": f"best checkpoint of epoch {st.best_epoch} (metric {st.best:.6g}) before releasing L{layer}"})
            plan.release = layer
            plan.events.append({"type": "release", "layer": layer, "reason": st.pending_reason})
            st.released.append(layer)
            st.release_epochs[layer] = epoch
            st.pending, st.pending_reason = None, ""
            st.cooldown_left = cfg.cooldown_epochs
            # A new layer gets its own chance: early stopping counts again from the end of the cooldown.
            st.since_improvement = 0
            st.streak = 0
        if st.cooldown_left > 0:
            plan.in_cooldown = True
            done = cfg.cooldown_epochs - st.cooldown_left + 1
            plan.events.append({"type": "cooldown", "reason": f"cooldown epoch {done}/{cfg.cooldown_epochs} after releasing L{st.released[-1]}"})
        return plan

    def end_epoch(self, epoch: int, metric: float) -> EpochEnd:
        st, cfg = self.state, self.config
        if epoch != st.last_epoch + 1:
            raise ValueError(f"epoch {epoch} does not follow epoch {st.last_epoch}")
        st.last_epoch = epoch
        events: list[dict[str, Any]] = []
        st.history.append(float(metric))
        avg = moving_average(st.history, cfg.window)
        delta_used = st.delta
        improved = is_better(metric, st.best, cfg.mode, cfg.min_improvement)
        if improved:
            st.best, st.best_epoch = float(metric), epoch
            st.since_improvement = 0
            events.append({"type": "best", "reason": f"metric {metric:.6g}"})
        in_cooldown = st.cooldown_left > 0
        if in_cooldown:
            st.cooldown_left -= 1
        elif not improved:
            st.since_improvement += 1

        gap = abs(metric - avg)
        stable = len(st.history) >= cfg.window and gap <= st.delta and gap <= cfg.tau
        if epoch > cfg.warmup_epochs and not in_cooldown and self.remaining and st.pending is None:
            st.streak = st.streak + 1 if stable else 0
            if st.streak >= self.patience():
                st.pending = self.remaining[0]
                st.pending_reason = (
                    f"|M-M̄| <= Δ={st.delta:.6g} and <= τ={cfg.tau:.6g} for {st.streak} epochs (last |M-M̄|={gap:.6g})"
                )
                st.streak = 0

        if st.since_improvement >= cfg.early_stop_patience and st.pending is None:
            st.stop_reason = f"early_stopping: no improvement for {st.since_improvement} epochs after cooldown"
        elif epoch >= cfg.max_epochs:
            st.stop_reason = f"max_epochs: reached {cfg.max_epochs}"
        if st.stop_reason is not None:
            events.append({"type": "stop", "reason": st.stop_reason})

        if epoch % cfg.delta_decay_every == 0:
            st.delta *= cfg.delta_decay
        return EpochEnd(
            epoch=epoch, metric=float(metric), metric_avg=avg, delta=delta_used, tau=cfg.tau, improved=improved,
            stop=st.stop_reason is not None, stop_reason=st.stop_reason, release_next=st.pending, events=events,
        )


def default_release_order(n_layers: int, order: str | list[int]) -> tuple[int, ...]:
    """``top_down`` (Ln first: nearest the translator), ``bottom_up`` (L1 first) or an explicit list."""
    if isinstance(order, str):
        if order == "top_down":
            return tuple(range(n_layers, 0, -1))
        if order == "bottom_up":
            return tuple(range(1, n_layers + 1))
        raise ValueError(f"release_order must be top_down, bottom_up or a list of layer indices, not {order!r}")
    bad = [m for m in order if not 1 <= m <= n_layers]
    if bad:
        raise ValueError(f"release_order names layers {bad} outside L1..L{n_layers}")
    return tuple(int(m) for m in order)
