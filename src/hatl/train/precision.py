"""Numeric precision of training on CUDA: ``training.precision`` (bf16 autocast or full fp32).

The trainer asks :func:`configure_precision` once, after choosing its device, whether to wrap forward
passes in ``torch.autocast(device_type="cuda", dtype=torch.bfloat16)``:

* ``bf16`` (default): matmuls and convolutions in bfloat16 with float32 weights and optimizer state. No loss
  scaling is needed: bfloat16 has float32's exponent range. A GPU without native bfloat16 (before Ampere)
  emulates it slowly, so there the run falls back to fp32 and says so.
* ``fp32``: no autocast and no TF32 either (torch lets cuDNN convolutions use TF32 by default, which keeps
  only 10 mantissa bits): a reference run, e.g. to check that bf16 does not change the result.

The CPU always trains in float32 whatever the setting. Whether bf16 autocast would be faster there depends on
the CPU (with native bfloat16 instructions, AVX512-BF16 or AMX, it can be; without them it is slower), but it
would change every CPU result: the bit-for-bit outputs the tests pin and the fp32 figures in docs/validation.md.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import torch

from hatl.errors import ConfigError

log = logging.getLogger(__name__)

PRECISIONS = ("bf16", "fp32")
DEFAULT_PRECISION = "bf16"


def precision_from_config(config: Mapping[str, Any]) -> str:
    """``training.precision`` checked (``bf16`` when absent)."""
    value = str(((config.get("training") or {}).get("precision")) or DEFAULT_PRECISION)
    if value not in PRECISIONS:
        raise ConfigError(f"training.precision must be one of {PRECISIONS}, not {value!r}")
    return value


def bf16_native(device: torch.device) -> bool:
    """Whether ``device`` is a GPU with native bfloat16 arithmetic (compute capability 8.0 or newer)."""
    if device.type != "cuda" or not torch.cuda.is_available():
        return False
    major, _minor = torch.cuda.get_device_capability(device)
    return major >= 8


def bf16_autocast_wanted(precision: str, device: torch.device, native: bool) -> bool:
    """The decision alone (no torch state touched), so it is testable without a GPU."""
    if precision not in PRECISIONS:
        raise ConfigError(f"training.precision must be one of {PRECISIONS}, not {precision!r}")
    return precision == "bf16" and device.type == "cuda" and native


def configure_precision(config: Mapping[str, Any], device: torch.device) -> bool:
    """Apply ``training.precision`` for a run on ``device``; returns True when forwards use bf16 autocast.

    For ``fp32`` on CUDA it also turns TF32 off (process-wide; a training process runs one training).
    """
    precision = precision_from_config(config)
    if device.type != "cuda":
        return False
    native = bf16_native(device)
    if precision == "bf16" and not native:
        log.warning("training.precision is bf16 but %s has no native bfloat16 (compute capability < 8.0): "
                    "training in fp32", torch.cuda.get_device_name(device))
    if precision == "fp32":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    use = bf16_autocast_wanted(precision, device, native)
    log.info("precision on %s: %s", device, "bf16 autocast" if use else "fp32 (TF32 off)" if precision == "fp32" else "fp32")
    return use


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """The context the trainer runs forwards in: bf16 autocast on CUDA when ``enabled``, else nothing."""
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


__all__ = ["PRECISIONS", "precision_from_config", "bf16_native", "bf16_autocast_wanted", "configure_precision", "autocast"]
