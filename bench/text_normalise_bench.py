"""Throughput and memory of the normalise, vocab, lm and stats stages at PHOENIX14T scale.

* normalise: SAMPLES synthetic sequences of FRAMES frames on the full default layout (pose, reduced face,
  iris, both hands: 135 joints), in shards of 64 (the default preprocess.shard_size), with undetected hand/pose frames so the fallbacks and
  gap filling run; reports samples/s, frames/s and the peak RSS of the process (streamed output keeps it
  bounded: rows are written per split in groups of 64).
* vocab + lm: the real PHOENIX14T train/dev CSVs (../shared/data/phoenix14t/manual) as a manifest;
  whitespace and sentencepiece vocabularies, and the KenLM 4-gram (lmplz + build_binary + check).
* stats: Table 3 text statistics and the keypoint quality report on the normalised output.

Usage: .venv/bin/python bench/text_normalise_bench.py [--samples 1000] [--frames 120]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SHARD_SIZE = 64  # preprocess.shard_size default: a keypoint shard is one Parquet row group of this many samples
SHARED = Path(os.environ.get("HATL_SHARED_DATA", REPO.parent / "shared" / "data"))


def synthetic_shards(work: Path, samples: int, frames: int) -> tuple[Path, list[Path]]:
    from hatl.keypoint_store import KeypointRecord, write_keypoints
    from hatl.landmarks import build_layout

    layout = build_layout()
    rng = np.random.default_rng(0)
    rows, shards = [], []
    n_shards = (samples + SHARD_SIZE - 1) // SHARD_SIZE
    for k in range(n_shards):
        recs = []
        for i in range(k * SHARD_SIZE, min(samples, (k + 1) * SHARD_SIZE)):
            t = int(frames + rng.integers(-frames // 4, frames // 4))
            lm = rng.uniform(0.2, 0.8, (t, layout.num_joints, 3)).astype(np.float32)
            mask = rng.random((t, len(layout.groups))) > 0.15
            mask[:, 0] |= i % 50 != 0  # every 50th sample: pose often missing -> median / bbox fallbacks
            split = ("train", "dev", "test")[i % 3]
            sid = f"s{i:05d}"
            recs.append(KeypointRecord(sid, split, lm, mask, 25.0, 52, 65))
            rows.append({"sample_id": sid, "split": split, "fold": -1, "signer": f"p{i % 9}", "gloss": "A B C",
                         "text": "ein kurzer satz", "source": "x", "source_kind": "demo", "fps": 25.0,
                         "n_frames": t, "shard": k})
        path = work / f"shard-{k}.parquet"
        write_keypoints(path, recs, layout, {"stage": "keypoints"})
        shards.append(path)
    manifest = work / "manifest.parquet"
    pd.DataFrame(rows).to_parquet(manifest)
    return manifest, shards


def phoenix_manifest(path: Path) -> Path | None:
    folder = SHARED / "phoenix14t" / "manual"
    if not folder.exists():
        return None
    rows = []
    for split in ("train", "dev", "test"):
        df = pd.read_csv(folder / f"PHOENIX-2014-T.{split}.corpus.csv", sep="|")
        for name, speaker, gloss, text in zip(df["name"], df["speaker"], df["orth"], df["translation"]):
            rows.append({"sample_id": name, "split": split, "fold": -1, "signer": speaker, "gloss": gloss, "text": text,
                         "source": name, "source_kind": "frames", "fps": 25.0, "n_frames": 0, "shard": 0})
    pd.DataFrame(rows).to_parquet(path)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=120)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    sys.path.insert(0, str(REPO / "src"))
    from hatl import lm, stats
    from hatl.config import validate_config
    from hatl.datasets.manifest import read_manifest
    from hatl.vocab import VocabConfig, build_vocabularies

    cfg = validate_config({"datasets": {"bench": {"adapter": "generic"}}, "lm": {"memory": "200M"}})
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        manifest, shards = synthetic_shards(work, args.samples, args.frames)
        n_frames = int(pd.read_parquet(manifest)["n_frames"].sum())
        # In a child process (the `hatl normalise` command itself), so its peak RSS is the stage's own.
        (work / "config.yaml").write_text("datasets:\n  bench: {adapter: generic}\n")
        cmd = [sys.executable, "-m", "hatl.cli", "normalise", "--config", str(work / "config.yaml"), "--dataset", "bench",
               "--manifest", str(manifest), "--keypoints", *map(str, shards), "--out-dir", str(work / "normalised")]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        dt = time.perf_counter() - t0
        child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
        report = json.loads((work / "normalised" / "report.json").read_text())
        size = sum(f.stat().st_size for f in (work / "normalised").glob("*.parquet")) / 1e6
        print(f"normalise (hatl normalise, incl. start-up): {args.samples} samples, {n_frames} frames, 135 joints: "
              f"{dt:.2f} s = {args.samples / dt:.0f} samples/s, {n_frames / dt:.0f} frames/s; peak RSS {child_rss:.0f} MB; "
              f"output {size:.0f} MB; centring {sum_methods(report)}")
        t0 = time.perf_counter()
        rows = stats.quality_rows("bench", "demo", work / "normalised")
        print(f"stats quality report: {len(rows)} rows in {time.perf_counter() - t0:.2f} s")

        pm = phoenix_manifest(work / "phoenix.parquet")
        if pm is None:
            print("PHOENIX14T CSVs not found: skipping vocab/lm figures")
            return 0
        m = read_manifest(pm)
        ds = {"tasks": ["sign2gloss2text"], "text": {}}
        t0 = time.perf_counter()
        gloss, text, _ = build_vocabularies(m, ds, VocabConfig())
        print(f"vocab (whitespace, PHOENIX14T train): gloss {len(gloss)}, text {len(text)} entries in {time.perf_counter() - t0:.2f} s")
        t0 = time.perf_counter()
        _, sp_text, _ = build_vocabularies(m, ds, VocabConfig(tokenizer="sentencepiece", sentencepiece_vocab_size=1000))
        print(f"vocab (sentencepiece 1000): text {len(sp_text)} pieces in {time.perf_counter() - t0:.2f} s")
        t0 = time.perf_counter()
        rep = lm.build_lm(pm, work / "lm" / "main" / "text.4gram.arpa", work / "lm" / "main" / "text.4gram.bin", cfg, "bench")
        ev = rep["evaluation"]["dev"]
        size = (work / "lm" / "main" / "text.4gram.bin").stat().st_size / 1e6
        print(f"lm (4-gram, PHOENIX14T train {rep['training']['words']} words): {time.perf_counter() - t0:.2f} s, "
              f"binary {size:.1f} MB, dev perplexity {ev['perplexity']:.2f} ({ev['oov_words']} OOV words)")
        t0 = time.perf_counter()
        table = stats.table3(["phoenix14t"], [m], [{"adapter": "phoenix14t", "language": "German", "domain": "Weather", "text": {}}])
        print(f"stats Table 3 (PHOENIX14T, all splits): {time.perf_counter() - t0:.2f} s")
        print(table.to_string(index=False))
    return 0


def sum_methods(report: dict) -> str:
    total: dict[str, int] = {}
    for counts in report["centring"].values():
        for k, v in counts.items():
            total[k] = total.get(k, 0) + v
    return ", ".join(f"{k} {v}" for k, v in total.items())


if __name__ == "__main__":
    sys.exit(main())
