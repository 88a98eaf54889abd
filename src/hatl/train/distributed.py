"""Multi-process training (torchrun / DistributedDataParallel) as small, separately testable pieces.

The design goal is that N processes with a global batch of ``training.batch_size`` follow the same
trajectory as one process with that batch (up to floating-point summation order):

* every rank builds the same epoch batch list (a function of seed and epoch) and takes a contiguous
  shard of each global batch (:func:`shard`), padded to the *global* batch's widths so that temporal
  convolutions and batch-norm statistics see exactly the tensors the single process would;
* each loss term is a mean over its own unit (text tokens, usable CTC rows, labelled frames); a rank's
  term is rescaled by its share of the global count (:func:`term_scales`), so the gradient DDP averages
  is the gradient of the global-batch loss, not the mean of per-rank means;
* batch-norm layers that train see statistics over the whole global batch (:class:`GlobalStatsBatchNorm`),
  as they would in one process;
* rank 0 evaluates and writes; every decision is taken from values all ranks received.

A run without ``WORLD_SIZE`` (or with ``WORLD_SIZE=1``) never touches torch.distributed.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hatl.errors import ConfigError

log = logging.getLogger(__name__)

BACKENDS = ("auto", "nccl", "gloo")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the job: rank 0 of 1 for an ordinary run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@dataclass(frozen=True)
class DDPConfig:
    """The ``training.ddp`` section (config/README.md), from a config filled with the schema's defaults."""

    backend: str
    timeout_min: int
    sync_batchnorm: bool

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DDPConfig:
        section = config["training"]["ddp"]
        backend = str(section["backend"])
        if backend not in BACKENDS:
            raise ConfigError(f"training.ddp.backend must be one of {BACKENDS}, not {backend!r}")
        return cls(backend=backend, timeout_min=int(section["timeout_min"]), sync_batchnorm=bool(section["sync_batchnorm"]))


def context_from_env(env: dict[str, str] | None = None) -> DistContext:
    """The torchrun variables (RANK, WORLD_SIZE, LOCAL_RANK); absent → a single process."""
    env = dict(os.environ if env is None else env)
    try:
        world = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        local = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError as err:
        raise ConfigError(f"torchrun environment is not numeric: {err}") from err
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"torchrun environment is inconsistent: RANK={rank}, WORLD_SIZE={world}")
    return DistContext(rank=rank, world_size=world, local_rank=local)


def pick_backend(requested: str, device: torch.device) -> str:
    """nccl for CUDA, gloo for CPU (nccl cannot carry CPU tensors)."""
    if requested == "auto":
        return "nccl" if device.type == "cuda" else "gloo"
    if requested == "nccl" and device.type != "cuda":
        raise ConfigError("training.ddp.backend is nccl but training runs on the CPU; use gloo or auto")
    return requested


def init_process_group(ctx: DistContext, backend: str, timeout_min: int) -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        return
    # Rank 0 evaluates the dev set while the others wait in a broadcast: the timeout must cover an evaluation.
    dist.init_process_group(backend=backend, rank=ctx.rank, world_size=ctx.world_size,
                            timeout=datetime.timedelta(minutes=timeout_min))
    log.info("torch.distributed: rank %d of %d (local rank %d), backend %s", ctx.rank, ctx.world_size, ctx.local_rank, backend)


def destroy_process_group() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


# ---------------------------------------------------------------------------------------------- batches
def shard(indices: Sequence[int], rank: int, world_size: int) -> list[int]:
    """Rank ``rank``'s contiguous share of one global batch: sizes differ by at most one, earlier ranks
    take the extra samples (so rank 0 is never empty); a batch smaller than the world leaves some empty."""
    n = len(indices)
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    return list(indices[start : start + base + (1 if rank < extra else 0)])


