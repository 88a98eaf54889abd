"""ST-GCN++ in plain PyTorch: numerically the same network as pyskl's ``STGCN`` in its ST-GCN++ configuration.

pyskl builds ST-GCN++ as ``STGCN(gcn_adaptive='init', gcn_with_res=True, tcn_type='mstcn', graph_cfg=...)``.
This file rebuilds exactly that network without mmcv or pyskl, so that a released pyskl checkpoint and a
pyskl run on the same input give the same outputs here (within float32 noise; tests/test_stgcnpp_parity.py).

Module names deliberately equal pyskl's (``data_bn``, ``gcn.{i}.gcn.{A,conv,bn,down}``,
``gcn.{i}.tcn.{branches,transform,bn}``, ``gcn.{i}.residual.{conv,bn}``) so that the explicit key map in
:mod:`hatl.models.checkpoint` is the identity on names; it still goes through that map so that a renamed
module here shows up as a refused key rather than a silently unused weight.

Shapes: input (N, M, T, V, C) as pyskl (M persons); output (N, M, C_out, ceil(T/4), V).
Sign language has one signer, so :meth:`STGCNPP.frame_features` runs (B, T, V, C) with M = 1 and pools
the joints (mean over V) into per-frame features (B, ceil(T/4), C_out) for the translator.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-4  # pyskl adds it before int() when inflating channels, so 64 * 2**k never rounds down
TEMPORAL_STRIDE = 4  # two stride-2 stages


@dataclass(frozen=True)
class STGCNPPConfig:
    """Architecture of one ST-GCN++ backbone (defaults: pyskl's released ST-GCN++ models)."""

    in_channels: int = 3
    base_channels: int = 64
    ch_ratio: int = 2
    num_stages: int = 10
    inflate_stages: tuple[int, ...] = (5, 8)
    down_stages: tuple[int, ...] = (5, 8)
    # mstcn branches: (kernel, dilation) temporal convs, a max-pool branch and a bare 1x1 conv (pyskl's ms_cfg)
    dilations: tuple[int, ...] = field(default=(1, 2, 3, 4))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> STGCNPPConfig:
        d = dict(d)
        for key in ("inflate_stages", "down_stages", "dilations"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)

    def stage_channels(self) -> list[tuple[int, int, int]]:
        """(in, out, temporal stride) of each block, following pyskl's construction loop."""
        blocks: list[tuple[int, int, int]] = []
        if self.in_channels != self.base_channels:
            blocks.append((self.in_channels, self.base_channels, 1))
        base = self.base_channels
        inflate_times = 0
        for i in range(2, self.num_stages + 1):
            stride = 1 + (i in self.down_stages)
            if i in self.inflate_stages:
                inflate_times += 1
            out = int(self.base_channels * self.ch_ratio**inflate_times + EPS)
            blocks.append((base, out, stride))
            base = out
        return blocks

    @property
    def out_channels(self) -> int:
        return self.stage_channels()[-1][1]


class UnitGCN(nn.Module):
    """Spatial graph convolution with a learned adjacency initialised from the graph ('init' mode).

    conv (Cin -> K*Cout, 1x1), then per subset k aggregate joints with A[k], sum over k; BN; + down(x); ReLU.
    """

    def __init__(self, in_channels: int, out_channels: int, A: torch.Tensor) -> None:
        super().__init__()
        self.num_subsets = A.size(0)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.A = nn.Parameter(A.clone())
        self.conv = nn.Conv2d(in_channels, out_channels * self.num_subsets, 1)
        self.bn = nn.BatchNorm2d(out_channels)
        # gcn_with_res=True: 1x1 conv + BN when the width changes, identity otherwise (no parameters)
        self.down: nn.Module = (
            nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels))
            if in_channels != out_channels
            else nn.Identity()
        )

    def aggregate(self, x: torch.Tensor) -> torch.Tensor:
        """sum_k A[k]-aggregation of conv_k(x): pyskl's conv-then-einsum, or the same sum in the cheaper order.

        The 1x1 conv and the joint aggregation are both linear, so they commute. Aggregating first costs
        K*Cin*T*V^2 instead of K*Cout*T*V^2; when the block widens (block 0: 3 -> 64, blocks 4 and 7: x2)
        that is 2x-21x less work and a smaller intermediate. The conv bias, which pyskl adds before the
        aggregation, becomes sum_k b_k (x) colsum(A_k): a per-(channel, joint) term.
        """
        n, _, t, v = x.shape
        k = self.num_subsets
        if self.in_channels >= self.out_channels:  # pyskl's order is the cheaper (or equal) one
            y = self.conv(x).view(n, k, -1, t, v)
            return torch.einsum("nkctv,kvw->nctw", y, self.A)
        xa = torch.einsum("nctv,kvw->nkctw", x, self.A).reshape(n, k * self.in_channels, t, v)
        weight = self.conv.weight.view(k, self.out_channels, self.in_channels)
        weight = weight.permute(1, 0, 2).reshape(self.out_channels, k * self.in_channels, 1, 1)
        bias = torch.einsum("kc,kw->cw", self.conv.bias.view(k, self.out_channels), self.A.sum(dim=1))
        return F.conv2d(xa, weight) + bias[None, :, None, :]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = self.down(x)
        return F.relu(self.bn(self.aggregate(x)) + res)


