"""What the isl_kinect skeletons allow, signer-independently: a small recurrent reference classifier under the
same leave-one-signer-out protocol as ``bench/isl_loso.py`` (the ST-GCN++ pretraining).

Not part of the pipeline: it cannot become a backbone (it is not ST-GCN++ and reads frame differences, which the
3-channel backbone does not). It answers one question: when ST-GCN++ misses the goal, is it the data (signs
that Kinect v1's 20 joints cannot tell apart) or the model and its input (frames, pooling, width)? Its per-sign
accuracy and most frequent confusion are printed so the hard signs can be named.

Model: the 11 upper-body joints (legs and hips left out) prepared as ``load_signs`` does (centred, turned,
scaled by shoulder width, resampled to ``--frames``), positions and frame-to-frame differences, a linear layer
with ReLU, a 2-layer bidirectional GRU (hidden 128, dropout 0.3), the mean over time, dropout 0.5 and a linear
layer over the 30 signs. Training: AdamW (lr 2e-3, weight decay 0.01) with a one-cycle schedule, 30 epochs,
batch 64, label smoothing 0.1, a random per-sample size (0.85-1.15) and per-axis scale (0.9-1.1); seeded.

    python bench/isl_loso_reference.py --folder ../isl_kinect_full/RawDataset --held-out apurve gautam
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from isl_loso import load_release  # noqa: E402  (the same reader and preparation as the ST-GCN++ figures)

from hatl.models.graph import kinect20_graph  # noqa: E402

LOWER_BODY = ("knee", "ankle", "foot", "hip")
BATCH = 64
PEAK_LR = 2e-3  # AdamW with a one-cycle schedule peaking here


class RecurrentReference(torch.nn.Module):
    def __init__(self, features: int, classes: int, hidden: int = 128) -> None:
        super().__init__()
        self.inp = torch.nn.Linear(2 * features, hidden)
        self.rnn = torch.nn.GRU(hidden, hidden, num_layers=2, batch_first=True, bidirectional=True, dropout=0.3)
        self.out = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Linear(2 * hidden, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, T, features)
        motion = torch.diff(x, dim=1, prepend=x[:, :1])
        states, _ = self.rnn(torch.relu(self.inp(torch.cat([x, motion], -1))))
        return self.out(states.mean(1))


def scale_jitter(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random overall size and per-axis (x, y, z) scale per sample of (N, T, joints*3)."""
    n, _, d = x.shape
    size = rng.uniform(0.85, 1.15, (n, 1, 1))
    axes = np.repeat(rng.uniform(0.9, 1.1, (n, 1, 3)), d // 3, axis=2).reshape(n, 1, d)
    return (x * size * axes).astype(np.float32)


def held_out_predictions(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, classes: int,
                         epochs: int, seed: int) -> np.ndarray:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = RecurrentReference(x.shape[2], classes)
    opt = torch.optim.AdamW(model.parameters(), lr=PEAK_LR, weight_decay=1e-2)
    per_epoch = int(np.ceil(len(train) / BATCH))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, PEAK_LR, total_steps=epochs * per_epoch)
    x_train, y_train = x[train], torch.from_numpy(y[train])
    for _ in range(epochs):
        model.train()
        order = rng.permutation(len(train))
        for i in range(0, len(order), BATCH):
            idx = order[i:i + BATCH]
            loss = F.cross_entropy(model(torch.from_numpy(scale_jitter(x_train[idx], rng))), y_train[idx],
                                   label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(x[test])).argmax(1).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--held-out", nargs="+", default=None)
    parser.add_argument("--out", type=Path, default=None, help="append one JSON line per held-out signer")
    args = parser.parse_args()
    torch.set_num_threads(1)
    signs = load_release(args.folder, args.frames)
    names = list(kinect20_graph().joint_names)
    upper = [i for i, n in enumerate(names) if not any(part in n for part in LOWER_BODY)]
    x = signs.x[:, :, upper, :].reshape(len(signs.x), args.frames, -1).astype(np.float32)
    classes = len(signs.classes)
    confusion = np.zeros((classes, classes), dtype=int)
    accuracies = []
    for signer in args.held_out or sorted(set(signs.signers.tolist())):
        start = time.perf_counter()
        test = np.where(signs.signers == signer)[0]
        train = np.where(signs.signers != signer)[0]
        if len(test) == 0:
            raise SystemExit(f"no samples of signer {signer!r} in {args.folder}")
        predicted = held_out_predictions(x, signs.y, train, test, classes, args.epochs, args.seed)
        np.add.at(confusion, (signs.y[test], predicted), 1)
        row = {"held_out_signer": signer, "accuracy": float((predicted == signs.y[test]).mean()),
               "distinct_predictions": int(len(set(predicted.tolist()))), "test_samples": int(len(test)),
               "chance": 1 / classes, "frames": args.frames, "epochs": args.epochs, "seed": args.seed,
               "seconds": round(time.perf_counter() - start, 1)}
        accuracies.append(row["accuracy"])
        print(f"{signer}: accuracy {row['accuracy']:.3f} distinct {row['distinct_predictions']} "
              f"{row['seconds']:.0f} s", flush=True)
        if args.out:
            with open(args.out, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
    print(f"mean accuracy {np.mean(accuracies):.4f} over {len(accuracies)} held-out signer(s) "
          f"(chance {1 / classes:.3f})")
    for i, sign in enumerate(signs.classes):
        if confusion[i].sum() == 0:
            continue
        others = confusion[i].copy()
        others[i] = 0
        j = int(others.argmax())
        mistaken = (f"most often taken for {signs.classes[j]} ({others[j]} of {confusion[i].sum()})"
                    if others[j] else "never mistaken")
        print(f"{sign:>12}: accuracy {confusion[i, i] / confusion[i].sum():.2f}, {mistaken}")


if __name__ == "__main__":
    main()