def term_scales(local: Sequence[float], global_: Sequence[float], world_size: int) -> list[float]:
    """Per-term factors that turn a rank's mean loss into its share of the global mean, times the world
    size (DDP divides the summed gradient by it): W · n_local / n_global, 0 where the term has no unit."""
    return [world_size * lo / gl if gl > 0 else 0.0 for lo, gl in zip(local, global_)]


# ---------------------------------------------------------------------------------------------- batch norm
class GlobalStatsBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm whose training statistics are the global batch's (all ranks' shards together).

    Forward: mean and variance from all-reduced float64 sums (two passes, like torch's CPU kernel);
    backward: the two per-channel reductions the input gradient needs (Σdy, Σdy·(x−μ)) are all-reduced
    too, so every rank gets the gradient the single process would compute for its rows (torch's
    SyncBatchNorm does the same, but on CUDA only). Weight and bias gradients stay local: DDP averages
    them. In eval mode, or without a process group, it is plain batch norm. Instances are converted in
    place (:func:`globalise_batchnorm`) so the layer views of ``backbone.layers()`` and the optimizer keep
    pointing at the same modules.
    """

    group: Any = None
    sync_tag: float = 0.0  # the layer's position in the model: the same on every rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        weight = self.weight if self.affine else None
        bias = self.bias if self.affine else None
        y, mean, var, count = _GlobalBatchNorm.apply(x, weight, bias, self.eps, self.group, self.sync_tag)
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)  # type: ignore[union-attr,operator]
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var * (count / (count - 1.0).clamp_min(1.0))
                self.running_mean.mul_(1 - m).add_(mean.to(self.running_mean.dtype), alpha=m)
                self.running_var.mul_(1 - m).add_(unbiased.to(self.running_var.dtype), alpha=m)
        return y


class _GlobalBatchNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float,
                group: Any, tag: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        dims = [0, *range(2, x.dim())]
        c = x.shape[1]
        shape = [1, c] + [1] * (x.dim() - 2)
        xd = x.double()
        first = _tagged_sum(torch.cat([xd.sum(dims), xd.new_full((1,), float(x.numel() // c))]), group, tag)
        count = first[-1:]  # a tensor: no device-to-host copy (a GPU sync) per layer
        mean = first[:c] / count
        centred = xd - mean.view(shape)
        var = _tagged_sum((centred * centred).sum(dims), group, tag) / count  # biased: what normalisation uses
        invstd = torch.rsqrt(var + eps)
        y = (centred * invstd.view(shape)).to(torch.float32)
        if weight is not None:
            y = y * weight.float().view(shape) + bias.float().view(shape)  # type: ignore[union-attr]
        ctx.save_for_backward(x, weight, mean, invstd, count)
        ctx.group, ctx.tag = group, tag
        ctx.mark_non_differentiable(mean, var, count)
        return y.to(x.dtype), mean.float(), var.float(), count.float()

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor, *_: Any) -> tuple[Any, ...]:
        x, weight, mean, invstd, count = ctx.saved_tensors
        dims = [0, *range(2, x.dim())]
        c = x.shape[1]
        shape = [1, c] + [1] * (x.dim() - 2)
        dyd = dy.double()
        xhat = (x.double() - mean.view(shape)) * invstd.view(shape)
        local_dy, local_dy_xhat = dyd.sum(dims), (dyd * xhat).sum(dims)
        both = _tagged_sum(torch.cat([local_dy, local_dy_xhat]), ctx.group, ctx.tag)
        g_dy, g_dy_xhat = both[:c] / count, both[c:] / count
        w = weight.double().view(shape) if weight is not None else 1.0
        dx = (dyd - g_dy.view(shape) - xhat * g_dy_xhat.view(shape)) * invstd.view(shape) * w
        grad_w = local_dy_xhat.to(weight.dtype) if weight is not None and ctx.needs_input_grad[1] else None
        grad_b = local_dy.to(weight.dtype) if weight is not None and ctx.needs_input_grad[2] else None
        return dx.to(x.dtype), grad_w, grad_b, None, None, None


def _tagged_sum(tensor: torch.Tensor, group: Any, tag: float) -> torch.Tensor:
    """all_reduce(SUM) of a copy. A tag (the layer's position) travels with the values: a collective
    paired with another layer's on another rank (same size, wrong partner) would otherwise mix
    statistics silently."""
    import torch.distributed as dist

    buf = torch.cat([tensor.detach().reshape(-1), tensor.new_full((1,), tag)])
    dist.all_reduce(buf, op=dist.ReduceOp.SUM, group=group)
    # Checked on CPU only: reading the tag of a CUDA tensor would stall the GPU at every layer.
    if buf.device.type == "cpu" and float(buf[-1]) != tag * dist.get_world_size(group):
        raise RuntimeError(f"batch-norm statistics all-reduce paired different layers across ranks (tag {tag})")
    return buf[:-1].reshape(tensor.shape)


def globalise_batchnorm(module: nn.Module, group: Any = None) -> int:
    """Turn every BatchNorm1d/2d/3d inside ``module`` into :class:`GlobalStatsBatchNorm` in place; returns
    how many. The class is swapped on the live object (same parameters, buffers, state-dict keys)."""
    converted = 0
    for sub in module.modules():
        if isinstance(sub, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)) and not isinstance(sub, GlobalStatsBatchNorm):
            base = type(sub)
            if base not in _GLOBAL_CLASSES:
                _GLOBAL_CLASSES[base] = type(f"GlobalStats{base.__name__}", (GlobalStatsBatchNorm, base), {})
            sub.__class__ = _GLOBAL_CLASSES[base]
            sub.group = group
            converted += 1
            sub.sync_tag = float(converted)
    return converted


_GLOBAL_CLASSES: dict[type, type] = {}


# ---------------------------------------------------------------------------------------------- collectives
def all_reduce_sum(values: Sequence[float]) -> list[float]:
    """Sum a few numbers over ranks (float64 on CPU; gloo and nccl's CPU fallback are not needed for this)."""
    import torch.distributed as dist

    t = torch.tensor(list(values), dtype=torch.float64, device=_collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.cpu().tolist()


def reduce_sums(sums: dict[str, float], ctx: DistContext) -> dict[str, float]:
    """Running sums added over all ranks (the same dict for a single process)."""
    if not ctx.enabled:
        return sums
    keys = sorted(sums)
    return dict(zip(keys, all_reduce_sum([float(sums[k]) for k in keys])))


def broadcast_object(obj: Any, src: int = 0) -> Any:
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=src, device=_collective_device())
    return box[0]


def gather_objects(obj: Any) -> list[Any]:
    import torch.distributed as dist

    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()


def _collective_device() -> torch.device:
    import torch.distributed as dist

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


# ---------------------------------------------------------------------------------------------- launching
def relaunch_command(args: argparse.Namespace, nproc: int, skip: Sequence[str] = ("nproc",)) -> list[str]:
    """``python -m torch.distributed.run --standalone --nproc_per_node N -m hatl.cli train <same flags>``.

    The flags are rebuilt from the parsed namespace (attribute ``foo_bar`` → ``--foo-bar``), so the child
    processes see exactly the options the parent was given, minus ``--nproc``.
    """
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", f"--nproc_per_node={nproc}",
            "-m", "hatl.cli", "train"]
    for name, value in vars(args).items():
        if name in skip or value is None:
            continue
        argv += [f"--{name.replace('_', '-')}", str(value)]
    return argv


__all__ = [
    "DistContext", "DDPConfig", "context_from_env", "pick_backend", "init_process_group", "destroy_process_group",
    "shard", "term_scales", "GlobalStatsBatchNorm", "globalise_batchnorm", "all_reduce_sum", "reduce_sums", "broadcast_object",
    "gather_objects", "barrier", "relaunch_command",
]
