"""The embedded demo datasets: seeded synthetic signing in the keypoint stage's format, plus a few video clips.

``generate_demo(config, dataset)`` plans the samples of one demo dataset (splits, signers, sentences),
synthesises each one and returns them in memory; ``write_demo`` writes the demo folder atomically:

* ``keypoints.parquet``: one row per keypoint sample, :mod:`hatl.keypoint_store` schema, configured layout;
* ``annotations.tsv``: id, split, fold, signer, gloss, text, kind (demo | video), source, fps, n_frames;
* ``clips/<id>.mp4``: rendered videos of a person-like figure (train split), for the resize/MediaPipe stages;
* ``README.txt`` (what was generated) and ``demo.json`` (counts and provenance).

Everything derives from ``stable_seed(config seed, dataset name)`` (SHA-256 based, the same on every
platform and process). The plan (split, signer, sentence of each id) is drawn from one stream; each sample's
motion, jitter and hand dropouts then come from streams seeded by its id alone, so synthesising samples in
another order or in separate processes gives the same arrays.
"""

from __future__ import annotations

import csv
import logging
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hatl.config import dataset_config, effective_config
from hatl.demo import body
from hatl.demo.grammar import GRAMMAR_NOTES, Sentence, is_reordered, sample_sentence, sign_key
from hatl.errors import ConfigError
from hatl.io import atomic_dir, write_json, write_text
from hatl.keypoint_store import KeypointRecord, write_keypoints
from hatl.landmarks import Layout, build_layout, select_from_groups
from hatl.provenance import provenance

log = logging.getLogger("hatl.demo")

ANNOTATION_COLUMNS: tuple[str, ...] = ("id", "split", "fold", "signer", "gloss", "text", "kind", "source", "fps",
                                       "n_frames")


@dataclass(frozen=True)
class Profile:
    """What a stand-in imitates: frame rate, signers, sentence style and how splits are drawn."""

    name: str
    fps: float
    n_signers: int
    signer_format: str  # str.format pattern for the signer id, given k (0-based) and n (1-based)
    max_glosses: int
    sentence_pool: int | None  # sentences repeated by many signers (Isharah); None: a fresh sentence per sample
    uses_protocol: bool  # Isharah's SI (unseen signers) / US (unseen sentences) protocols shape the splits


# Frame rates: half the real corpora's (PHOENIX14T 25 fps, Isharah and MedASL 30 fps). Signers sign at the real
# pace in seconds (body.SIGN_SECONDS: about 0.6 s per gloss), so a demo sentence lasts as long as a real one but
# has half the frames: about 8 frames per gloss, 2 encoder steps per gloss after the backbone's stride 4. The
# full rate (16 frames per gloss) would make every trainable-backbone demo run about 2.4x slower than the demo
# budget allows on CPU; the timing ratio (seconds per gloss) stays the real one.
PROFILES: dict[str, Profile] = {
    "phoenix14t": Profile("phoenix14t", 12.5, 9, "Signer{n:02d}", 9, None, False),
    "isharah": Profile("isharah", 15.0, 15, "{k:02d}", 4, 60, True),
    "medasl": Profile("medasl", 15.0, 1, "Signer{n:02d}", 6, None, False),
}


@dataclass(frozen=True)
class DemoSettings:
    train: int
    dev: int
    test: int
    min_frames: int
    max_frames: int
    clips: int
    width: int
    height: int

    @property
    def aspect(self) -> float:
        return self.height / self.width


def demo_settings(config: dict[str, Any], profile: str) -> DemoSettings:
    demo = config.get("demo", {})
    sizes = demo.get("samples", {}).get(profile, {})
    frames = demo.get("frames", {})
    size = demo.get("clip_size", {})
    settings = DemoSettings(
        train=int(sizes.get("train", 300)), dev=int(sizes.get("dev", 60)), test=int(sizes.get("test", 60)),
        min_frames=int(frames.get("min", 16)), max_frames=int(frames.get("max", 64)),
        clips=int(demo.get("clips_per_dataset", 3)),
        width=int(size.get("width", 210)), height=int(size.get("height", 260)),
    )
    if settings.min_frames > settings.max_frames:
        raise ConfigError(f"config key 'demo.frames': min ({settings.min_frames}) exceeds max ({settings.max_frames})")
    return settings


