"""Leave-one-signer-out accuracy of ``hatl pretrain-supervised`` on the full isl_kinect release (2,700 files).

Reads the release folder directly (``RawDataset`` of Boyinglby/ADM_SignLangRecog, brought beside the project,
never committed) with the adapter's reader, prepares every file as ``load_signs`` does and runs ``loso()``
for the held-out signers asked, with ``backbone.pretrain.supervised`` from the config plus ``--set key=value``
overrides (YAML values). Prints one line per held-out signer and the mean, and appends JSON lines to ``--out``.

    python bench/isl_loso.py --folder ../isl_kinect_full/RawDataset --held-out parveen rajat \
        --set base_channels=16 --set tilt=0.1 --out /tmp/loso.jsonl

With ``--set streams=[joint,bone,motion] --probs DIR`` each stream's held-out softmax is kept, and
``--ensembles --probs DIR`` then prints the accuracy of every subset of those streams without training again.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import yaml

from hatl.config import deep_merge, load_config
from hatl.datasets.isl_kinect import list_files, parse_name, read_skeleton
from hatl.models import pretrain_supervised as sup
from hatl.models.graph import kinect20_graph
from hatl.models.stgcnpp import STGCNPPConfig


def load_release(folder: Path, frames: int) -> sup.SignSet:
    graph = kinect20_graph()
    xs, labels, signers, ids = [], [], [], []
    for name in list_files(folder):
        fields = parse_name(name)
        if fields is None:
            continue
        sign, signer, take = fields
        sample_id = f"{sign}_{signer}_{take}"
        seq = read_skeleton(folder / name, sample_id)
        if len(seq) == 0:
            continue
        xs.append(sup.prepare(seq, graph, frames))
        labels.append(sign)
        signers.append(signer)
        ids.append(sample_id)
    classes = sorted(set(labels))
    index = {c: i for i, c in enumerate(classes)}
    return sup.SignSet(np.stack(xs), np.array([index[c] for c in labels]), np.array(signers), classes, ids)


def keep_probs(folder: Path | None, signs: sup.SignSet):
    """``loso``'s on_stream hook: save each held-out softmax (and the true signs) under ``folder``."""
    if folder is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)

    def save(signer: str, stream: str, probs: np.ndarray) -> None:
        np.save(folder / f"{signer}.truth.npy", signs.y[signs.signers == signer])
        np.save(folder / f"{signer}.{stream}.npy", probs.astype(np.float32))
    return save


def ensemble_accuracies(folder: Path) -> dict[str, dict[str, float]]:
    """Accuracy of every non-empty subset of the streams saved under ``folder`` (``--probs``), by held-out signer:
    {signer: {"joint+motion": accuracy, ...}} (mean softmax of the subset's streams, as ``loso`` ensembles)."""
    out: dict[str, dict[str, float]] = {}
    for truth_path in sorted(folder.glob("*.truth.npy")):
        signer = truth_path.name.split(".")[0]
        truth = np.load(truth_path)
        probs = {p.name.split(".")[1]: np.load(p) for p in folder.glob(f"{signer}.*.npy") if p != truth_path}
        streams = [s for s in sup.STREAMS if s in probs]
        out[signer] = {"+".join(combo): float((sum(probs[s] for s in combo).argmax(1) == truth).mean())
                       for r in range(1, len(streams) + 1) for combo in itertools.combinations(streams, r)}
    return out


def print_ensembles(folder: Path) -> None:
    table = ensemble_accuracies(folder)
    if not table:
        raise SystemExit(f"no saved softmax (*.truth.npy) under {folder}")
    combos = sorted({c for row in table.values() for c in row}, key=lambda c: (c.count("+"), c))
    print("| held-out signer | " + " | ".join(combos) + " |")
    print("|---" * (len(combos) + 1) + "|")
    for signer, row in table.items():
        print(f"| {signer} | " + " | ".join(f"{row[c]:.3f}" if c in row else "-" for c in combos) + " |")
    means = [np.mean([row[c] for row in table.values() if c in row]) for c in combos]
    print(f"| mean of {len(table)} | " + " | ".join(f"{m:.3f}" for m in means) + " |")


def measured(path: Path | None, settings: dict, width: int, seed: int) -> dict[str, dict]:
    """Rows of ``path`` (JSON lines) measured with exactly these settings, width and seed, by held-out signer."""
    if path is None or not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {r["held_out_signer"]: r for r in rows
            if r["settings"] == settings and r["width"] == width and r.get("seed", 1234) == seed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, default=None, help="the release's RawDataset folder")
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--held-out", nargs="+", default=None)
    parser.add_argument("--set", action="append", default=[], help="key=value override of the supervised settings")
    parser.add_argument("--width", type=int, default=8, help="base_channels when the config leaves it null")
    parser.add_argument("--tag", default="")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--probs", type=Path, default=None,
                        help="folder for each held-out signer's per-stream softmax (<signer>.<stream>.npy, rows in "
                             "file order; <signer>.truth.npy the signs) to score other stream ensembles")
    parser.add_argument("--ensembles", action="store_true",
                        help="train nothing: print the accuracy of every stream subset saved under --probs")
    args = parser.parse_args()
    if args.ensembles:
        if args.probs is None:
            parser.error("--ensembles reads the softmax saved under --probs")
        print_ensembles(args.probs)
        return
    if args.folder is None:
        parser.error("--folder (the release's RawDataset) is required to train")
    torch.set_num_threads(1)
    config = load_config(args.config)
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    # through from_config, which turns YAML lists (drop_joints, streams) into the dataclass's tuples
    cfg = sup.SupervisedConfig.from_config(deep_merge(config, {"backbone": {"pretrain": {"supervised": overrides}}}))
    arch = STGCNPPConfig(base_channels=int(cfg.base_channels or args.width))
    seed = int(config.get("seed", 1234))
    start = time.perf_counter()
    signs = load_release(args.folder, cfg.frames)
    print(f"{len(signs.y)} samples, {len(signs.classes)} signs, {len(set(signs.signers))} signers, "
          f"loaded in {time.perf_counter() - start:.0f} s; {asdict(cfg)} width {arch.base_channels}", flush=True)
    rows = []
    settings = json.loads(json.dumps(asdict(cfg)))
    done = measured(args.out, settings, arch.base_channels, seed)
    for signer in args.held_out or sorted(set(signs.signers.tolist())):
        if signer in done:  # deterministic: the same settings, width and seed give the same row
            rows.append(done[signer])
            print(f"{args.tag} {signer}: accuracy {done[signer]['accuracy']:.3f} (measured before, {args.out})", flush=True)
            continue
        row = sup.loso(signs, kinect20_graph(), arch, cfg, seed, [signer], on_stream=keep_probs(args.probs, signs))[0]
        rows.append(row)
        print(f"{args.tag} {signer}: accuracy {row['accuracy']:.3f} distinct {row['distinct_predictions']} "
              f"train {row['train_accuracy']:.3f} {row['seconds']:.0f} s; per stream {row['stream_accuracy']}",
              flush=True)
        if args.out:
            with open(args.out, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"tag": args.tag, "settings": settings, "width": arch.base_channels, "seed": seed,
                                     **row}) + "\n")
    print(f"{args.tag} mean accuracy {np.mean([r['accuracy'] for r in rows]):.4f} over {len(rows)} signer(s) "
          f"(chance {1 / len(signs.classes):.3f})", flush=True)


if __name__ == "__main__":
    main()
