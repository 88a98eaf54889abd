"""Wall time of `hatl train` runs at the demo's scale, to size ``demo.overrides`` (training, model, backbone).

    .venv/bin/python bench/train_bench.py                     # 2 models x 2 tasks x 3 strategies, 1 thread
    .venv/bin/python bench/train_bench.py --runs adat:sign2text:hatl --base-channels 8 --hidden 64

Writes a synthetic stand-in of the demo PHOENIX14T (300 train / 60 dev samples, 16-64 frames, the full
135-joint MediaPipe layout, glosses driving the motion) to a temporary folder, a randomly initialised
ST-GCN++ with ``--base-channels``, and runs each requested training in its own process through the real
CLI (``python -m hatl.cli train``), so the figures include start-up (imports, data loading, caching).
Prints per run: total seconds, training seconds, epochs, seconds per epoch, releases, dev BLEU-4.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from hatl.config import REPO_ROOT
from hatl.io import atomic_path
from hatl.keypoint_store import KeypointRecord, write_keypoints
from hatl.landmarks import build_layout

WORDS = [f"w{i}" for i in range(60)]
GLOSSES = [f"G{i}" for i in range(40)]


def sample(rng: np.random.Generator, layout, sid: str, split: str) -> KeypointRecord:
    n = int(rng.integers(2, 6))
    ids = rng.integers(0, len(GLOSSES), n)
    t = int(rng.integers(16, 65))
    cuts = np.linspace(0, t, n + 1).astype(int)
    lm = 0.02 * rng.standard_normal((t, layout.num_joints, 3)).astype(np.float32)
    for k, g in enumerate(ids):
        lm[cuts[k] : cuts[k + 1], :, 0] += 0.05 * (g % 7)
        lm[cuts[k] : cuts[k + 1], :, 1] += 0.05 * (g // 7)
    text = " ".join(WORDS[(int(g) * 3 + j) % len(WORDS)] for g in ids for j in range(2))
    return KeypointRecord(sid, split, lm, np.ones((t, len(layout.groups)), bool), 25.0,
                          extra={"gloss": " ".join(GLOSSES[int(g)] for g in ids), "text": text, "signer": "s", "fold": -1})


def write_inputs(root: Path, base_channels: int, n_train: int, n_dev: int) -> dict[str, Path]:
    from hatl.models.checkpoint import FORMAT
    from hatl.models.graph import mediapipe_graph
    from hatl.models.stgcnpp import STGCNPP, STGCNPPConfig
    from hatl.vocab import TextNormalisation, VocabConfig, build_gloss_vocab, build_text_vocab

    layout = build_layout()
    rng = np.random.default_rng(0)
    train = [sample(rng, layout, f"tr{i:04d}", "train") for i in range(n_train)]
    dev = [sample(rng, layout, f"dv{i:04d}", "dev") for i in range(n_dev)]
    data = root / "normalised"
    write_keypoints(data / "train.parquet", train, layout, {"stage": "normalised"})
    write_keypoints(data / "dev.parquet", dev, layout, {"stage": "normalised"})
    vocab = root / "vocab"
    vocab.mkdir(parents=True, exist_ok=True)
    build_gloss_vocab([r.extra["gloss"] for r in train]).save(vocab / "gloss.json")
    build_text_vocab([r.extra["text"] for r in train], TextNormalisation(), VocabConfig()).save(vocab / "text.json")
    torch.manual_seed(0)
    graph = mediapipe_graph(layout)
    model = STGCNPP(graph.adjacency(), STGCNPPConfig(base_channels=base_channels))
    backbone = root / "stgcnpp.pt"
    with atomic_path(backbone) as tmp:
        torch.save({"format": FORMAT, "config": model.config.to_dict(), "graph": graph.to_dict(),
                    "layout": layout.to_dict(), "state_dict": model.state_dict(), "report": {}}, tmp)
    return {"data": data, "vocab": vocab, "backbone": backbone}


def demo_overrides(args: argparse.Namespace) -> dict:
    translator = {"hidden": args.hidden, "heads": 4, "feedforward": 2 * args.hidden, "dropout": 0.1,
                  "encoder_layers": args.encoder_layers, "decoder_layers": 1}
    return {
        "backbone": {"base_channels": args.base_channels},
        "model": {"transformer": dict(translator), "adat": dict(translator)},
        "training": {
            "max_epochs": args.max_epochs, "batch_size": 32, "eval_batch_size": 64,
            "lr": {"encoder": 1.0e-3, "decoder": 1.0e-3, "backbone": 2.0e-4, "warmup_min_steps": 20},
            "early_stopping": {"patience": 3},
            "hatl": {"warmup_epochs": 1, "window": 2, "patience_first": 2, "patience_later": 1, "cooldown_epochs": 1,
                     "thresholds": {"bleu4": 0.005, "ctc_loss": 0.05, "wer": 0.01}},
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="*", default=[f"{m}:{t}:{s}" for m in ("transformer", "adat")
                                                     for t in ("sign2gloss", "sign2text")
                                                     for s in ("classical", "full", "hatl")])
    parser.add_argument("--base-channels", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--encoder-layers", type=int, default=2)
    parser.add_argument("--max-epochs", type=int, default=10)
    parser.add_argument("--n-train", type=int, default=300)
    parser.add_argument("--n-dev", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hatl-train-bench-") as tmp:
        root = Path(tmp)
        paths = write_inputs(root, args.base_channels, args.n_train, args.n_dev)
        with open(REPO_ROOT / "config" / "config.yaml", encoding="utf-8") as fh:
            cfg = yaml.safe_load(fh)
        cfg["datasets"] = {"bench": {"adapter": "demo", "demo_profile": "phoenix14t"}}
        cfg.setdefault("demo", {})["overrides"] = demo_overrides(args)
        config_path = root / "config.yaml"
        config_path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
        print(f"demo.overrides: {json.dumps(demo_overrides(args))}")
        print(f"{'run':36s} {'total_s':>8s} {'train_s':>8s} {'epochs':>6s} {'s/epoch':>8s} {'bleu4':>6s}  releases / stop")
        grand = 0.0
        for run in args.runs:
            model, task, strategy = run.split(":")
            out = root / "runs" / model / task / strategy
            argv = [sys.executable, "-m", "hatl.cli", "train", "--config", str(config_path), "--dataset", "bench",
                    "--model", model, "--task", task, "--strategy", strategy, "--data-dir", str(paths["data"]),
                    "--vocab-dir", str(paths["vocab"]), "--backbone", str(paths["backbone"]), "--out-dir", str(out),
                    "--resume-dir", str(root / "resume" / model / task / strategy), "--threads", str(args.threads)]
            t0 = time.perf_counter()
            proc = subprocess.run(argv, capture_output=True, text=True)
            total = time.perf_counter() - t0
            grand += total
            if proc.returncode != 0:
                print(f"{run:36s} FAILED ({proc.returncode}): {proc.stderr[-600:]}")
                continue
            s = json.loads((out / "summary.json").read_text())
            bleu = s["best_dev"].get("bleu4")
            print(f"{run:36s} {total:8.1f} {s['train_time_s']:8.1f} {s['epochs_run']:6d} "
                  f"{s['train_time_s'] / s['epochs_run']:8.2f} {bleu if bleu is not None else float('nan'):6.2f}  "
                  f"{s['release_epochs']} / {s['stop_reason']}")
        print(f"all runs: {grand:.1f} s")


if __name__ == "__main__":
    main()
