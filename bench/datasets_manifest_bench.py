"""Wall time and peak memory of the manifest stage at release scale.

* phoenix14t (synthetic): a release with the real PHOENIX14T row counts (7096/519/642 = 8257 samples) and
  FRAMES empty PNG files per sample (the official release averages ~140; counting needs names only), half the
  ``video`` column in the ``<name>/1/*.png`` form; measures the frame-folder scan.
* medasl (synthetic): 2000 sentences (MedASL2000 scale) of NPY_FRAMES per-frame 1662-value .npy files.
* real annotations when ../shared/data is present: PHOENIX14T (annotation-only) and Isharah-2000 SI/US.

Usage: .venv/bin/python bench/datasets_manifest_bench.py [--frames 40] [--npy-frames 100]
(--frames 140 writes 1.16M files: ~100 s to create, minutes to delete.)
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"

from hatl.config import validate_config  # noqa: E402
from hatl.datasets.manifest import build_manifest, write_manifest  # noqa: E402

PHOENIX_COUNTS = {"train": 7096, "dev": 519, "test": 642}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_phoenix(root: Path, frames: int) -> None:
    ann = root / "annotations" / "manual"
    ann.mkdir(parents=True)
    k = 0
    for split, n in PHOENIX_COUNTS.items():
        lines = ["name|video|start|end|speaker|orth|translation"]
        for _ in range(n):
            name = f"sample-{k:05d}"
            official = k % 2 == 0
            lines.append(f"{name}|{name}{'/1' if official else ''}/*.png|-1|-1|Signer{k % 9:02d}|A B C|a b c d")
            folder = root / "features" / "fullFrame-210x260px" / split / name
            folder.mkdir(parents=True)
            for i in range(frames):
                (folder / f"images{i + 1:04d}.png").touch()
            k += 1
        (ann / f"PHOENIX-2014-T.{split}.corpus.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def make_medasl(root: Path, sentences: int, frames: int) -> None:
    (root / "Annotations").mkdir(parents=True)
    lines = ["Text,Gloss,NpyFilesRoot"]
    frame = np.zeros(1662)
    for s in range(sentences):
        gloss = f"GLOSS {s} HOW?"
        lines.append(f"text {s},{gloss},/{gloss}/*.npy")
        folder = root / "Videos" / gloss
        folder.mkdir(parents=True)
        for i in range(frames):
            np.save(folder / f"{i}.npy", frame)
    (root / "Annotations" / "Gloss-Text Annotations.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def timed(config: dict, dataset: str, out: Path) -> tuple[float, int]:
    start = time.perf_counter()
    manifest = build_manifest(config, dataset)
    write_manifest(manifest, out / f"{dataset}.parquet", out / f"{dataset}.splits.tsv")
    return time.perf_counter() - start, len(manifest.frame)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40, help="PNGs per synthetic PHOENIX sample (the release averages ~140; scan time grows with it)")
    parser.add_argument("--npy-frames", type=int, default=100, help=".npy frames per synthetic MedASL sentence")
    parser.add_argument("--medasl-sentences", type=int, default=2000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        datasets: dict[str, dict] = {}
        t = time.perf_counter()
        make_phoenix(tmp / "phoenix", args.frames)
        make_medasl(tmp / "medasl", args.medasl_sentences, args.npy_frames)
        print(f"synthetic data written in {time.perf_counter() - t:.1f} s "
              f"({8257 * args.frames} PNGs, {args.medasl_sentences * args.npy_frames} .npy)")
        datasets["phoenix_synthetic"] = {"adapter": "phoenix14t", "root": str(tmp / "phoenix")}
        datasets["medasl_synthetic"] = {"adapter": "medasl", "root": str(tmp / "medasl"), "cross_validation": {}}
        if SHARED.is_dir():
            datasets["phoenix_real_annotations"] = {"adapter": "phoenix14t", "root": str(SHARED / "phoenix14t"),
                                                    "annotations": "manual", "tasks": ["gloss2text"]}
            for protocol in ("SI", "US"):
                datasets[f"isharah2000_{protocol}"] = {"adapter": "isharah", "protocol": protocol, "tasks": [],
                                                       "root": str(SHARED / "isharah" / "isharah2000")}
        config = validate_config({"datasets": datasets})
        print(f"{'dataset':28s} {'samples':>8s} {'seconds':>8s} {'samples/s':>10s}")
        for name in datasets:
            seconds, n = timed(config, name, tmp / "out")
            print(f"{name:28s} {n:8d} {seconds:8.2f} {n / seconds:10.0f}")
    print(f"peak RSS of the process: {peak_rss_mib():.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
