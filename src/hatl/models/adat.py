"""ADAT, the adaptive time-series-aware transformer (Shahin & Ismail), as a translator encoder.

Each encoder layer splits the D channels in two halves (facts: /work/shared/notes/adat-facts.md):
- local half: a temporal Conv1d (kernel 3, same padding) for short, fine motion;
- global half: LogSparse self-attention, where position p sees only {p, p-1, p-2, p-4, p-8, ...}
  (causal and log-spaced), plus the time-average of the values tiled over time; the two are fused by a
  per-time-step sigmoid gate g: g*attn + (1-g)*gap;
- concat(local, gated) -> Linear(D) -> residual -> LayerNorm.
Differences from the released TensorFlow code, on purpose: the attention weights multiply the VALUES
(the release multiplies them with the keys), all positions are computed at once by gathering the
log-spaced keys with an index tensor instead of a float16 per-position loop, and padding is masked
out of the attention, the average and the convolution. The decoder is the standard one
(hatl.models.transformer.TextDecoder).

Cost per layer: O(T * K * D) with K ~ 1 + log2(T) offsets, i.e. O(T log T), against the Transformer's
O(T^2 * D) attention.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from hatl.models.transformer import TranslatorConfig


def log_sparse_offsets(length: int) -> torch.Tensor:
    """Offsets 0, 1, 2, 4, ..., 2^j with 2^j <= length - 1: every past distance some position can use.

    There are K = 1 + ceil(log2(T)) of them (T >= 2). This equals 1 + floor(log2(T)) only when T is a power
    of two; otherwise the last positions can still reach back 2^floor(log2(T)) steps (e.g. T = 10: position
    9 sees position 1), so that offset is kept rather than silently dropped.
    """
    offsets = [0]
    step = 1
    while step <= length - 1:
        offsets.append(step)
        step *= 2
    return torch.tensor(offsets, dtype=torch.long)


def log_sparse_index(length: int, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Key positions (T, K) that each query position attends to, and a (T, K) bool: True where the key exists.

    index[p, k] = p - offsets[k], clamped to 0 where it would fall before the sequence (those entries are
    marked invalid, so the clamp only keeps the gather in range).
    """
    offsets = log_sparse_offsets(length).to(device)
    positions = torch.arange(length, device=device).unsqueeze(1)
    index = positions - offsets.unsqueeze(0)
    valid = index >= 0
    return index.clamp_min(0), valid


def masked_time_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of (B, T, C) over the real time steps only -> (B, 1, C)."""
    weights = mask.unsqueeze(-1).to(x.dtype)
    return (x * weights).sum(1, keepdim=True) / weights.sum(1, keepdim=True).clamp_min(1.0)


class LogSparseAttention(nn.Module):
    """Single-head causal attention over log-spaced past positions, as in the released ADAT encoder.

    q and k are projections of the half-width input to the full width D (no bias), v is the input half
    itself, scores are scaled by sqrt(D / 4) (the released constant), and the result is projected back to
    D / 2. Returns (output, weights) with weights (B, T, K) so tests and analysis can inspect them.
    """

    def __init__(self, hidden: int) -> None:
        super().__init__()
        half = hidden // 2
        self.query = nn.Linear(half, hidden, bias=False)
        self.key = nn.Linear(half, hidden, bias=False)
        self.out = nn.Linear(half, half)
        self.scale = math.sqrt(hidden / 4)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, length, _ = x.shape
        index, exists = log_sparse_index(length, x.device)  # (T, K)
        q = self.query(x)  # (B, T, D)
        k = self.key(x)[:, index]  # (B, T, K, D): the gather that replaces the per-position loop
        v = x[:, index]  # (B, T, K, D/2)
        scores = torch.einsum("btd,btkd->btk", q, k) / self.scale
        # A key counts only if it is inside the sequence and a real frame.
        allowed = exists.unsqueeze(0) & mask[:, index]  # (B, T, K)
        # Offset 0 (the position itself) is always allowed, so padded queries still have one finite score
        # (their outputs are discarded later) and softmax never sees an all -inf row.
        allowed[:, :, 0] = True
        scores = scores.masked_fill(~allowed, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        attended = torch.einsum("btk,btkc->btc", weights, v)
        return self.out(attended), weights


class ADATEncoderLayer(nn.Module):
    """One dual-branch ADAT layer: (B, T, D) + mask (B, T) -> (B, T, D).

    ``last_gate`` keeps the most recent gate values (B, T, 1), detached, for tests and analysis.
    """

    def __init__(self, hidden: int, conv_kernel: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        if hidden % 2:
            raise ValueError(f"ADAT needs an even hidden size, got {hidden}")
        if conv_kernel % 2 == 0:
            raise ValueError(f"ADAT's 'same' temporal convolution needs an odd kernel, got {conv_kernel}")
        half = hidden // 2
        self.half = half
        self.local = nn.Conv1d(half, half, conv_kernel, padding=conv_kernel // 2)
        self.attention = LogSparseAttention(hidden)
        self.gate = nn.Linear(hidden, 1)
        self.fuse = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(hidden)
        self.last_gate: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        keep = mask.unsqueeze(-1).to(x.dtype)
        # Zero padded frames first: the convolution would otherwise pull them into the last real frames.
        x = x * keep
        local_in, global_in = x[..., : self.half], x[..., self.half :]
        local = self.local(local_in.transpose(1, 2)).transpose(1, 2)
        attn, _ = self.attention(global_in, mask)
        gap = masked_time_mean(global_in, mask).expand_as(attn)
        gate = torch.sigmoid(self.gate(torch.cat([attn, gap], dim=-1)))  # (B, T, 1): one scalar per step
        self.last_gate = gate.detach()
        gated = gate * attn + (1.0 - gate) * gap
        out = self.fuse(torch.cat([local, gated], dim=-1))
        return self.norm(x + self.dropout(out)) * keep


class ADATEncoder(nn.Module):
    """``cfg.encoder_layers`` ADAT layers. Dropout on each layer's fused output is Table 4's translator
    dropout; the released code builds dropout layers but never applies them (set dropout 0 for that)."""

    def __init__(self, cfg: TranslatorConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            ADATEncoderLayer(cfg.hidden, cfg.conv_kernel, cfg.dropout) for _ in range(cfg.encoder_layers)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, mask)
        return x