class TemporalConv(nn.Module):
    """pyskl's unit_tcn with norm=None: a (k, 1) temporal conv (its BN is an Identity, dropout 0)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        pad = (kernel_size + (kernel_size - 1) * (dilation - 1) - 1) // 2
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size=(kernel_size, 1), padding=(pad, 0),
            stride=(stride, 1), dilation=(dilation, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class UnitTCN(nn.Module):
    """pyskl's unit_tcn with BN, used here only as the strided block residual (kernel 1)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1) -> None:
        super().__init__()
        pad = (kernel_size - 1) // 2
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=(kernel_size, 1), padding=(pad, 0), stride=(stride, 1))
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class MSTCN(nn.Module):
    """Multi-scale temporal conv: 4 dilated branches, a max-pool branch and a 1x1 branch, concatenated.

    Each branch gets out//6 channels, branch 0 the remainder (64 -> 14 + 5x10). Concat -> BN -> ReLU ->
    1x1 (``transform``) -> BN. No ReLU at the end: the block adds its residual first.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, dilations: tuple[int, ...] = (1, 2, 3, 4)) -> None:
        super().__init__()
        num_branches = len(dilations) + 2
        mid = out_channels // num_branches
        rem = out_channels - mid * (num_branches - 1)
        widths = [rem] + [mid] * (num_branches - 1)
        branches: list[nn.Module] = []
        for d, c in zip(dilations, widths):
            branches.append(nn.Sequential(
                nn.Conv2d(in_channels, c, 1), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                TemporalConv(c, c, kernel_size=3, stride=stride, dilation=d),
            ))
        c = widths[len(dilations)]
        branches.append(nn.Sequential(
            nn.Conv2d(in_channels, c, 1), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=(3, 1), stride=(stride, 1), padding=(1, 0)),
        ))
        branches.append(nn.Conv2d(in_channels, widths[-1], 1, stride=(stride, 1)))
        self.branches = nn.ModuleList(branches)
        self.widths = widths
        total = sum(widths)
        self.transform = nn.Sequential(nn.BatchNorm2d(total), nn.ReLU(inplace=True), nn.Conv2d(total, out_channels, 1))
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The five branch-entry 1x1 convs read the same input: run them as ONE conv with the weights
        # concatenated (same arithmetic per output channel, one pass over x instead of five).
        entries = [b[0] for b in self.branches[:-1]]
        weight = torch.cat([conv.weight for conv in entries])
        bias = torch.cat([conv.bias for conv in entries])
        mids = F.conv2d(x, weight, bias).split(self.widths[:-1], dim=1)
        outs = [branch[3](branch[2](branch[1](m))) for branch, m in zip(self.branches[:-1], mids)]
        outs.append(self.branches[-1](x))
        return self.bn(self.transform(torch.cat(outs, dim=1)))


class STGCNBlock(nn.Module):
    """unit_gcn -> mstcn, plus the block residual (none in block 0, identity, or strided 1x1 conv + BN); ReLU."""

    def __init__(self, in_channels: int, out_channels: int, A: torch.Tensor, stride: int, residual: bool,
                 dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.gcn = UnitGCN(in_channels, out_channels, A)
        self.tcn = MSTCN(out_channels, out_channels, stride=stride, dilations=dilations)
        self.residual_kind = "none" if not residual else ("identity" if in_channels == out_channels and stride == 1 else "conv")
        if self.residual_kind == "conv":
            self.residual = UnitTCN(in_channels, out_channels, kernel_size=1, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.tcn(self.gcn(x))
        if self.residual_kind == "identity":
            y = y + x
        elif self.residual_kind == "conv":
            y = y + self.residual(x)
        return F.relu(y)


class STGCNPP(nn.Module):
    """ST-GCN++ backbone over a (3, V, V) spatial-mode adjacency ``A`` (see :mod:`hatl.models.graph`)."""

    def __init__(self, A: torch.Tensor | np.ndarray, config: STGCNPPConfig | None = None) -> None:
        super().__init__()
        self.config = config or STGCNPPConfig()
        A = torch.as_tensor(A, dtype=torch.float32)
        if A.ndim != 3 or A.shape[1] != A.shape[2]:
            raise ValueError(f"A must be (K, V, V), got {tuple(A.shape)}")
        self.num_joints = int(A.shape[1])
        cfg = self.config
        self.data_bn = nn.BatchNorm1d(cfg.in_channels * self.num_joints)
        blocks = []
        for i, (cin, cout, stride) in enumerate(cfg.stage_channels()):
            # pyskl: the first block has no block residual when it lifts in_channels to base_channels
            first_lift = i == 0 and cfg.in_channels != cfg.base_channels
            blocks.append(STGCNBlock(cin, cout, A, stride, residual=not first_lift, dilations=cfg.dilations))
        self.gcn = nn.ModuleList(blocks)

    @property
    def out_channels(self) -> int:
        return self.config.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, M, T, V, C) -> (N, M, C_out, ceil(T/4), V)."""
        n, m, t, v, c = x.shape
        # data_bn normalises each (joint, channel) pair over time: feature index v*C + c, as pyskl
        x = x.permute(0, 1, 3, 4, 2).reshape(n * m, v * c, t)
        x = self.data_bn(x)
        x = x.view(n * m, v, c, t).permute(0, 2, 3, 1).contiguous()
        for block in self.gcn:
            x = block(x)
        return x.reshape((n, m) + x.shape[1:])

    def frame_features(self, keypoints: torch.Tensor) -> torch.Tensor:
        """(B, T, V, C) keypoints -> (B, ceil(T/4), C_out) per-frame features, mean-pooled over joints.

        Mean over V (not max) keeps every joint's gradient alive, which the layer-wise unfreezing relies on.
        """
        feats = self.forward(keypoints.unsqueeze(1))  # M = 1
        return feats[:, 0].mean(dim=-1).transpose(1, 2)

    @staticmethod
    def output_length(num_frames: int) -> int:
        """Frames after the two stride-2 stages: every strided op maps T to ceil(T/2)."""
        return math.ceil(math.ceil(num_frames / 2) / 2)

    @staticmethod
    def downsample_mask(frame_mask: torch.Tensor) -> torch.Tensor:
        """(B, T) frame mask -> (B, ceil(T/4)): output step t' is centred on input frame 4t'."""
        return frame_mask[:, ::TEMPORAL_STRIDE]

    def layers(self) -> list[nn.Module]:
        """Ordered layers L1..Ln (L1 nearest the input), one per ST-GCN++ block.

        data_bn belongs to L1: it only rescales the raw input for block 0 and has no use on its own, so it
        is frozen and unfrozen together with the first block.
        """
        first = nn.ModuleList([self.data_bn, self.gcn[0]])  # a view: not registered, names stay unchanged
        return [first, *self.gcn[1:]]
