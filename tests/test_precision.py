"""training.precision: the bf16-or-fp32 decision, testable without a GPU (the CUDA behaviour is in test_gpu.py)."""

from __future__ import annotations

import contextlib

import pytest
import torch

from hatl.errors import ConfigError
from hatl.train.precision import autocast, bf16_autocast_wanted, configure_precision, precision_from_config

CUDA = torch.device("cuda", 0)
CPU = torch.device("cpu")


def test_precision_defaults_to_bf16_and_refuses_unknown_values():
    assert precision_from_config({}) == "bf16"
    assert precision_from_config({"training": None}) == "bf16"
    assert precision_from_config({"training": {"precision": "fp32"}}) == "fp32"
    with pytest.raises(ConfigError, match="training.precision must be one of"):
        precision_from_config({"training": {"precision": "fp16"}})


def test_bf16_autocast_only_on_a_cuda_device_with_native_bf16():
    assert bf16_autocast_wanted("bf16", CUDA, native=True)
    assert not bf16_autocast_wanted("bf16", CUDA, native=False)  # pre-Ampere GPUs: fp32, with a warning
    assert not bf16_autocast_wanted("fp32", CUDA, native=True)
    assert not bf16_autocast_wanted("bf16", CPU, native=True)  # the CPU always trains in fp32
    with pytest.raises(ConfigError):
        bf16_autocast_wanted("half", CUDA, native=True)


def test_cpu_runs_never_autocast_and_leave_tf32_alone():
    before = torch.backends.cudnn.allow_tf32
    assert configure_precision({"training": {"precision": "bf16"}}, CPU) is False
    assert configure_precision({"training": {"precision": "fp32"}}, CPU) is False
    assert torch.backends.cudnn.allow_tf32 == before
    with pytest.raises(ConfigError):
        configure_precision({"training": {"precision": "bogus"}}, CPU)  # checked on every device
    assert isinstance(autocast(CPU, True), contextlib.nullcontext)
    assert isinstance(autocast(CUDA, False), contextlib.nullcontext)


def test_schema_accepts_both_values_and_rejects_others():
    import copy
    from pathlib import Path

    import yaml

    from hatl.config import validate_config

    base = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text(encoding="utf-8"))
    for value in ("bf16", "fp32"):
        cfg = copy.deepcopy(base)
        cfg["training"]["precision"] = value
        assert validate_config(cfg)["training"]["precision"] == value
    cfg = copy.deepcopy(base)
    cfg["training"]["precision"] = "fp16"
    with pytest.raises(ConfigError, match="precision"):
        validate_config(cfg)
    assert validate_config(copy.deepcopy(base))["training"]["precision"] == "bf16"  # the schema's default
