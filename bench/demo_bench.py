"""Demo generator figures: generation time per stand-in, and learnability checks.

    .venv/bin/python bench/demo_bench.py [--config config/config.yaml] [--datasets phoenix14t ...]
                                         [--ctc-epochs N]

For each demo dataset: time to generate it in memory (keypoints + clips) and its size; then gloss
classification from the ground-truth gloss segments (three frames of each segment, shoulder-normalised
x, y): nearest centroid and a one-hidden-layer MLP trained on the training split, scored on dev (test under
cross-validation), against the majority-class rate. High MLP accuracy on held-out samples (unseen signers
for the Isharah stand-in) shows every gloss has a learnable motion of its own. With ``--ctc-epochs N`` a
tiny bidirectional GRU with a CTC head is also trained on whole sequences (no alignment) and its dev gloss
error rate is printed (slow on 2 busy cores).
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from hatl.config import load_config
from hatl.demo.generator import generate_demo, gloss_frames
from hatl.demo.grammar import sign_key

REPO = Path(__file__).resolve().parents[1]


def features(rec, layout) -> np.ndarray:
    """Centre on the shoulder midpoint, scale by shoulder width (as the normalise stage does), flatten x, y."""
    lm = rec.landmarks[..., :2].astype(np.float64).copy()
    pose = layout.group_slices()["pose"]
    sh = lm[:, pose][:, [11, 12]]
    centre = sh.mean(axis=1, keepdims=True)
    scale = np.linalg.norm(sh[:, 0] - sh[:, 1], axis=1)[:, None, None] + 1e-6
    out = (lm - centre) / scale
    for gi, group in enumerate(layout.groups):
        out[~rec.mask[:, gi], layout.group_slices()[group]] = 0.0
    return out.reshape(len(out), -1).astype(np.float32)


def edit_distance(a: list[int], b: list[int]) -> int:
    d = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, y in enumerate(b, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (x != y))
    return d[len(b)]


def learnability(data, epochs: int, seed: int = 0) -> tuple[float, float, float]:
    torch.manual_seed(seed)
    plans = {p.sample_id: p for p in data.plans}
    vocab = {g: i + 1 for i, g in enumerate(sorted({g for p in data.plans for g in p.sentence.gloss}))}
    train_split = "trainval" if any(p.split == "trainval" for p in data.plans) else "train"
    dev_split = "test" if train_split == "trainval" else "dev"
    sets = {s: [(features(r, data.layout), [vocab[g] for g in plans[r.sample_id].sentence.gloss])
                for r in data.records if r.split == s] for s in (train_split, dev_split)}
    dim = sets[train_split][0][0].shape[1]

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = torch.nn.Linear(dim, 96)
            self.gru = torch.nn.GRU(96, 96, batch_first=True, bidirectional=True)
            self.out = torch.nn.Linear(192, len(vocab) + 1)

        def forward(self, x):
            h, _ = self.gru(torch.relu(self.proj(x)))
            return self.out(h).log_softmax(-1)

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)

    def batches(items, size, shuffle):
        order = np.random.default_rng(seed).permutation(len(items)) if shuffle else np.arange(len(items))
        for i in range(0, len(items), size):
            chunk = [items[j] for j in order[i : i + size]]
            t = max(len(x) for x, _ in chunk)
            x = torch.zeros(len(chunk), t, dim)
            for k, (f, _) in enumerate(chunk):
                x[k, : len(f)] = torch.from_numpy(f)
            yield x, chunk

    started = time.perf_counter()
    for _ in range(epochs):
        net.train()
        for x, chunk in batches(sets[train_split], 16, True):
            logp = net(x).transpose(0, 1)
            targets = torch.tensor([g for _, y in chunk for g in y])
            loss = ctc(logp, targets, torch.tensor([len(f) for f, _ in chunk]),
                       torch.tensor([len(y) for _, y in chunk]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    train_s = time.perf_counter() - started
    net.eval()
    errors = words = 0
    with torch.no_grad():
        for x, chunk in batches(sets[dev_split], 32, False):
            best = net(x).argmax(-1)
            for k, (f, y) in enumerate(chunk):
                seq = best[k, : len(f)].tolist()
                hyp = [s for i, s in enumerate(seq) if s != 0 and (i == 0 or s != seq[i - 1])]
                errors += edit_distance(hyp, y)
                words += len(y)
    # baseline: the training split's most frequent gloss sequence of typical length
    common = [g for g, _ in Counter(g for _, y in sets[train_split] for g in y).most_common(1)]
    base = sum(edit_distance(common * max(1, round(np.mean([len(y) for _, y in sets[train_split]]))), y)
               for _, y in sets[dev_split])
    return errors / words, base / words, train_s


def segment_accuracy(data, epochs: int = 150, seed: int = 0) -> tuple[float, float, float, int, int]:
    """Nearest-centroid and MLP accuracy of gloss classification from ground-truth segments."""
    plans = {p.sample_id: p for p in data.plans}
    parts: dict[str, list[tuple[np.ndarray, str]]] = {}
    for rec in data.records:
        feats = features(rec, data.layout)
        for gloss, first, last in gloss_frames(data, plans[rec.sample_id]):
            picks = feats[np.linspace(first, last, 3).round().astype(int)].ravel()
            parts.setdefault(rec.split, []).append((picks, sign_key(gloss)))
    train = parts.get("train") or parts["trainval"]
    held = parts.get("dev") or parts["test"]
    labels = {g: i for i, g in enumerate(sorted({g for _, g in train}))}
    x = np.stack([f for f, _ in train])
    y = np.array([labels[g] for _, g in train])
    xh = np.stack([f for f, _ in held])
    yh = np.array([labels.get(g, -1) for _, g in held])
    # nearest centroid on the shoulder-normalised positions themselves (z-scoring would inflate face jitter)
    centroids = np.stack([x[y == k].mean(0) for k in range(len(labels))])
    nearest = np.argmin(((xh[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    mu, sd = x.mean(0), x.std(0) + 1e-3
    x, xh = (x - mu) / sd, (xh - mu) / sd
    torch.manual_seed(seed)
    mlp = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 128), torch.nn.ReLU(), torch.nn.Linear(128, len(labels)))
    opt = torch.optim.Adam(mlp.parameters(), 1e-3, weight_decay=1e-4)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    for _ in range(epochs):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(mlp(xt), yt).backward()
        opt.step()
    with torch.no_grad():
        pred = mlp(torch.tensor(xh, dtype=torch.float32)).argmax(1).numpy()
    majority = np.bincount(y).argmax()
    return float((nearest == yh).mean()), float((pred == yh).mean()), float((yh == majority).mean()), len(x), len(xh)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "config" / "config.yaml"))
    parser.add_argument("--datasets", nargs="*", default=["phoenix14t", "isharah", "medasl"])
    parser.add_argument("--ctc-epochs", type=int, default=0, help="also train a tiny GRU-CTC for N epochs")
    args = parser.parse_args()
    torch.set_num_threads(2)
    config = load_config(args.config)
    for dataset in args.datasets:
        started = time.perf_counter()
        data = generate_demo(config, dataset)
        seconds = time.perf_counter() - started
        frames = sum(r.n_frames for r in data.records)
        print(f"{dataset}: generated {len(data.records)} keypoint samples ({frames} frames, "
              f"{data.layout.num_joints} joints) + {len(data.clips)} clips in {seconds:.1f} s "
              f"({frames / seconds:.0f} frames/s)")
        nearest, mlp, majority, n_train, n_held = segment_accuracy(data)
        print(f"{dataset}: gloss segments {n_train} train / {n_held} held out: nearest-centroid {nearest:.1%}, "
              f"MLP {mlp:.1%}, majority class {majority:.1%}")
        if args.ctc_epochs:
            wer, base, train_s = learnability(data, args.ctc_epochs)
            print(f"{dataset}: tiny GRU-CTC after {args.ctc_epochs} epochs ({train_s:.0f} s): dev gloss error "
                  f"{wer:.1%} (most-frequent-gloss baseline {base:.1%})")


if __name__ == "__main__":
    main()
