"""Which torch device a stage runs on: shared by training (``training.device``) and backbone pretraining
(``backbone.pretrain.supervised.device``), so the two read the same three values the same way."""

from __future__ import annotations

import torch

from hatl.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str, key: str = "training.device") -> torch.device:
    """``key``'s value: "auto" (CUDA when torch sees one, else CPU), "cpu" or "cuda"; "cuda" without a visible GPU is
    an error that names ``key``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{key} is 'cuda' but no CUDA device is available")
    return torch.device(name)
