"""Batches for training and dev evaluation, with what a frozen backbone computes cached once per split.

Two caches, both computed in eval mode without autograd and exactly what each sample gets alone:

* the whole backbone is frozen (classical, and HATL before its first release): the per-frame backbone
  features of every sample (``training.cache_frozen_features``);
* layers L1..Lk are frozen below the lowest trainable layer (HATL after a top-down release): the output
  of L1..Lk, so a training step runs only L(k+1)..Ln, the part that learns (``training.cache_frozen_prefix``,
  skipped when it would exceed ``training.cache_max_mb``).

Every change of the trainable set drops both caches.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from hatl import batches as D
from hatl.models.slt import downsampled_lengths, pool_backbone_output
from hatl.models.transformer import lengths_to_mask

log = logging.getLogger(__name__)


class FeatureCache:
    """Builds the batch dicts of the ``train`` and ``dev`` splits on ``device``, from the caches when they apply."""

    def __init__(self, model: nn.Module, layers: Sequence[nn.Module], splits: dict[str, D.SplitData], device: torch.device,
                 autocast: Callable[[], contextlib.AbstractContextManager], *, frozen_features: bool, frozen_prefix: bool,
                 max_mb: int, group_size: int) -> None:
        self.model, self.layers, self.splits, self.device, self.autocast = model, list(layers), splits, device, autocast
        self.cache_features, self.cache_prefix, self.max_mb, self.group_size = frozen_features, frozen_prefix, max_mb, group_size
        self.trainable: tuple[int, ...] = ()
        self.features: dict[str, list[torch.Tensor] | None] = {"train": None, "dev": None}
        self.prefixes: dict[str, list[torch.Tensor] | None] = {"train": None, "dev": None}
        self.prefix_too_big: set[int] = set()  # prefix depths whose cache would exceed max_mb

    def set_trainable(self, trainable: Sequence[int]) -> None:
        """The trainable backbone layers changed (a release, a resume): what was cached may be stale."""
        if tuple(trainable) != self.trainable:
            self.trainable = tuple(trainable)
            self.features = {"train": None, "dev": None}  # the backbone may no longer be frozen
            self.prefixes = {"train": None, "dev": None}  # the frozen prefix may be shorter

    def use_features(self) -> bool:
        return self.cache_features and len(self.layers) > 0 and not self.trainable

    def frozen_prefix(self) -> int:
        """k such that L1..Lk are frozen below the lowest trainable layer (0 = none / no prefix cache)."""
        if not self.cache_prefix or not self.trainable or not self.layers:
            return 0
        k = min(self.trainable) - 1
        return 0 if k in self.prefix_too_big else k

    def cached_layers(self) -> int:
        """How many backbone layers the training batches currently skip (for the log)."""
        if self.use_features():
            return len(self.layers)
        return self.frozen_prefix() if self.prefixes["train"] is not None else 0

    # -- the batch --------------------------------------------------------------------------------
    def make_batch(self, name: str, idxs: Sequence[int], pad_like: Sequence[int] = ()) -> dict[str, Any]:
        """The batch of samples ``idxs`` of split ``name``; ``pad_like`` (a DDP shard's global batch) sets the padded widths."""
        split = self.splits[name]
        batch = D.collate([split.samples[i] for i in idxs], [split.samples[i] for i in pad_like] or None)
        non_blocking = self.device.type == "cuda"
        k = self.frozen_prefix()
        cache = self._prefix_cache(name, k) if k else None
        if cache is not None:
            acts = [cache[i] for i in idxs]
            t_max = max(cache[i].shape[1] for i in [*idxs, *pad_like])
            padded = acts[0].new_zeros((len(acts), acts[0].shape[0], t_max, acts[0].shape[2]))
            for row, a in enumerate(acts):
                padded[row, :, : a.shape[1]] = a
            batch = D.to_device(batch, self.device, non_blocking=non_blocking)
            acts_dev = padded.to(self.device, non_blocking=non_blocking)
            lengths = batch["frame_mask"].sum(1)
            # Built here, inside the caller's autograd/autocast context, so released layers get gradients.
            with self.autocast():
                batch["backbone_features"], batch["backbone_mask"] = self.suffix_features(acts_dev, lengths, k)
            return batch
        if self.use_features():
            features = self._feature_cache(name)
            feats = [features[i] for i in idxs]
            t_max = max(features[i].shape[0] for i in [*idxs, *pad_like])
            padded = feats[0].new_zeros((len(feats), t_max, feats[0].shape[1]))
            mask = torch.zeros((len(feats), t_max), dtype=torch.bool, device=padded.device)
            for row, f in enumerate(feats):
                padded[row, : f.shape[0]] = f
                mask[row, : f.shape[0]] = True
            batch["backbone_features"], batch["backbone_mask"] = padded, mask
        return D.to_device(batch, self.device, non_blocking=non_blocking)

    def suffix_features(self, acts: torch.Tensor, lengths: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Run L(k+1)..Ln on cached L1..Lk outputs (B, C, T_k, V) → the backbone features and their mask,
        pooled exactly as ``SLTModel.backbone_features`` pools the backbone's output."""
        x = acts
        for layer in self.layers[k:]:
            x = layer(x)
        feats = pool_backbone_output(x.unsqueeze(1))  # (B, M=1, C, T', V) -> (B, T', C)
        out_len = downsampled_lengths(lengths).clamp(max=feats.shape[1])
        return feats, lengths_to_mask(out_len, feats.shape[1])

    # -- the caches -------------------------------------------------------------------------------
    def _same_length_groups(self, split: D.SplitData) -> list[list[int]]:
        """Sample indices grouped by frame count (chunks of group_size): batched cache passes need no
        padding, so every sample's cached output is what it gets alone."""
        by_len: dict[int, list[int]] = {}
        for i, s in enumerate(split.samples):
            by_len.setdefault(s.n_frames, []).append(i)
        size = self.group_size
        return [group[j : j + size] for _, group in sorted(by_len.items()) for j in range(0, len(group), size)]

    def _keypoints(self, split: D.SplitData, idxs: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        kp = torch.from_numpy(np.stack([split.samples[i].keypoints for i in idxs])).to(self.device)
        return kp, torch.ones(kp.shape[:2], dtype=torch.bool, device=self.device)

    def _feature_cache(self, name: str) -> list[torch.Tensor]:
        """Per-sample backbone features of a frozen backbone (eval mode), computed once per split."""
        cache = self.features[name]
        if cache is not None:
            return cache
        split = self.splits[name]
        was_training = self.model.training
        self.model.eval()
        cache = [torch.empty(0)] * len(split.samples)
        with torch.no_grad(), self.autocast():
            for idxs in self._same_length_groups(split):
                feats, fmask = self.model.backbone_features(*self._keypoints(split, idxs))
                for row, i in enumerate(idxs):
                    cache[i] = feats[row, : int(fmask[row].sum())].float().clone()
        self.model.train(was_training)
        self.features[name] = cache
        log.info("cached frozen-backbone features for %d %s samples", len(cache), name)
        return cache

    def _prefix_cache(self, name: str, k: int) -> list[torch.Tensor] | None:
        """Per-sample outputs (C, T_k, V) of frozen layers L1..Lk, or None when they would not fit the cap."""
        cache = self.prefixes[name]
        if cache is not None:
            return cache
        split = self.splits[name]
        last = self.layers[k - 1]
        hooked = list(last)[-1] if isinstance(last, nn.ModuleList) else last  # L1 is a view [data_bn, block 0]
        captured: list[torch.Tensor] = []
        handle = hooked.register_forward_hook(lambda _m, _i, out: captured.append(out))
        was_training = self.model.training
        self.model.eval()
        cache = [torch.empty(0)] * len(split.samples)
        total_frames = sum(split.lengths())
        try:
            with torch.no_grad(), self.autocast():
                for g, idxs in enumerate(self._same_length_groups(split)):
                    kp, mask = self._keypoints(split, idxs)
                    self.model.backbone_features(kp, mask)
                    acts = captured.pop()
                    for row, i in enumerate(idxs):
                        cache[i] = acts[row].float().clone()
                    if g == 0:
                        estimate_mb = acts[0].numel() * 4 / kp.shape[1] * total_frames / 2**20
                        if estimate_mb > self.max_mb:
                            log.info("not caching frozen L1..L%d for %s: ~%.0f MB > training.cache_max_mb=%d",
                                     k, name, estimate_mb, self.max_mb)
                            self.prefix_too_big.add(k)
                            return None
        finally:
            handle.remove()
            self.model.train(was_training)
        self.prefixes[name] = cache
        log.info("cached outputs of frozen L1..L%d for %d %s samples", k, len(cache), name)
        return cache
