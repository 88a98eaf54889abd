"""ADAT vs Transformer encoder: forward+backward time and activation memory as the sequence grows.

Usage: .venv/bin/python bench/adat_bench.py [--lengths 64 128 256 512 1024] [--batch 4] [--hidden 512]
       [--reps 3] [--threads N] [--json PATH]

Both encoders have the paper's translator sizes (3 layers, hidden 512; the Transformer with 8 heads and
feed-forward 2048) and run in training mode. Memory is the bytes of the activations autograd keeps for the
backward pass (every tensor saved by the graph, each storage counted once, parameters excluded): that is
what grows with T and what limits batch size; it is measured exactly, independent of allocator caching.
A second pair of columns times the attention sub-layer alone (ADAT's LogSparse global branch against
nn.MultiheadAttention), where the O(T log T) vs O(T^2) difference is not diluted by the linear layers.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

from hatl.io import write_json
from hatl.models.adat import ADATEncoder, LogSparseAttention
from hatl.models.transformer import TransformerEncoder, TranslatorConfig
from hatl.provenance import provenance


def saved_activation_bytes(step, params: set[int]) -> int:
    """Run ``step`` (a forward returning a scalar) and its backward; bytes of the tensors autograd saved."""
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = step()
    loss.backward()
    return sum(storages.values())


def time_fwd_bwd(step, reps: int) -> float:
    """Median seconds of forward + backward over ``reps`` runs, after one warm-up."""
    step().backward()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        step().backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(module: nn.Module, make_input, reps: int) -> tuple[float, int]:
    module.train()
    params = {p.untyped_storage().data_ptr() for p in module.parameters()}
    x, mask = make_input()

    def step() -> torch.Tensor:
        module.zero_grad(set_to_none=True)
        out = module(x, mask)
        out = out[0] if isinstance(out, tuple) else out
        return out.float().pow(2).mean()

    seconds = time_fwd_bwd(step, reps)
    nbytes = saved_activation_bytes(step, params)
    return seconds, nbytes


class MHA(nn.Module):
    """nn.MultiheadAttention self-attention with a padding mask, the Transformer's attention sub-layer."""

    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(hidden, heads, batch_first=True)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, key_padding_mask=~mask, need_weights=False)[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--feedforward", type=int, default=2048)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here, with provenance")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = TranslatorConfig(hidden=args.hidden, heads=args.heads, feedforward=args.feedforward,
                           dropout=0.1, encoder_layers=args.layers)
    models = {
        "transformer": TransformerEncoder(cfg),
        "adat": ADATEncoder(cfg),
        "mha": MHA(args.hidden, args.heads),
        "logsparse": LogSparseAttention(args.hidden),
    }
    rows = []
    print(f"encoders: {args.layers} layers, hidden {args.hidden}, batch {args.batch}, "
          f"threads {torch.get_num_threads()}, median of {args.reps} fwd+bwd (train mode)", flush=True)
    header = (f"{'T':>6} {'Transf. s':>10} {'ADAT s':>9} {'Transf. MiB':>12} {'ADAT MiB':>9} "
              f"{'MHA s':>8} {'LogSparse s':>12} {'MHA MiB':>8} {'LogSp. MiB':>10}")
    print(header)
    for length in args.lengths:
        mask = torch.ones(args.batch, length, dtype=torch.bool)
        full = lambda: (torch.randn(args.batch, length, args.hidden), mask)  # noqa: E731
        half = lambda: (torch.randn(args.batch, length, args.hidden // 2), mask)  # noqa: E731
        row = {"T": length}
        for name, module in models.items():
            seconds, nbytes = measure(module, half if name == "logsparse" else full, args.reps)
            row[f"{name}_s"], row[f"{name}_bytes"] = seconds, nbytes
        rows.append(row)
        mib = 2**20
        print(f"{length:>6} {row['transformer_s']:>10.4f} {row['adat_s']:>9.4f} "
              f"{row['transformer_bytes'] / mib:>12.1f} {row['adat_bytes'] / mib:>9.1f} "
              f"{row['mha_s']:>8.4f} {row['logsparse_s']:>12.4f} "
              f"{row['mha_bytes'] / mib:>8.1f} {row['logsparse_bytes'] / mib:>10.1f}", flush=True)
    growth = {}
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        factor = last["T"] / first["T"]
        print(f"\ngrowth from T={first['T']} to T={last['T']} (x{factor:g} length):")
        for name in models:
            growth[name] = {"time": last[f"{name}_s"] / first[f"{name}_s"],
                            "memory": last[f"{name}_bytes"] / first[f"{name}_bytes"]}
            print(f"  {name:<12} time x{growth[name]['time']:.1f}   activation memory x{growth[name]['memory']:.1f}")
        print("per doubling of T (time ratio, consecutive rows):")
        for name in models:
            steps = [b[f"{name}_s"] / a[f"{name}_s"] for a, b in zip(rows, rows[1:])]
            print(f"  {name:<12} " + "  ".join(f"{s:.2f}" for s in steps))
    if args.json:
        write_json(args.json, {"rows": rows, "growth": growth, "args": {k: str(v) for k, v in vars(args).items()},
                               "provenance": provenance(None, threads=torch.get_num_threads())})
    return 0


if __name__ == "__main__":
    sys.exit(main())
