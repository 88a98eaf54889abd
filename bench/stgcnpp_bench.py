"""Forward+backward time of hatl's ST-GCN++ against pyskl's on the same input and weights, in one process.

    .venv/bin/python bench/stgcnpp_bench.py                       # hatl only
    .venv/bin/python bench/stgcnpp_bench.py --pyskl /tmp/pyskl_ref/src --shim /tmp/pyskl_ref/shim.py

``--pyskl`` is a pyskl source tree (the folder holding ``pyskl/``); ``--shim`` is a Python file defining
``load_pyskl_stgcn(root) -> STGCN class`` that runs pyskl's STGCN without mmcv (never part of hatl: see
tests/data/stgcnpp_ref/README.md). Both models get the same weights (pyskl's state dict loaded into hatl's
through the importer's key map), outputs are checked to agree first, then timings alternate between the two
models iteration by iteration so that load from other processes hits both alike. Prints medians and the ratio
hatl / pyskl (goal <= 1.0). ``--clock process`` measures this process's CPU time instead of elapsed time, which
is steadier when other jobs share the cores.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import torch

from hatl.models.checkpoint import map_key
from hatl.models.graph import pyskl_graph
from hatl.models.stgcnpp import STGCNPP, STGCNPPConfig

V_OF = {"nturgb+d": 25, "coco": 17}


def load_shim(path: str, root: str):
    spec = importlib.util.spec_from_file_location("_pyskl_shim", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(Path(path).parent))
    spec.loader.exec_module(module)
    return module.load_pyskl_stgcn(root)


CLOCKS = {"wall": time.perf_counter, "process": time.process_time}


def step_time(model: torch.nn.Module, x: torch.Tensor, clock=time.perf_counter) -> float:
    model.zero_grad(set_to_none=True)
    t0 = clock()
    model(x).sum().backward()
    return clock() - t0


def bench_layout(layout: str, args: argparse.Namespace, pyskl_cls) -> dict:
    torch.manual_seed(0)
    x = torch.randn(args.n, 1, args.t, V_OF[layout], 3)
    ours = STGCNPP(pyskl_graph(layout).adjacency(), STGCNPPConfig(base_channels=args.base)).train()
    row = {"layout": layout, "N": args.n, "T": args.t, "V": V_OF[layout], "threads": torch.get_num_threads()}
    theirs = None
    if pyskl_cls is not None:
        theirs = pyskl_cls(graph_cfg=dict(layout=layout, mode="spatial"), gcn_adaptive="init", gcn_with_res=True,
                           tcn_type="mstcn", base_channels=args.base).train()
        ours.load_state_dict({map_key(k): v for k, v in theirs.state_dict().items()})
        ours.eval(), theirs.eval()
        with torch.no_grad():
            diff = (ours(x) - theirs(x)).abs().max().item()
        row["max_abs_diff_eval"] = diff
        ours.train(), theirs.train()
    models = {"hatl": ours} if theirs is None else {"hatl": ours, "pyskl": theirs}
    clock = CLOCKS[args.clock]
    for _ in range(args.warmup):
        for m in models.values():
            step_time(m, x, clock)
    times: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(args.repeats):
        for name, m in models.items():  # alternate: background load affects both
            times[name].append(step_time(m, x, clock))
    for name, ts in times.items():
        row[f"{name}_ms"] = 1000 * statistics.median(ts)
        row[f"{name}_min_ms"] = 1000 * min(ts)
    if theirs is not None:
        row["ratio_median"] = row["hatl_ms"] / row["pyskl_ms"]
        row["ratio_min"] = row["hatl_min_ms"] / row["pyskl_min_ms"]
    row["hatl_samples_per_s"] = args.n / (row["hatl_ms"] / 1000)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyskl", default=None, help="pyskl source tree (folder holding pyskl/)")
    parser.add_argument("--shim", default=None, help="python file defining load_pyskl_stgcn(root)")
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--t", type=int, default=64)
    parser.add_argument("--base", type=int, default=64)
    parser.add_argument("--layouts", nargs="+", default=["nturgb+d", "coco"], choices=list(V_OF))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--clock", choices=list(CLOCKS), default="wall",
                        help="wall: elapsed time; process: CPU time of this process (steadier on a shared machine)")
    args = parser.parse_args()
    if bool(args.pyskl) != bool(args.shim):
        parser.error("--pyskl and --shim go together")
    torch.set_num_threads(args.threads)
    pyskl_cls = load_shim(args.shim, args.pyskl) if args.pyskl else None
    print(f"torch {torch.__version__}, {args.threads} threads, fwd+bwd (train mode), {args.clock} clock, "
          f"median of {args.repeats}")
    for layout in args.layouts:
        row = bench_layout(layout, args, pyskl_cls)
        line = (f"{layout:9s} N={row['N']} T={row['T']} V={row['V']}: hatl {row['hatl_ms']:.1f} ms "
                f"(min {row['hatl_min_ms']:.1f}, {row['hatl_samples_per_s']:.1f} samples/s)")
        if "pyskl_ms" in row:
            line += (f" | pyskl {row['pyskl_ms']:.1f} ms (min {row['pyskl_min_ms']:.1f}) | ratio {row['ratio_median']:.3f}"
                     f" (min-based {row['ratio_min']:.3f}) | eval max |diff| {row['max_abs_diff_eval']:.2e}")
        print(line, flush=True)


if __name__ == "__main__":
    main()