@dataclass(frozen=True)
class SamplePlan:
    sample_id: str
    split: str
    fold: int
    signer: int
    sentence: Sentence
    kind: str  # "demo" (keypoints) | "video" (rendered clip)


@dataclass
class DemoData:
    dataset: str
    profile: Profile
    settings: DemoSettings
    seed: int
    layout: Layout
    plans: list[SamplePlan]
    records: list[KeypointRecord]  # keypoint samples, in plan order
    clips: dict[str, np.ndarray] = field(default_factory=dict)  # clip id -> (T, H, W, 3) uint8 BGR frames
    signers: list[body.Signer] = field(default_factory=list)
    n_frames: dict[str, int] = field(default_factory=dict)
    missing_hand_frames: int = 0
    total_frames: int = 0
    config_seed: int = 0


def dataset_seed(config: dict[str, Any], dataset: str) -> int:
    return body.stable_seed(int(config.get("seed", 0)), dataset)


# --------------------------------------------------------------------------------------------- planning
def _unique_sentences(profile: Profile, rng: np.random.Generator, n: int) -> list[Sentence]:
    seen: dict[tuple, Sentence] = {}
    for _ in range(200 * n):
        s = sample_sentence(profile.name, rng, profile.max_glosses)
        seen.setdefault((s.gloss, s.text), s)
        if len(seen) == n:
            break
    return list(seen.values())


