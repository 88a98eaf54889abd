"""Leave-one-signer-out accuracy of ``hatl pretrain-supervised`` on the full isl_kinect release (2,700 files).

Reads the release folder directly (``RawDataset`` of Boyinglby/ADM_SignLangRecog, brought beside the project,
never committed) with the adapter's reader, prepares every file as ``load_signs`` does and runs ``loso()``
for the held-out signers asked, with ``backbone.pretrain.supervised`` from the config plus ``--set key=value``
overrides (YAML values). Prints one line per held-out signer and the mean, and appends JSON lines to ``--out``.

    python bench/isl_loso.py --folder ../isl_kinect_full/RawDataset --held-out parveen rajat \
        --set base_channels=16 --set tilt=0.1 --out /tmp/loso.jsonl

With ``--set streams=[joint,bone,motion] --probs DIR`` each stream's held-out softmax is kept, and
``--ensembles --probs DIR`` then prints the accuracy of every subset of those streams without training again.

``--variants DIR`` trains the same models and keeps, for each, the held-out softmax under four evaluations (one
subfolder each, scored afterwards with ``--ensembles --probs DIR/<variant>``): ``plain`` (what ``loso`` does),
``turns`` (also averaged over the yaw turns in ``TURNS``), ``adabn`` (BatchNorm statistics recomputed on the held-out
signer's own samples, labels unused: unsupervised signer adaptation, a different protocol from plain LOSO) and
``adabn_turns`` (both). Each model's weights are kept too (DIR/models/<signer>.<stream>.pt); a stream saved under
every variant is not trained again. With ``--set average_from=F`` the models kept are the averaged weights, and
the same runs' last weights are kept beside them as a variants folder of their own, DIR/last (one training compares
the two). ``--variants DIR --enrol K...`` then trains nothing: from the kept models it scores the stream ensemble
on each held-out signer's samples when BatchNorm statistics come from only K of them, drawn at random (labels
unused; the K are left out of the score), beside the plain models on the same samples.
``--variants DIR --sample-norm N...`` also trains nothing: every BatchNorm of the kept models normalises each held-out
sample by its own statistics mixed with the training ones at N : 1 (prediction-time BatchNorm; each sample is scored
from itself and the training signers alone, so the protocol stays plain LOSO). ``--seeds DIR...`` scores the ensemble
of the streams of several ``--variants`` runs (``--seed``: one per seed) under each variant saved there,
``sample_norm_N<N>`` included; ``DIR:motion`` takes only that run's motion stream, so streams trained in runs of their
own ensemble too (``--seeds joint/:joint motion/:motion``). Every ensemble (``--ensembles``, ``--seeds``,
``--sample-norm``) combines its models' softmax by the config's ``ensemble`` (``geometric`` in config.yaml), or
``--set ensemble=arithmetic`` for their mean. ``--signing-space`` trains nothing: it prints each signer's median arm
and hand heights, the spread that ``arm_turn`` is aimed at.
"""

from __future__ import annotations

import argparse
import copy
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
from hatl.devices import resolve_device
from hatl.io import atomic_path
from hatl.models import pretrain_supervised as sup
from hatl.models.graph import Graph, kinect20_graph
from hatl.models.pretrain import _Classifier
from hatl.models.stgcnpp import STGCNPPConfig


def load_release(folder: Path, frames: int, size: str = "shoulder_width",
                 exclude: tuple[str, ...] = ()) -> sup.SignSet:
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
        xs.append(sup.prepare(seq, graph, frames, size, exclude))
        labels.append(sign)
        signers.append(signer)
        ids.append(sample_id)
    classes = sorted(set(labels))
    index = {c: i for i, c in enumerate(classes)}
    return sup.SignSet(np.stack(xs), np.array([index[c] for c in labels]), np.array(signers), classes, ids)


SPACE_JOINTS = ("pose.right_elbow", "pose.right_wrist", "kinect.right_hand", "pose.left_wrist")


def signing_space(signs: sup.SignSet, graph: Graph) -> dict[str, dict[str, float]]:
    """Where each signer holds the arms: per signer and joint of ``SPACE_JOINTS``, the median over the signer's
    samples of the joint's mean height (y) over the frames, in the prepared units (shoulder widths above the centre
    joint). The ``arm_turn`` augmentation is aimed at the spread of these between signers."""
    names = list(graph.joint_names)
    index = [names.index(joint) for joint in SPACE_JOINTS]
    heights = signs.x[:, :, index, 1].mean(axis=1)  # (samples, joints)
    return {str(signer): dict(zip(SPACE_JOINTS, np.median(heights[signs.signers == signer], axis=0).tolist()))
            for signer in sorted(set(signs.signers.tolist()))}


