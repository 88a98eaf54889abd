"""Sinusoidal positions (Vaswani et al. 2017), shared by both translators' encoders and the text decoder."""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_table(length: int, dim: int) -> torch.Tensor:
    """(length, dim) table: even channels sin, odd channels cos, wavelengths from 2*pi to 10000*2*pi."""
    if dim % 2:
        raise ValueError(f"sinusoidal positions need an even model dimension, got {dim}")
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq)
    return table


class SinusoidalPositions(nn.Module):
    """Adds sinusoidal positions to (B, T, D) inputs.

    The table is a non-persistent buffer (it is a pure function of the shape, so checkpoints need not
    carry it) and grows on demand, so no maximum length is baked into a trained model.
    """

    def __init__(self, dim: int, initial_length: int = 512) -> None:
        super().__init__()
        self.dim = dim
        self.register_buffer("table", sinusoidal_table(initial_length, dim), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[1]
        if length > self.table.shape[0]:
            self.table = sinusoidal_table(max(length, 2 * self.table.shape[0]), self.dim).to(self.table.device)
        return x + self.table[:length].to(x.dtype)
