"""The Transformer translator: a self-attention encoder over frames (or glosses) and an autoregressive text decoder.

Built on torch.nn.TransformerEncoderLayer / TransformerDecoderLayer (batch_first, post-LN as in Vaswani
et al.), the maintained library implementation; this module adds the masks, positions, embeddings and the
output projection. The ADAT translator (hatl.models.adat) reuses ``TextDecoder`` unchanged.

Mask convention throughout hatl.models: a bool ``mask`` is True on REAL positions (frames, tokens);
torch's ``key_padding_mask`` wants the opposite, so it is always passed as ``~mask``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Mapping

import torch
from torch import nn

from hatl.models.positional import SinusoidalPositions


@dataclass(frozen=True)
class TranslatorConfig:
    """Sizes of one translator (config ``model.transformer`` or ``model.adat``); defaults are the paper's Table 4."""

    hidden: int = 512
    heads: int = 8
    feedforward: int = 2048
    dropout: float = 0.1
    encoder_layers: int = 3
    decoder_layers: int = 1
    conv_kernel: int = 3  # ADAT only: the local branch's temporal kernel
    tie_embeddings: bool = False  # the text decoder's output projection shares its input embedding's matrix
    gloss_dropout: float = 0.0  # gloss2text only: chance that training replaces an input gloss by UNK
    gloss_word_embeddings: bool = False  # gloss2text only: a gloss spelling a target word reads that word's embedding

    @classmethod
    def from_dict(cls, section: Mapping[str, Any] | None) -> "TranslatorConfig":
        section = dict(section or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(section) - known)
        if unknown:
            raise ValueError(f"unknown translator keys {unknown}; known: {sorted(known)}")
        cfg = cls(**section)
        if not 0.0 <= cfg.gloss_dropout < 1.0:
            raise ValueError(f"gloss_dropout must be in [0, 1), got {cfg.gloss_dropout}")
        if cfg.hidden % cfg.heads:
            raise ValueError(f"hidden size {cfg.hidden} is not divisible by {cfg.heads} heads")
        if cfg.hidden % 4:
            # ADAT halves the channels and the sinusoidal table pairs them; a multiple of 4 keeps both exact.
            raise ValueError(f"hidden size {cfg.hidden} must be a multiple of 4")
        return cfg


def causal_mask(length: int, device: torch.device | None = None) -> torch.Tensor:
    """(S, S) bool, True where attention is FORBIDDEN (a later position), as torch's attn_mask expects."""
    return torch.triu(torch.ones(length, length, dtype=torch.bool, device=device), diagonal=1)


def lengths_to_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """(B,) lengths -> (B, T) bool, True on the first ``length`` positions."""
    max_len = int(lengths.max().item()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


class TransformerEncoder(nn.Module):
    """A stack of post-LN self-attention layers; (B, T, D) + mask (B, T) -> (B, T, D).

    Padded positions are excluded as keys; their own outputs are zeroed so nothing downstream (a
    frame classifier, a pooled summary) can depend on what the padding contained.
    """

    def __init__(self, cfg: TranslatorConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                cfg.hidden, cfg.heads, cfg.feedforward, cfg.dropout, batch_first=True
            )
            for _ in range(cfg.encoder_layers)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pad = ~mask
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=pad)
        return x.masked_fill(pad.unsqueeze(-1), 0.0)


def token_embedding(vocab_size: int, dim: int, pad_id: int) -> nn.Embedding:
    """A token embedding initialised N(0, 1/dim), the scale the sqrt(dim) input scaling assumes.

    nn.Embedding's own N(0, 1) init times sqrt(dim) gives inputs of std sqrt(dim) (22.6 at 512), which
    drowns the sinusoidal positions (|x| <= 1): on real PHOENIX14T Gloss2Text that model dropped half of
    every sentence (brevity penalty 0.35). With N(0, 1/dim) the scaled embedding has std 1, like the positions.
    """
    embed = nn.Embedding(vocab_size, dim, padding_idx=pad_id)
    with torch.no_grad():
        embed.weight.normal_(0.0, dim**-0.5)
        embed.weight[pad_id].zero_()
    return embed


class TextDecoder(nn.Module):
    """Token embedding + sinusoidal positions -> causal post-LN decoder layers with cross-attention -> vocab logits."""

    def __init__(self, cfg: TranslatorConfig, vocab_size: int, pad_id: int = 0) -> None:
        super().__init__()
        self.hidden = cfg.hidden
        self.pad_id = pad_id
        self.embed = token_embedding(vocab_size, cfg.hidden, pad_id)
        self.positions = SinusoidalPositions(cfg.hidden)
        self.dropout = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(
            nn.TransformerDecoderLayer(
                cfg.hidden, cfg.heads, cfg.feedforward, cfg.dropout, batch_first=True
            )
            for _ in range(cfg.decoder_layers)
        )
        self.output = nn.Linear(cfg.hidden, vocab_size)
        if cfg.tie_embeddings:
            # Press & Wolf (2017): one matrix for reading and writing target words halves the decoder's
            # vocabulary parameters, which a corpus of a few thousand sentences cannot fit twice over.
            self.output.weight = self.embed.weight

    def forward(
        self, tokens: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor
    ) -> torch.Tensor:
        """tokens (B, S) int64 (BOS + prefix), memory (B, T, D), memory_mask (B, T) True on real frames -> (B, S, V)."""
        length = tokens.shape[1]
        # sqrt(d) scaling keeps embeddings on the scale of the sinusoids (Vaswani et al. 3.4).
        y = self.dropout(self.positions(self.embed(tokens) * math.sqrt(self.hidden)))
        # The causal mask alone keeps real tokens from seeing padding (padding only ever follows them);
        # a key-padding mask on top would make fully padded rows all -inf, i.e. NaN.
        causal = causal_mask(length, tokens.device)
        for layer in self.layers:
            y = layer(y, memory, tgt_mask=causal, memory_key_padding_mask=~memory_mask)
        return self.output(y)