def keep_probs(folder: Path | None, signs: sup.SignSet):
    """``loso``'s on_stream hook: save each held-out softmax (and the true signs) under ``folder``."""
    if folder is None:
        return None

    def save(signer: str, stream: str, probs: np.ndarray) -> None:
        save_softmax(folder, signer, stream, signs.y[signs.signers == signer], probs)
    return save


def save_softmax(folder: Path, signer: str, stream: str, truth: np.ndarray, probs: np.ndarray) -> None:
    """One held-out softmax as ``folder``/<signer>.<stream>.npy beside <signer>.truth.npy: the layout that
    ``--ensembles`` and ``--seeds`` score."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in ((f"{signer}.truth.npy", truth), (f"{signer}.{stream}.npy", probs.astype(np.float32))):
        with atomic_path(folder / name) as tmp:  # a run stopped mid-write (a grid's time limit) leaves no cut file
            np.save(tmp, array)


def ensemble_accuracies(folder: Path, rule: str = "arithmetic") -> dict[str, dict[str, float]]:
    """Accuracy of every non-empty subset of the streams saved under ``folder`` (``--probs``), by held-out signer:
    {signer: {"joint+motion": accuracy, ...}} (the subset's softmax combined by ``rule``, as ``loso`` ensembles)."""
    out: dict[str, dict[str, float]] = {}
    for truth_path in sorted(folder.glob("*.truth.npy")):
        signer = truth_path.name.split(".")[0]
        truth = np.load(truth_path)
        probs = {p.name.split(".")[1]: np.load(p) for p in folder.glob(f"{signer}.*.npy") if p != truth_path}
        streams = [s for s in sup.STREAMS if s in probs]  # single streams: a fused one's name has "+" as well
        out[signer] = {"+".join(combo): float((sup.combine([probs[s] for s in combo], rule).argmax(1) == truth).mean())
                       for r in range(1, len(streams) + 1) for combo in itertools.combinations(streams, r)}
    return out


LAST_WEIGHTS = "last"  # with average_from: the subfolder holding the same runs' last (not averaged) weights
TURNS = (-0.15, 0.0, 0.15)  # test-time yaw views, radians: half the training augmentation's range
VARIANTS = ("plain", "turns", "adabn", "adabn_turns")


def turned(x: np.ndarray, angle: float) -> np.ndarray:
    """Prepared positions (..., 3) turned by ``angle`` about the vertical, as ``augment`` turns them."""
    return (x @ sup.rotation(angle, 0.0, 0.0).T).astype(np.float32)


def variant_probs(model: torch.nn.Module, x: np.ndarray, graph: Graph, cfg: sup.SupervisedConfig,
                  stream: str) -> dict[str, np.ndarray]:
    """The held-out softmax of one trained model under each evaluation in ``VARIANTS``."""

    def views(m: torch.nn.Module) -> tuple[np.ndarray, np.ndarray]:
        plain = sup.probabilities(m, x, graph, cfg, stream)
        turns = sum(sup.probabilities(m, turned(x, a), graph, cfg, stream) for a in TURNS) / len(TURNS)
        return plain, turns

    adapted = copy.deepcopy(model)  # AdaBN (``adapt_batchnorm``): the held-out signer's statistics, no labels read
    sup.adapt_to_signer(adapted, x, graph, cfg, stream)
    return dict(zip(VARIANTS, (*views(model), *views(adapted))))


def train_variants(signs: sup.SignSet, arch: STGCNPPConfig, cfg: sup.SupervisedConfig, seed: int,
                   held_out: list[str], folder: Path) -> None:
    """One model per held-out signer and stream (as ``loso`` trains them), its softmax saved per variant."""
    graph = kinect20_graph()
    for signer in held_out:
        test = signs.signers == signer
        for stream in cfg.streams:
            weights = folder / "models" / f"{signer}.{stream}.pt"
            if weights.exists() and all((folder / v / f"{signer}.{stream}.npy").exists() for v in VARIANTS):
                print(f"{signer} {stream}: saved before under {folder}", flush=True)
                continue
            start = time.perf_counter()
            trained = sup.fit(signs.x[~test], signs.y[~test], len(signs.classes), graph, arch, cfg, seed, stream,
                              signs.signers[~test])
            # with average_from the same run's last weights are kept as a variants folder of their own (LAST_WEIGHTS),
            # first, so the folder's own weights still mark the stream as done
            kept = [(folder, trained.last)] if trained.averaged is None else [
                (folder / LAST_WEIGHTS, trained.last), (folder, trained.averaged)]
            for where, model in kept:
                accuracy = {}
                for name, probs in variant_probs(model, signs.x[test], graph, cfg, stream).items():
                    save_softmax(where / name, signer, stream, signs.y[test], probs)
                    accuracy[name] = round(float((probs.argmax(1) == signs.y[test]).mean()), 3)
                # the weights last and whole: with them present, the stream counts as done when resuming
                path = where / "models" / f"{signer}.{stream}.pt"
                path.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(path) as tmp:
                    torch.save(model.state_dict(), tmp)
                named = "" if trained.signer_accuracy is None else f", signer named {trained.signer_accuracy:.3f}"
                print(f"{signer} {stream}{' (last weights)' if where != folder else ''}: train "
                      f"{trained.train_accuracy:.3f}{named}, held-out {accuracy}, {time.perf_counter() - start:.0f} s",
                      flush=True)


def load_model(path: Path, graph: Graph, arch: STGCNPPConfig, n_classes: int, stream: str,
               cfg: sup.SupervisedConfig) -> _Classifier:
    """A kept model in eval mode on ``cfg.device``, built as ``cfg`` trained it (``head``, ``sample_statistics``)."""
    model = sup.new_classifier(graph, arch, n_classes, cfg, stream)
    model.load_state_dict(torch.load(path, map_location="cpu"))
    return model.to(resolve_device(cfg.device, "backbone.pretrain.supervised.device (--set device)")).eval()


def enrolment_accuracies(signs: sup.SignSet, arch: STGCNPPConfig, cfg: sup.SupervisedConfig, folder: Path,
                         size: int, seed: int) -> dict[str, dict[str, float]]:
    """{signer: {"plain": accuracy, "adabn": accuracy}} of the ensemble of the streams kept under ``folder``/models,
    scored on the held-out signer's samples outside a random enrolment set of ``size``; "adabn" recomputes every
    BatchNorm's statistics on the enrolment samples (labels unused) first. Signers without every stream are left out."""
    graph = kinect20_graph()
    out = {}
    for signer in kept_signers(signs, cfg, folder):
        paths = {stream: folder / "models" / f"{signer}.{stream}.pt" for stream in cfg.streams}
        order = np.random.default_rng(seed).permutation(np.flatnonzero(signs.signers == signer))
        if not 2 <= size < len(order):  # BatchNorm statistics need two samples; the score needs one left
            raise ValueError(f"enrolment size {size}: signer {signer} has {len(order)} samples (need 2 <= K < that)")
        enrol, rest = order[:size], order[size:]
        plain = adapted = np.zeros((len(rest), len(signs.classes)))
        for stream, path in paths.items():
            model = load_model(path, graph, arch, len(signs.classes), stream, cfg)
            plain = plain + sup.probabilities(model, signs.x[rest], graph, cfg, stream)
            sup.adapt_to_signer(model, signs.x[enrol], graph, cfg, stream)
            adapted = adapted + sup.probabilities(model, signs.x[rest], graph, cfg, stream)
        truth = signs.y[rest]
        out[signer] = {"plain": float((plain.argmax(1) == truth).mean()),
                       "adabn": float((adapted.argmax(1) == truth).mean())}
    return out


def with_sample_statistics(model: torch.nn.Module, prior: float) -> torch.nn.Module:
    """A copy of ``model`` (eval mode) whose every BatchNorm normalises each sample by its own statistics mixed with
    the training ones at 1 : ``prior`` (prediction-time BatchNorm, Schneider et al. 2020, prior strength N; the
    library's :class:`SampleMixedNorm` with own weight 1 / (N + 1)). Each sample is classified from itself and the
    training data alone, so the protocol stays plain LOSO."""
    return sup.mix_sample_statistics(copy.deepcopy(model), 1.0 / (prior + 1.0)).eval()


def kept_signers(signs: sup.SignSet, cfg: sup.SupervisedConfig, folder: Path,
                 only: list[str] | None = None) -> list[str]:
    """Held-out signers (all, or those in ``only``) with a kept model for every stream of ``cfg`` under
    ``folder``/models."""
    return [s for s in sorted(set(signs.signers.tolist())) if only is None or s in only
            if all((folder / "models" / f"{s}.{stream}.pt").exists() for stream in cfg.streams)]


def sample_norm_accuracies(signs: sup.SignSet, arch: STGCNPPConfig, cfg: sup.SupervisedConfig, folder: Path,
                           priors: list[float], only: list[str] | None = None
                           ) -> dict[str, dict[str, tuple[float, int]]]:
    """{signer: {"plain": (accuracy, distinct predictions), "sample_norm_N<prior>": ...}} of the stream ensemble
    kept under ``folder``/models, each BatchNorm mixing every held-out sample's own statistics with the training
    ones, the streams combined by ``cfg.ensemble``. Each stream's softmax is saved as a variant of its own
    (``folder``/sample_norm_N<prior>/), which ``--seeds`` scores; "plain" is read from the softmax ``train_variants``
    saved with the weights."""
    graph = kinect20_graph()
    out = {}
    for signer in kept_signers(signs, cfg, folder, only):
        test = signs.signers == signer
        per_stream = {"plain": [np.load(folder / "plain" / f"{signer}.{stream}.npy") for stream in cfg.streams]}
        for stream in cfg.streams:
            model = load_model(folder / "models" / f"{signer}.{stream}.pt", graph, arch, len(signs.classes), stream,
                               cfg)
            for prior in priors:
                name = sample_norm_variant(prior)
                with torch.no_grad():
                    probs = sup.probabilities(with_sample_statistics(model, prior), signs.x[test], graph, cfg, stream)
                save_softmax(folder / name, signer, stream, signs.y[test], probs)
                per_stream.setdefault(name, []).append(probs)
        preds = {name: sup.combine(probs, cfg.ensemble).argmax(1) for name, probs in per_stream.items()}
        out[signer] = {name: (float((pred == signs.y[test]).mean()), len(set(pred.tolist())))
                       for name, pred in preds.items()}
    return out


def sample_norm_variant(prior: float) -> str:
    return f"sample_norm_N{prior:g}"


def seed_ensemble_accuracies(runs: list[tuple[Path, tuple[str, ...]]], variant: str,
                             rule: str = "arithmetic") -> dict[str, tuple[float, int]]:
    """{signer: (accuracy, distinct predictions)} of the softmax, combined by ``rule``, of every (folder, streams)
    run in ``runs``: each folder's ``streams`` saved under ``folder``/``variant`` (one --variants run per seed, or per
    stream when the streams were trained apart); a signer missing one of them (a run still under way) is left out."""
    out = {}
    for truth_path in sorted((runs[0][0] / variant).glob("*.truth.npy")):
        signer = truth_path.name.split(".")[0]
        files = [folder / variant / f"{signer}.{stream}.npy" for folder, streams in runs for stream in streams]
        if not all(p.exists() for p in files):
            continue
        pred = sup.combine([np.load(p) for p in files], rule).argmax(1)
        out[signer] = (float((pred == np.load(truth_path)).mean()), len(set(pred.tolist())))
    return out


def parse_run(text: str, streams: tuple[str, ...]) -> tuple[Path, tuple[str, ...]]:
    """``DIR`` (the streams of --set streams) or ``DIR:stream,stream`` (that run's own streams) as (folder, streams);
    a stream the library does not know is refused, so a typo cannot score an ensemble of nothing."""
    folder, _, own = text.rpartition(":") if ":" in text else (text, "", "")
    chosen = tuple(own.split(",")) if own else streams
    for stream in chosen:
        try:
            sup.stream_parts(stream)
        except ValueError as err:
            raise SystemExit(f"--seeds {text}: {err}") from None
    return Path(folder), chosen


def chosen_on_other_folds(tables: dict[str, dict[str, tuple[float, int]]]) -> dict[str, tuple[str, float, int]]:
    """{signer: (variant, accuracy, distinct)}: each held-out signer scored under the variant of ``tables`` with the
    best mean accuracy over the other signers (leave-one-fold-out choice, so a signer's own score never picks its
    setting); only signers present in every table; ties go to the first variant."""
    signers = sorted(set.intersection(*(set(t) for t in tables.values()))) if tables else []
    out = {}
    for signer in signers:
        others = [s for s in signers if s != signer]
        best = max(tables, key=lambda v: np.mean([tables[v][s][0] for s in others]) if others else 0.0)
        out[signer] = (best, *tables[best][signer])
    return out


def print_ensembles(folder: Path, rule: str = "arithmetic") -> None:
    table = ensemble_accuracies(folder, rule)
    if not table:
        raise SystemExit(f"no saved softmax (*.truth.npy) under {folder}")
    combos = sorted({c for row in table.values() for c in row}, key=lambda c: (c.count("+"), c))
    print(f"| held-out signer ({rule} mean) | " + " | ".join(combos) + " |")
    print("|---" * (len(combos) + 1) + "|")
    for signer, row in table.items():
        print(f"| {signer} | " + " | ".join(f"{row[c]:.3f}" if c in row else "-" for c in combos) + " |")
    means = [np.mean([row[c] for row in table.values() if c in row]) for c in combos]
    print(f"| mean of {len(table)} | " + " | ".join(f"{m:.3f}" for m in means) + " |")


def print_seed_ensembles(runs: list[tuple[Path, tuple[str, ...]]], rule: str = "arithmetic") -> None:
    folders = [folder for folder, _ in runs]
    saved = sorted((p.name for p in folders[0].iterdir() if p.is_dir() and p.name != "models"),
                   key=lambda name: (len(name), name))  # sample_norm_N4 before sample_norm_N16
    tables = {v: seed_ensemble_accuracies(runs, v, rule) for v in [*[v for v in VARIANTS if v in saved],
                                                                   *[v for v in saved if v not in VARIANTS]]}
    if not any(tables.values()):
        raise SystemExit(f"no held-out signer has saved softmax in every one of {', '.join(map(str, folders))}")
    missing = [v for v, table in tables.items() if not table]
    if missing:  # e.g. --sample-norm run on some of the folders only: a column of no signers says nothing
        print(f"not scored (no held-out signer saved in every run): {', '.join(missing)}")
    tables = {v: table for v, table in tables.items() if table}
    signers = sorted({s for table in tables.values() for s in table})
    described = " + ".join(f"{folder.name}:{','.join(streams)}" for folder, streams in runs)
    print(f"| held-out signer ({len(runs)} run(s), {rule} mean: {described}) | " + " | ".join(tables) + " |")
    print("|---" * (len(tables) + 1) + "|")
    for signer in signers:
        print(f"| {signer} | " + " | ".join(f"{t[signer][0]:.3f} ({t[signer][1]} distinct)" if signer in t else "-"
                                             for t in tables.values()) + " |")
    print("| mean | " + " | ".join(f"{np.mean([a for a, _ in t.values()]):.4f} ({len(t)} signers)"
                                     for t in tables.values()) + " |")
    priors = {v: t for v, t in tables.items() if v.startswith("sample_norm_N")}
    if len(priors) > 1:  # N for prediction-time BatchNorm picked without the held-out signer's own score
        picked = chosen_on_other_folds(priors)
        print(f"sample_norm with N chosen on the other folds: mean {np.mean([a for _, a, _ in picked.values()]):.4f}"
              f" ({len(picked)} signers); " + ", ".join(f"{s} {v.removeprefix('sample_norm_')} {a:.3f}"
                                                      for s, (v, a, _) in picked.items()))


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
    parser.add_argument("--seed", type=int, default=None, help="training seed (default: the config's seed)")
    parser.add_argument("--tag", default="")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--probs", type=Path, default=None,
                        help="folder for each held-out signer's per-stream softmax (<signer>.<stream>.npy, rows in "
                             "file order; <signer>.truth.npy the signs) to score other stream ensembles")
    parser.add_argument("--variants", type=Path, default=None,
                        help="train and keep each model (DIR/models) and its held-out softmax under every evaluation "
                             "in VARIANTS, one subfolder each (DIR/<variant>/<signer>.<stream>.npy)")
    parser.add_argument("--enrol", type=int, nargs="+", default=None,
                        help="with --variants: score the kept models with BatchNorm statistics from K random samples "
                             "of each held-out signer (the rest scored)")
    parser.add_argument("--sample-norm", type=float, nargs="+", default=None, metavar="N",
                        help="with --variants: score the kept models with each BatchNorm mixing every held-out "
                             "sample's own statistics with the training ones at N : 1 (plain LOSO, per sample)")
    parser.add_argument("--seeds", nargs="+", default=None, metavar="DIR[:STREAM,...]",
                        help="train nothing: score the ensemble of the streams (--set streams=..., or those named "
                             "after DIR:) of every --variants DIR given (one per seed or stream), under each variant")
    parser.add_argument("--signing-space", action="store_true",
                        help="train nothing: print each signer's median arm and hand heights (signing_space)")
    parser.add_argument("--ensembles", action="store_true",
                        help="train nothing: print the accuracy of every stream subset saved under --probs")
    args = parser.parse_args()
    if args.ensembles and args.probs is None:
        parser.error("--ensembles reads the softmax saved under --probs")
    if (args.enrol or args.sample_norm) and args.variants is None:
        parser.error("--enrol and --sample-norm score the models kept under --variants DIR")
    if args.folder is None and not (args.seeds or args.ensembles):
        parser.error("--folder (the release's RawDataset) is required to train")
    torch.set_num_threads(1)
    config = load_config(args.config)
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    # through from_config, which turns YAML lists (drop_joints, streams) into the dataclass's tuples
    cfg = sup.SupervisedConfig.from_config(deep_merge(config, {"backbone": {"pretrain": {"supervised": overrides}}}))
    arch = STGCNPPConfig(base_channels=int(cfg.base_channels or args.width))
    seed = args.seed if args.seed is not None else int(config.get("seed", 1234))
    if args.ensembles:
        print_ensembles(args.probs, cfg.ensemble)
        return
    if args.seeds:
        print_seed_ensembles([parse_run(text, cfg.streams) for text in args.seeds], cfg.ensemble)
        return
    start = time.perf_counter()
    signs = load_release(args.folder, cfg.frames, cfg.body_size, cfg.drop_joints)
    print(f"{len(signs.y)} samples, {len(signs.classes)} signs, {len(set(signs.signers))} signers, "
          f"loaded in {time.perf_counter() - start:.0f} s; {asdict(cfg)} width {arch.base_channels}", flush=True)
    if args.signing_space:
        table = signing_space(signs, kinect20_graph())
        print("| signer | " + " | ".join(SPACE_JOINTS) + " |\n|---" + "|---" * len(SPACE_JOINTS) + "|")
        for signer, row in table.items():
            print(f"| {signer} | " + " | ".join(f"{h:.2f}" for h in row.values()) + " |")
        return
    if args.variants is not None and args.enrol:
        for size in args.enrol:
            table = enrolment_accuracies(signs, arch, cfg, args.variants, size, seed)
            for signer, row in table.items():
                print(f"enrol {size}: {signer} plain {row['plain']:.3f} adabn {row['adabn']:.3f}", flush=True)
            print(f"enrol {size}: mean of {len(table)} signers plain "
                  f"{np.mean([r['plain'] for r in table.values()]):.4f} "
                  f"adabn {np.mean([r['adabn'] for r in table.values()]):.4f}", flush=True)
        return
    if args.variants is not None and args.sample_norm:
        table = sample_norm_accuracies(signs, arch, cfg, args.variants, args.sample_norm, args.held_out)
        for signer, row in table.items():
            print(f"sample-norm: {signer} " + ", ".join(f"{k} {a:.3f} ({d} distinct)" for k, (a, d) in row.items()),
                  flush=True)
        names = list(next(iter(table.values()))) if table else []
        print(f"sample-norm: mean of {len(table)} signers " + ", ".join(
            f"{k} {np.mean([row[k][0] for row in table.values()]):.4f}" for k in names), flush=True)
        return
    if args.variants is not None:
        train_variants(signs, arch, cfg, seed, args.held_out or sorted(set(signs.signers.tolist())), args.variants)
        return
    rows = []
    settings = json.loads(json.dumps(asdict(cfg)))
    done = measured(args.out, settings, arch.base_channels, seed)
    for signer in args.held_out or sorted(set(signs.signers.tolist())):
        if signer in done:  # deterministic: the same settings, width and seed give the same row
            rows.append(done[signer])
            print(f"{args.tag} {signer}: accuracy {done[signer]['accuracy']:.3f} (measured before, {args.out})",
                  flush=True)
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
