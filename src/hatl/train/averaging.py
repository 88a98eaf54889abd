"""Checkpoint averaging: the element-wise mean of the weights of several epochs of one run.

``training.average_checkpoints: {last: K}`` averages the weights at the end of the last K epochs,
``{best: K}`` those of the K evaluated epochs with the best dev metric. Averaging the end points of the
last epochs of a decaying learning rate smooths the noise of the final updates (a cheap stand-in for an
ensemble: Vaswani et al. 2017 average the last checkpoints; Popel & Bojar 2018, section 4.9).

The candidate weights live on disk, one file per epoch in ``<resume dir>/averaging/``, never in memory, and
the pool's index (which epochs, their dev metric) is part of the resume state. A file is written before
the resume state that names it, and files the index no longer names are deleted only after that state is
saved (:meth:`CheckpointPool.prune`), so a kill at any moment leaves every file the saved state names: a
resumed run averages exactly the weights an uninterrupted one does (it recomputes, bit for bit, the epoch
whose file a kill may have left behind and overwrites it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from hatl.errors import ConfigError, HatlError
from hatl.io import atomic_path

Selection = Literal["last", "best"]
SELECTIONS: tuple[str, ...] = ("last", "best")
POOL_DIR = "averaging"


@dataclass(frozen=True)
class AveragingConfig:
    """Which epochs to average: the last ``count`` ones, or the ``count`` best by the dev metric."""

    selection: Selection
    count: int

    @classmethod
    def from_config(cls, section: Mapping[str, int] | None) -> AveragingConfig | None:
        """``training.average_checkpoints`` (``{last: K}``, ``{best: K}`` or null = no averaging)."""
        if not section:
            return None
        if len(section) != 1 or next(iter(section)) not in SELECTIONS:
            raise ConfigError(f"training.average_checkpoints must be {{last: K}} or {{best: K}}, not {dict(section)}")
        selection, count = next(iter(section.items()))
        if int(count) < 1:
            raise ConfigError(f"training.average_checkpoints.{selection} must be >= 1, not {count}")
        return cls(selection=selection, count=int(count))  # type: ignore[arg-type]

    def label(self) -> str:
        return f"{self.selection} {self.count}"


def average_state_dicts(states: Iterable[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of floating-point tensors (summed in float64, returned in their own dtype).

    Integer tensors (e.g. batch norm's ``num_batches_tracked``) are counters, not weights: the last state's
    value is kept. Every state must have the same keys and shapes. ``states`` is read once, in order, and only
    the running sums are kept, so a generator that loads one checkpoint at a time holds one state in memory.
    """
    first: dict[str, tuple[torch.Size, torch.dtype]] | None = None
    totals: dict[str, torch.Tensor] = {}
    last: Mapping[str, torch.Tensor] = {}
    count = 0
    for count, state in enumerate(states, start=1):
        if first is None:
            first = {key: (value.shape, value.dtype) for key, value in state.items()}
        elif state.keys() != first.keys():
            diff = sorted(set(state.keys()) ^ set(first.keys()))
            raise ValueError(f"state dict {count} has other keys than state dict 1: {diff[:5]}")
        elif bad := [k for k in first if state[k].shape != first[k][0]]:
            raise ValueError(f"state dict {count}: shapes differ from state dict 1 for {bad[:5]}")
        for key, value in state.items():
            if first[key][1].is_floating_point:  # the first state's dtype decides, as its dtype is what is returned
                total = totals.setdefault(key, torch.zeros(value.shape, dtype=torch.float64))
                total += value.to(torch.float64)
        last = state
    if first is None:
        raise ValueError("nothing to average: no state dicts")
    return {key: (totals[key] / count).to(dtype) if key in totals else last[key].clone()
            for key, (_, dtype) in first.items()}


@dataclass
class PoolEntry:
    epoch: int
    metric: float | None  # the epoch's dev metric (None: an epoch without dev evaluation)


@dataclass
class CheckpointPool:
    """The epochs kept for averaging and their weight files in ``folder``."""

    config: AveragingConfig
    folder: Path
    mode: Literal["max", "min"]  # how the dev metric ranks ("max" for BLEU-4)
    entries: list[PoolEntry] = field(default_factory=list)

    def path(self, epoch: int) -> Path:
        return self.folder / f"epoch{epoch:04d}.pt"

    def _rank_key(self, entry: PoolEntry) -> tuple[float, int]:
        """Best first; among equal metrics the later epoch (further down the decay) wins."""
        value = entry.metric if self.mode == "max" else -entry.metric  # type: ignore[operator]
        return (-value, -entry.epoch)

    def offer(self, epoch: int, metric: float | None, state: Mapping[str, torch.Tensor]) -> bool:
        """Consider the weights at the end of ``epoch``; write them if the pool keeps them. True if kept."""
        if self.config.selection == "best" and metric is None:
            return False  # ranked by the dev metric: an unevaluated epoch cannot be placed
        candidate = PoolEntry(epoch, None if metric is None else float(metric))
        entries = [e for e in self.entries if e.epoch != epoch] + [candidate]
        if self.config.selection == "last":
            entries = sorted(entries, key=lambda e: e.epoch)[-self.config.count:]
        else:
            entries = sorted(entries, key=self._rank_key)[: self.config.count]
        if candidate not in entries:
            return False
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path(epoch)) as tmp:
            torch.save(dict(state), tmp)
        self.entries = sorted(entries, key=lambda e: e.epoch)
        return True

    def prune(self) -> list[Path]:
        """Delete weight files the index no longer names (call only after the resume state is saved)."""
        if not self.folder.is_dir():
            return []
        keep = {self.path(e.epoch).name for e in self.entries}
        removed = [p for p in sorted(self.folder.glob("epoch*.pt")) if p.name not in keep]
        for path in removed:
            path.unlink()
        return removed

    def epochs(self) -> list[int]:
        return [e.epoch for e in self.entries]

    def average(self) -> dict[str, torch.Tensor]:
        """The mean of the kept weights, read one file at a time (one epoch's weights in memory, not K)."""
        if not self.entries:
            raise HatlError(f"checkpoint averaging ({self.config.label()}): no epoch was kept in {self.folder}")
        return average_state_dicts(self._load_each())

    def _load_each(self) -> Iterator[dict[str, torch.Tensor]]:
        for entry in self.entries:
            path = self.path(entry.epoch)
            if not path.exists():
                raise HatlError(f"{path}: the weights of epoch {entry.epoch}, named by the resume state, are missing; "
                                "delete the resume folder to train the run afresh")
            yield torch.load(path, map_location="cpu", weights_only=True)

    def to_dict(self) -> dict[str, Any]:
        return {"selection": self.config.selection, "count": self.config.count,
                "entries": [[e.epoch, e.metric] for e in self.entries]}

    def load(self, data: Mapping[str, Any] | None) -> None:
        """Restore the index from a resume state (a state from before averaging was on has none)."""
        self.entries = [PoolEntry(int(epoch), None if metric is None else float(metric))
                        for epoch, metric in (data or {}).get("entries", [])]