def _split_groups(n: int, dev: int, test: int) -> dict[str, list[int]]:
    """Partition 0..n-1 into train/dev/test groups (last ones held out), keeping every group non-empty."""
    n_test = max(1, min(test, n // 5 or 1))
    n_dev = max(1, min(dev, n // 5 or 1))
    idx = list(range(n))
    return {"train": idx[: n - n_dev - n_test], "dev": idx[n - n_dev - n_test : n - n_test], "test": idx[n - n_test :]}


def plan_samples(profile: Profile, settings: DemoSettings, ds_cfg: dict[str, Any], seed: int,
                 cv_seed: int) -> list[SamplePlan]:
    """Who signs what in which split. Keypoint samples are ``demo_NNNN``, clips ``clip_NN`` (training data)."""
    rng = np.random.default_rng(body.stable_seed(seed, "plan"))
    cv = ds_cfg.get("cross_validation")
    sizes = {"train": settings.train, "dev": settings.dev, "test": settings.test}
    pool = (_unique_sentences(profile, rng, profile.sentence_pool) if profile.sentence_pool else None)
    signers = {s: list(range(profile.n_signers)) for s in sizes}
    sentences = {s: pool for s in sizes}
    if not cv and profile.uses_protocol and profile.n_signers >= 3 and pool and len(pool) >= 3:
        if ds_cfg.get("protocol", "SI") == "SI":  # signer-independent: dev/test signers never seen in training
            signers = _split_groups(profile.n_signers, 2, 2)
        else:  # unseen sentences: dev/test sentences never seen in training
            order = rng.permutation(len(pool))
            groups = _split_groups(len(pool), max(1, len(pool) * 15 // 100), max(1, len(pool) * 15 // 100))
            sentences = {s: [pool[int(order[i])] for i in g] for s, g in groups.items()}

    def draw(split: str) -> tuple[int, Sentence]:
        signer = signers[split][int(rng.integers(len(signers[split])))]
        if sentences[split] is None:
            return signer, sample_sentence(profile.name, rng, profile.max_glosses)
        options = sentences[split]
        return signer, options[int(rng.integers(len(options)))]

    plans: list[SamplePlan] = []
    number = 0
    for split in ("train", "dev", "test"):
        for _ in range(sizes[split]):
            signer, sentence = draw(split)
            plans.append(SamplePlan(f"demo_{number:04d}", split, -1, signer, sentence, "demo"))
            number += 1
    clips = []
    for k in range(settings.clips):
        signer, sentence = draw("train")
        clips.append(SamplePlan(f"clip_{k:02d}", "train", -1, signer, sentence, "video"))
    if cv:
        plans, clips = assign_cv(plans, clips, int(cv.get("folds", 5)), float(cv.get("test_fraction", 0.2)), cv_seed)
    return plans + clips


def assign_cv(plans: list[SamplePlan], clips: list[SamplePlan], folds: int, test_fraction: float,
              seed: int) -> tuple[list[SamplePlan], list[SamplePlan]]:
    """MedASL-style pool: the dataset adapters' seeded split (test part + K trainval folds) over the keypoint
    samples; clips are training data, so they go to trainval, dealt round-robin into the folds."""
    from hatl.datasets.base import assign_cross_validation

    assignment = assign_cross_validation([p.sample_id for p in plans], folds, test_fraction, seed)
    plans = [SamplePlan(p.sample_id, *assignment[p.sample_id], p.signer, p.sentence, p.kind) for p in plans]
    clips = [SamplePlan(c.sample_id, "trainval", k % folds, c.signer, c.sentence, c.kind) for k, c in enumerate(clips)]
    return plans, clips


# ------------------------------------------------------------------------------------------ synthesis
def _group_arrays(skel: body.Skeleton, dropped: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    arrays = {"pose": skel.pose, "face": skel.face, "left_hand": skel.left_hand.copy(),
              "right_hand": skel.right_hand.copy()}
    arrays["left_hand"][dropped["left"]] = np.nan  # undetected: select_from_groups writes 0 and mask False
    arrays["right_hand"][dropped["right"]] = np.nan
    return arrays


def synthesise(plan: SamplePlan, signs: dict[str, body.Sign], signer: body.Signer, settings: DemoSettings,
               seed: int, full_face: bool) -> tuple[np.ndarray, np.ndarray, body.Skeleton, dict[str, np.ndarray]]:
    """States, frame times, the clean skeleton (image coordinates) and hand dropouts of one sample."""
    sample_seed = body.stable_seed(seed, "sample", plan.sample_id)
    states, times = sample_states(plan, signs, signer, settings, sample_seed)
    skel = body.build_skeleton(states, times, signer, full_face)
    noisy = body.to_image(body.add_noise(skel, sample_seed, signer), settings.aspect)
    dropped = body.hand_dropouts(np.random.default_rng(body.stable_seed(sample_seed, "dropout")), states, signer)
    return states, times, noisy, dropped


def sample_states(plan: SamplePlan, signs: dict[str, body.Sign], signer: body.Signer, settings: DemoSettings,
                  sample_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The sample's timeline (its own random stream: gloss durations) sampled into frames."""
    rng = np.random.default_rng(body.stable_seed(sample_seed, "timeline"))
    timeline = body.build_timeline(plan.sentence.gloss, signs, signer, rng)
    return body.sample_frames(timeline, settings.min_frames, settings.max_frames)


def gloss_frames(data: "DemoData", plan: SamplePlan) -> list[tuple[str, int, int]]:
    """(gloss, first frame, last frame) of each gloss of a sample: the ground-truth alignment (benchmarks)."""
    signs = {sign_key(g): body.make_sign(data.seed, g) for g in plan.sentence.gloss}
    rng = np.random.default_rng(body.stable_seed(body.stable_seed(data.seed, "sample", plan.sample_id), "timeline"))
    timeline = body.build_timeline(plan.sentence.gloss, signs, data.signers[plan.signer], rng)
    n = data.n_frames[plan.sample_id]
    times = np.linspace(0.0, float(timeline.times[-1]), n)
    out = []
    for gloss, (start, end) in zip(plan.sentence.gloss, timeline.gloss_spans):
        inside = np.flatnonzero((times >= start) & (times <= end))
        if not len(inside):  # a gloss squeezed between two frames: take the nearest one
            inside = np.array([int(np.argmin(np.abs(times - (start + end) / 2)))])
        out.append((gloss, int(inside[0]), int(inside[-1])))
    return out


def keypoint_record(plan: SamplePlan, signs: dict[str, body.Sign], signer: body.Signer, settings: DemoSettings,
                    seed: int, layout: Layout, fps: float) -> KeypointRecord:
    full = "face" in layout.groups and layout.face_subset == "full"
    states, _, skel, dropped = synthesise(plan, signs, signer, settings, seed, full)
    coords, mask = select_from_groups(layout, _group_arrays(skel, dropped), len(states))
    return KeypointRecord(plan.sample_id, plan.split, coords, mask, fps, settings.width, settings.height)


def clip_frames(plan: SamplePlan, signs: dict[str, body.Sign], signer: body.Signer, settings: DemoSettings,
                seed: int) -> np.ndarray:
    """Rendered BGR frames of a clip sample (the clean skeleton: a camera sees the hands even when a
    detector would not)."""
    from hatl.demo.render import render_frames

    states, times = sample_states(plan, signs, signer, settings, body.stable_seed(seed, "sample", plan.sample_id))
    skel = body.to_image(body.build_skeleton(states, times, signer, full_face=False), settings.aspect)
    return render_frames(skel, signer, settings.width, settings.height, states[:, body.MOUTH])


def _progress(items, desc: str):
    from tqdm import tqdm

    return tqdm(items, desc=desc, disable=not sys.stderr.isatty(), leave=False)


def generate_demo(config: dict[str, Any], dataset: str) -> DemoData:
    """Plan and synthesise one demo dataset in memory (``config`` as loaded; demo overrides are applied)."""
    eff = effective_config(config, dataset)
    ds_cfg = dataset_config(eff, dataset)
    profile_name = ds_cfg.get("demo_profile") or (dataset if dataset in PROFILES else None)
    if profile_name not in PROFILES:
        raise ConfigError(f"config key 'datasets.{dataset}.demo_profile': one of {', '.join(PROFILES)} is needed "
                          "for a demo dataset")
    profile = PROFILES[profile_name]
    settings = demo_settings(eff, profile.name)
    kp = eff.get("preprocess", {}).get("keypoints", {})
    layout = build_layout(tuple(kp.get("groups", ("pose", "face", "iris", "left_hand", "right_hand"))),
                          kp.get("face_subset", "reduced"))
    seed = dataset_seed(eff, dataset)
    plans = plan_samples(profile, settings, ds_cfg, seed, int(eff.get("seed", 0)))
    signers = [body.make_signer(seed, k, profile.signer_format.format(k=k, n=k + 1), settings.aspect, profile.fps)
               for k in range(profile.n_signers)]
    signs = {sign_key(g): body.make_sign(seed, g) for p in plans for g in p.sentence.gloss}
    data = DemoData(dataset, profile, settings, seed, layout, plans, [], signers=signers,
                    config_seed=int(eff.get("seed", 0)))
    for plan in _progress(plans, f"{dataset}: demo samples"):
        if plan.kind == "demo":
            rec = keypoint_record(plan, signs, signers[plan.signer], settings, seed, layout, profile.fps)
            data.records.append(rec)
            data.n_frames[plan.sample_id] = rec.n_frames
            data.total_frames += rec.n_frames
            hands = [layout.groups.index(g) for g in ("left_hand", "right_hand") if g in layout.groups]
            if hands:
                data.missing_hand_frames += int((~rec.mask[:, hands]).any(axis=1).sum())
        else:
            frames = clip_frames(plan, signs, signers[plan.signer], settings, seed)
            data.clips[plan.sample_id] = frames
            data.n_frames[plan.sample_id] = len(frames)
    return data


# --------------------------------------------------------------------------------------------- writing
def annotation_rows(data: DemoData) -> list[dict[str, Any]]:
    rows = []
    for p in data.plans:
        rows.append({
            "id": p.sample_id, "split": p.split, "fold": p.fold, "signer": data.signers[p.signer].signer_id,
            "gloss": " ".join(p.sentence.gloss), "text": p.sentence.text, "kind": p.kind,
            "source": f"clips/{p.sample_id}.mp4" if p.kind == "video" else "keypoints.parquet",
            "fps": data.profile.fps, "n_frames": data.n_frames[p.sample_id],
        })
    return rows


def write_annotations(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=ANNOTATION_COLUMNS, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_clip(path: Path, frames: np.ndarray, fps: float) -> None:
    import cv2

    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot open an mp4v writer for {path}")
    try:
        for frame in frames:
            writer.write(np.ascontiguousarray(frame))
    finally:
        writer.release()


def summary(data: DemoData) -> dict[str, Any]:
    """Counts that describe the generated data (README, demo.json and the CLI log)."""
    demo_plans = [p for p in data.plans if p.kind == "demo"]
    glosses = {g for p in data.plans for g in p.sentence.gloss}
    words = {w for p in data.plans for w in p.sentence.text.split()}
    frames = [data.n_frames[p.sample_id] for p in demo_plans]
    return {
        "dataset": data.dataset, "profile": data.profile.name, "seed": data.seed, "config_seed": data.config_seed,
        "samples": dict(Counter(p.split for p in demo_plans)),
        "clips": dict(Counter(p.split for p in data.plans if p.kind == "video")),
        "signers": len({p.signer for p in data.plans}),
        "gloss_vocabulary": len(glosses), "text_vocabulary": len(words),
        "distinct_sentences": len({(p.sentence.gloss, p.sentence.text) for p in data.plans}),
        "reordered_share": round(float(np.mean([is_reordered(p.sentence) for p in data.plans])), 3),
        "frames": {"min": min(frames, default=0), "max": max(frames, default=0),
                   "mean": round(float(np.mean(frames)) if frames else 0.0, 1)},
        "frames_missing_a_hand": data.missing_hand_frames, "total_frames": data.total_frames,
        "layout": {"groups": list(data.layout.groups), "face_subset": data.layout.face_subset,
                   "joints": data.layout.num_joints},
        "fps": data.profile.fps, "frame_size": [data.settings.width, data.settings.height],
        "templates": dict(Counter(p.sentence.template for p in data.plans).most_common()),
    }


def readme_text(data: DemoData, facts: dict[str, Any]) -> str:
    lines = [
        f"hatl synthetic demo dataset '{data.dataset}' (stand-in for {data.profile.name})",
        "",
        "Generated by `hatl demo-data` (src/hatl/demo). Nothing here is real signing: a seeded synthetic",
        "signer performs one synthetic sign per gloss (palm path relative to the body, handshape, palm",
        "orientation, other-hand role, mouthing, brows, nod), with interpolated transitions between glosses.",
        "",
        f"seed: {data.seed} (derived from the config seed {data.config_seed} and the dataset name {data.dataset!r})",
        f"samples (keypoints.parquet): {facts['samples']}; video clips (clips/): {facts['clips']}",
        f"signers: {facts['signers']}; frames per sample: {facts['frames']} at {facts['fps']} fps",
        f"virtual camera: {facts['frame_size'][0]}x{facts['frame_size'][1]}; layout: {facts['layout']}",
        f"gloss vocabulary: {facts['gloss_vocabulary']}; text vocabulary: {facts['text_vocabulary']}; "
        f"distinct sentences: {facts['distinct_sentences']}",
        f"share of sentences whose gloss order differs from the text order: {facts['reordered_share']}",
        f"frames with a hand not detected (mask False, coordinates 0): {facts['frames_missing_a_hand']} of "
        f"{facts['total_frames']}",
        "",
        "grammar: " + GRAMMAR_NOTES[data.profile.name],
        f"sentence templates: {facts['templates']}",
        "",
        "files: keypoints.parquet (hatl keypoint schema), annotations.tsv (id split fold signer gloss text kind",
        "source fps n_frames), clips/<id>.mp4 (rendered person-like figure, mp4v),",
        "demo.json (these facts + provenance).",
    ]
    return "\n".join(lines) + "\n"


def write_demo(config: dict[str, Any], dataset: str, out_dir: str | Path) -> dict[str, Any]:
    """Generate and write the demo folder atomically; returns the summary facts."""
    started = time.perf_counter()
    data = generate_demo(config, dataset)
    facts = summary(data)
    meta = {
        "stage": "demo", "dataset": dataset, "profile": data.profile.name, "seed": data.seed,
        "extractor": {"extractor": "demo-generator"},
        "provenance": provenance(config),
    }
    with atomic_dir(out_dir) as tmp:
        write_keypoints(tmp / "keypoints.parquet", data.records, data.layout, meta)
        write_annotations(tmp / "annotations.tsv", annotation_rows(data))
        (tmp / "clips").mkdir()
        for clip_id, frames in data.clips.items():
            write_clip(tmp / "clips" / f"{clip_id}.mp4", frames, data.profile.fps)
        write_text(tmp / "README.txt", readme_text(data, facts))
        write_json(tmp / "demo.json", {**facts, "provenance": provenance(config)})
    facts["seconds"] = round(time.perf_counter() - started, 2)
    return facts
