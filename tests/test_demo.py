"""The synthetic demo generator: determinism, layouts, grammar, signers, dropouts, geometry, outputs."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

from hatl.config import ConfigError, load_config, validate_config
from hatl.demo import body, read_demo_samples
from hatl.demo.generator import (
    ANNOTATION_COLUMNS,
    annotation_rows,
    generate_demo,
    write_demo,
)
from hatl.demo.grammar import GRAMMARS, Sentence, is_reordered, sign_key
from hatl.errors import InputError
from hatl.keypoint_store import read_keypoints, read_layout
from hatl.landmarks import FACE_PARTS, REDUCED_FACE, build_layout

REPO = Path(__file__).resolve().parents[1]


def small_config(seed: int = 7, groups=None, face_subset: str = "reduced", clips: int = 0,
                 sizes=(12, 3, 3)) -> dict:
    """The shipped config, scaled down to a few samples per split (validated like a user's file)."""
    with open(REPO / "config" / "config.yaml", encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    raw["seed"] = seed
    train, dev, test = sizes
    raw["demo"]["samples"] = {p: {"train": train, "dev": dev, "test": test}
                              for p in ("phoenix14t", "isharah", "medasl")}
    raw["demo"]["frames"] = {"min": 16, "max": 40}
    raw["demo"]["clips_per_dataset"] = clips
    raw["preprocess"]["keypoints"]["face_subset"] = face_subset
    # these tests choose the layout themselves: drop the shipped demo's smaller joint set
    raw["demo"].get("overrides", {}).pop("preprocess", None)
    if groups is not None:
        raw["preprocess"]["keypoints"]["groups"] = list(groups)
    return validate_config(raw)


def arrays(data) -> list[tuple[str, bytes, bytes]]:
    return [(r.sample_id, r.landmarks.tobytes(), r.mask.tobytes()) for r in data.records]


# ------------------------------------------------------------------------------------------- determinism
def test_same_seed_gives_identical_data_and_other_seed_differs():
    a = generate_demo(small_config(seed=7), "phoenix14t")
    b = generate_demo(small_config(seed=7), "phoenix14t")
    c = generate_demo(small_config(seed=8), "phoenix14t")
    assert arrays(a) == arrays(b)
    assert annotation_rows(a) == annotation_rows(b)
    assert [r.landmarks.dtype for r in a.records] == [np.float32] * len(a.records)
    assert arrays(a) != arrays(c)
    assert annotation_rows(a) != annotation_rows(c)


def test_dataset_name_is_part_of_the_seed():
    cfg = small_config()
    cfg["datasets"]["other"] = copy.deepcopy(cfg["datasets"]["phoenix14t"])
    a, b = generate_demo(cfg, "phoenix14t"), generate_demo(cfg, "other")
    assert a.seed != b.seed
    assert arrays(a) != arrays(b)


# --------------------------------------------------------------------------------------------- layouts
@pytest.mark.parametrize(
    "groups, face_subset",
    [
        (("pose", "face", "iris", "left_hand", "right_hand"), "reduced"),
        (("pose", "left_hand", "right_hand"), "reduced"),
        (("face", "iris"), "full"),
        (("right_hand",), "reduced"),
        (("pose", "face"), "full"),
    ],
)
def test_shapes_and_masks_follow_the_layout(groups, face_subset):
    data = generate_demo(small_config(groups=groups, face_subset=face_subset, sizes=(4, 1, 1)), "isharah")
    layout = build_layout(groups, face_subset)
    assert data.layout == layout
    slices = layout.group_slices()
    for rec in data.records:
        t = rec.n_frames
        assert 16 <= t <= 40
        assert rec.landmarks.shape == (t, layout.num_joints, 3)
        assert rec.mask.shape == (t, len(layout.groups))
        xy = rec.landmarks[..., :2]
        assert xy.min() >= 0.0 and xy.max() <= 1.0
        assert np.abs(rec.landmarks[..., 2]).max() < 0.5  # relative depth stays small
        for gi, group in enumerate(layout.groups):
            block = rec.landmarks[:, slices[group]]
            if group in ("pose", "face", "iris"):
                assert rec.mask[:, gi].all()
            assert not block[~rec.mask[:, gi]].any(), "undetected groups must be written as zeros"
            assert (np.abs(block[rec.mask[:, gi]]).sum(axis=(1, 2)) > 0).all()
        assert (rec.width, rec.height) == (210, 260)
        assert rec.fps == 15.0  # half the real 30 fps (generator.PROFILES)


def test_full_and_reduced_face_agree_on_shared_points():
    groups = ("pose", "face", "left_hand", "right_hand")
    red = generate_demo(small_config(groups=groups, face_subset="reduced", sizes=(3, 1, 1)), "medasl")
    full = generate_demo(small_config(groups=groups, face_subset="full", sizes=(3, 1, 1)), "medasl")
    lr, lf = red.layout, full.layout
    for a, b in zip(red.records, full.records):
        assert np.array_equal(a.mask, b.mask)
        assert np.array_equal(a.landmarks[:, lr.group_slices()["pose"]], b.landmarks[:, lf.group_slices()["pose"]])
        face_full = b.landmarks[:, lf.group_slices()["face"]]
        shared = face_full[:, list(REDUCED_FACE)]
        # same points, different jitter draws: within a few noise sigmas
        assert np.abs(a.landmarks[:, lr.group_slices()["face"]] - shared).max() < 0.02
        # every mesh point lies inside the face's bounding box (harmonic placement never leaves the face)
        lo, hi = shared.min(axis=1, keepdims=True), shared.max(axis=1, keepdims=True)
        assert (face_full[..., :2] >= lo[..., :2] - 0.01).all() and (face_full[..., :2] <= hi[..., :2] + 0.01).all()


# -------------------------------------------------------------------------------------------- grammar
@pytest.mark.parametrize("profile", sorted(GRAMMARS))
def test_gloss_order_differs_from_text_order_in_many_sentences(profile):
    rng = np.random.default_rng(0)
    sentences = [GRAMMARS[profile](rng) for _ in range(300)]
    reordered = np.mean([is_reordered(s) for s in sentences])
    assert reordered > 0.3, reordered
    # text words without a sign and signs without a word: the lengths differ in most sentences
    assert np.mean([len(s.text.split()) != len(s.gloss) for s in sentences]) > 0.3
    glosses = {g for s in sentences for g in s.gloss}
    words = {w for s in sentences for w in s.text.split()}
    assert 25 <= len(glosses) <= 70 and 40 <= len(words) <= 110


def test_reorder_measure_on_known_sentences():
    assert is_reordered(Sentence(("MORGEN", "NORD", "REGEN"), "morgen regnet es im norden .", "t"))
    assert not is_reordered(Sentence(("NORD", "REGEN"), "im norden regnet es .", "t"))
    assert is_reordered(Sentence(("انا", "قهوه", "شرب"), "انا اشرب القهوه", "t"))
    assert sign_key("YOU?") == "YOU"


def test_isharah_text_is_arabic_script_and_questions_are_marked():
    data = generate_demo(small_config(sizes=(20, 5, 5)), "isharah")
    rows = annotation_rows(data)
    assert all(any("\u0600" <= ch <= "\u06ff" for ch in r["text"]) for r in rows)
    med = annotation_rows(generate_demo(small_config(sizes=(30, 5, 5)), "medasl"))
    assert any(r["gloss"].endswith("?") and r["text"].endswith("?") for r in med)


def test_isharah_signer_independent_and_unseen_sentence_protocols():
    cfg = small_config(sizes=(40, 10, 10))
    si = annotation_rows(generate_demo(cfg, "isharah"))
    train_signers = {r["signer"] for r in si if r["split"] == "train"}
    assert train_signers.isdisjoint({r["signer"] for r in si if r["split"] != "train"})
    cfg["datasets"]["isharah"]["protocol"] = "US"
    us = annotation_rows(generate_demo(cfg, "isharah"))
    train_sentences = {r["gloss"] for r in us if r["split"] == "train"}
    assert train_sentences.isdisjoint({r["gloss"] for r in us if r["split"] in ("dev", "test")})


# -------------------------------------------------------------------------------------- signers / noise
def test_signers_differ_in_proportions_speed_and_noise():
    signers = [body.make_signer(123, k, f"s{k}", 260 / 210) for k in range(9)]
    for attr in ("shoulder_width", "arm_factor", "head_factor", "frames_per_gloss", "noise"):
        values = [getattr(s, attr) for s in signers]
        assert len(set(values)) == len(values), attr
    assert np.ptp([s.shoulder_width for s in signers]) > 0.02


def test_signer_proportions_are_visible_in_the_keypoints():
    data = generate_demo(small_config(groups=("pose",), sizes=(60, 2, 2)), "phoenix14t")
    plans = {p.sample_id: p for p in data.plans}
    widths: dict[int, list[float]] = {}
    for rec in data.records:
        sh = rec.landmarks[:, [11, 12], :2] * np.array([210, 260])
        width = float(np.linalg.norm(sh[:, 0] - sh[:, 1], axis=1).mean())
        widths.setdefault(plans[rec.sample_id].signer, []).append(width)
    means = sorted(np.mean(v) for v in widths.values() if len(v) >= 3)
    assert len(means) >= 4
    assert means[-1] - means[0] > 5.0  # pixels of shoulder width between the narrowest and the widest signer
    within = max(np.std(v) for v in widths.values() if len(v) >= 3)
    assert within < 2.0  # the same signer keeps the same body


def test_some_frames_miss_a_hand_but_most_do_not():
    data = generate_demo(small_config(sizes=(30, 2, 2)), "phoenix14t")
    hands = [data.layout.groups.index("left_hand"), data.layout.groups.index("right_hand")]
    masks = np.concatenate([r.mask[:, hands] for r in data.records])
    missing = (~masks).any(axis=1).mean()
    assert 0.02 < missing < 0.5
    assert data.missing_hand_frames == int((~masks).any(axis=1).sum())


# ------------------------------------------------------------------------------------------- geometry
def test_pose_and_face_are_anatomically_placed():
    data = generate_demo(small_config(sizes=(5, 1, 1)), "phoenix14t")
    layout = data.layout
    ratios: list[float] = []
    for rec in data.records:
        lm = rec.landmarks
        pose = lm[:, layout.group_slices()["pose"]]
        nose, l_sh, r_sh, l_hip = pose[:, 0], pose[:, 11], pose[:, 12], pose[:, 23]
        assert (l_sh[:, 0] > r_sh[:, 0]).all()  # the subject's left shoulder is on the image right
        assert (nose[:, 1] < l_sh[:, 1]).all() and (l_sh[:, 1] < l_hip[:, 1]).all()
        assert (np.abs(nose[:, 0] - (l_sh[:, 0] + r_sh[:, 0]) / 2) < 0.05).all()
        face = lm[:, layout.group_slices()["face"]]
        pos = {idx: v for v, idx in enumerate(REDUCED_FACE)}
        oval = face[:, [pos[i] for i in FACE_PARTS["oval"]]]
        for eye in ("left_eye", "right_eye", "lips_outer"):
            part = face[:, [pos[i] for i in FACE_PARTS[eye]]].mean(axis=1)
            assert ((part[:, 0] > oval[..., 0].min(axis=1)) & (part[:, 0] < oval[..., 0].max(axis=1))).all()
            assert ((part[:, 1] > oval[..., 1].min(axis=1)) & (part[:, 1] < oval[..., 1].max(axis=1))).all()
        iris = lm[:, layout.group_slices()["iris"]]
        right_eye = face[:, [pos[i] for i in FACE_PARTS["right_eye"]]].mean(axis=1)
        assert np.abs(iris[:, 0, :2] - right_eye[:, :2]).max() < 0.02
        for side, wrist in (("left_hand", 15), ("right_hand", 16)):
            gi = layout.groups.index(side)
            hand = lm[:, layout.group_slices()[side]][rec.mask[:, gi]]
            if not len(hand):
                continue
            assert np.abs(hand[:, 0, :2] - pose[rec.mask[:, gi], wrist, :2]).max() < 0.05  # same wrist
            px = np.array([210.0, 260.0])
            span = np.linalg.norm((hand[:, 12, :2] - hand[:, 0, :2]) * px, axis=1)  # wrist to middle tip
            shoulders = np.linalg.norm((l_sh - r_sh)[rec.mask[:, gi], :2] * px, axis=1)
            ratios.extend(span / shoulders)
    assert 0.45 < max(ratios) < 0.9  # an open hand: about 0.6-0.8 of MediaPipe's shoulder-point gap


def test_handshapes_change_finger_configuration():
    from hatl.demo import hands

    zero = np.zeros(1)
    flat = hands.hand_points(np.array([hands.HANDSHAPES["5"]]), zero, zero, left=False)[0]
    fist = hands.hand_points(np.array([hands.HANDSHAPES["S"]]), zero, zero, left=False)[0]
    assert np.linalg.norm(flat[12] - flat[0]) > 2 * np.linalg.norm(fist[12, :2] - fist[0, :2]) * 0.9
    assert flat[4, 0] > 0  # right hand, palm to the camera: thumb toward the image right
    left = hands.hand_points(np.array([hands.HANDSHAPES["5"]]), zero, zero, left=True)[0]
    assert np.allclose(left[:, 0], -flat[:, 0]) and np.allclose(left[:, 1], flat[:, 1])


def test_each_gloss_has_its_own_sign():
    signs = {g: body.make_sign(5, g) for g in ("REGEN", "SONNE", "NORD", "WIND", "YOU")}
    starts = np.array([s.start for s in signs.values()])
    assert len({tuple(np.round(s, 6)) for s in starts}) == len(signs)
    assert np.array_equal(body.make_sign(5, "YOU").start, body.make_sign(5, "YOU?").start)  # '?' is non-manual
    assert not np.array_equal(body.make_sign(5, "YOU").start, body.make_sign(6, "YOU").start)


# ---------------------------------------------------------------------------------------------- outputs
def test_write_demo_outputs_and_clip_decoding(tmp_path):
    import cv2

    cfg = small_config(clips=1, sizes=(6, 2, 2))
    out = tmp_path / "results" / "phoenix14t" / "demo"
    facts = write_demo(cfg, "phoenix14t", out)
    assert sorted(p.name for p in out.iterdir()) == ["README.txt", "annotations.tsv", "clips", "demo.json",
                                                     "keypoints.parquet"]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary left behind
    lines = (out / "annotations.tsv").read_text(encoding="utf-8").splitlines()
    assert tuple(lines[0].split("\t")) == ANNOTATION_COLUMNS
    rows = [dict(zip(ANNOTATION_COLUMNS, line.split("\t"))) for line in lines[1:]]
    assert Counter(r["kind"] for r in rows) == {"demo": 10, "video": 1}
    records = read_keypoints(out / "keypoints.parquet")
    assert [r.sample_id for r in records] == [r["id"] for r in rows if r["kind"] == "demo"]
    assert read_layout(out / "keypoints.parquet") == build_layout(tuple(cfg["preprocess"]["keypoints"]["groups"]))
    clip = next(r for r in rows if r["kind"] == "video")
    assert clip["split"] == "train" and clip["source"] == "clips/clip_00.mp4"
    cap = cv2.VideoCapture(str(out / clip["source"]))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    assert len(frames) == int(clip["n_frames"]) >= 16
    assert frames[0].shape == (260, 210, 3)
    assert frames[0].std() > 10  # a figure, not a blank frame
    assert facts["samples"] == {"train": 6, "dev": 2, "test": 2}
    readme = (out / "README.txt").read_text(encoding="utf-8")
    assert str(facts["seed"]) in readme and "grammar" in readme


def test_read_demo_samples_by_id(tmp_path):
    cfg = small_config(sizes=(4, 1, 1))
    out = tmp_path / "demo"
    write_demo(cfg, "medasl", out)
    path = out / "keypoints.parquet"
    every = {r.sample_id: r for r in read_keypoints(path)}
    ids = sorted(every)[::-1][:3]
    got = read_demo_samples(path, ids, splits={ids[0]: "trainval"})
    assert [r.sample_id for r in got] == ids
    assert got[0].split == "trainval" and got[1].split == every[ids[1]].split
    for rec in got:
        assert np.array_equal(rec.landmarks, every[rec.sample_id].landmarks)
        assert np.array_equal(rec.mask, every[rec.sample_id].mask)
    with pytest.raises(InputError, match="demo_9999"):
        read_demo_samples(path, [ids[0], "demo_9999"])
    with pytest.raises(InputError, match="does not exist"):
        read_demo_samples(tmp_path / "nope.parquet", ids)


def test_cli_writes_the_demo_and_rejects_bad_input(tmp_path, monkeypatch):
    from hatl.cli import main

    cfg = small_config(sizes=(3, 1, 1))
    cfg_path = tmp_path / "config.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    out = tmp_path / "results" / "medasl" / "demo"
    assert main(["demo-data", "--config", str(cfg_path), "--dataset", "medasl", "--out-dir", str(out)]) == 0
    assert (out / "keypoints.parquet").is_file()
    lines = (out / "annotations.tsv").read_text(encoding="utf-8").splitlines()[1:]
    splits = Counter(line.split("\t")[1] for line in lines)
    assert set(splits) == {"trainval", "test"}  # the MedASL stand-in is one cross-validated pool
    cfg["datasets"]["medasl"]["adapter"] = "medasl"
    cfg_path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    other = tmp_path / "results" / "x" / "demo"
    assert main(["demo-data", "--config", str(cfg_path), "--dataset", "medasl", "--out-dir", str(other)]) == 2
    assert not other.exists()


def test_config_rejects_unknown_demo_keys_and_bad_frame_range():
    cfg = small_config()
    bad = copy.deepcopy(cfg)
    bad["demo"]["samples"]["phoenix14t"]["validation"] = 3
    with pytest.raises(ConfigError, match="validation"):
        validate_config(bad)
    bad = copy.deepcopy(cfg)
    bad["demo"]["frames"] = {"min": 50, "max": 20}
    with pytest.raises(ConfigError, match="demo.frames"):
        generate_demo(bad, "phoenix14t")
    assert load_config(REPO / "config" / "config.yaml")["demo"]["samples"]["isharah"]["train"] == 300


def _body_ratios(pose: np.ndarray, face: np.ndarray, hand: np.ndarray, width: float, height: float
                 ) -> dict[str, float]:
    """Proportions in shoulder widths (pixel space): eye gap, nose height above the shoulders, face height,
    longest wrist-to-middle-fingertip distance."""
    px = np.array([width, height])
    sw = np.linalg.norm((pose[:, 11, :2] - pose[:, 12, :2]) * px, axis=1)
    return {
        "hand": float(np.nanmax(np.linalg.norm((hand[:, 12, :2] - hand[:, 0, :2]) * px, axis=1) / sw)),
        "eyes": float(np.nanmedian(np.linalg.norm((pose[:, 2, :2] - pose[:, 5, :2]) * px, axis=1) / sw)),
        "nose": float(np.nanmedian(((pose[:, 11, 1] + pose[:, 12, 1]) / 2 - pose[:, 0, 1]) * height / sw)),
        "face": float(np.nanmedian(np.linalg.norm((face[:, 0, :2] - face[:, 1, :2]) * px, axis=1) / sw)),
    }


@pytest.mark.real_data
def test_proportions_resemble_real_mediapipe_output():
    """The synthetic body has the proportions MediaPipe reports on a real signer (a MedASL sequence)."""
    from conftest import real_data_path
    from hatl.landmarks import groups_from_flat1662

    folder = real_data_path("medasl", "Videos", "ALLERGY SKIN TEST DO WILL")
    files = sorted(folder.glob("*.npy"), key=lambda p: int(p.stem))
    groups = groups_from_flat1662(np.stack([np.load(f) for f in files]))
    real = _body_ratios(groups["pose"], groups["face"][:, [10, 152]], groups["right_hand"], 1280, 800)  # 1280x800

    data = generate_demo(small_config(groups=("pose", "face", "right_hand"), sizes=(20, 1, 1)), "phoenix14t")
    sl = data.layout.group_slices()
    pos = {idx: v for v, idx in enumerate(REDUCED_FACE)}
    pose = np.concatenate([r.landmarks[:, sl["pose"]] for r in data.records])
    face = np.concatenate([r.landmarks[:, sl["face"]][:, [pos[10], pos[152]]] for r in data.records])
    hands = np.concatenate([np.where(r.mask[:, 2, None, None], r.landmarks[:, sl["right_hand"]], np.nan)
                            for r in data.records])
    synthetic = _body_ratios(pose, face, hands, 210, 260)
    for key, value in real.items():
        assert abs(synthetic[key] - value) < 0.35 * value, (key, synthetic[key], value)


def test_glosses_are_recognisable_from_their_motion_across_signers():
    """Ground-truth gloss segments of held-out signers are classified far above chance by nearest centroid
    on shoulder-normalised positions: each gloss has a motion of its own that survives signer variation."""
    from hatl.demo.generator import gloss_frames

    data = generate_demo(small_config(sizes=(80, 20, 1)), "isharah")  # SI protocol: dev signers are unseen
    plans = {p.sample_id: p for p in data.plans}
    sl = data.layout.group_slices()
    feats: dict[str, list[tuple[np.ndarray, str]]] = {"train": [], "dev": []}
    for rec in data.records:
        if rec.split not in feats:
            continue
        xy = rec.landmarks[..., :2].astype(np.float64)
        sh = xy[:, sl["pose"]][:, [11, 12]]
        norm = (xy - sh.mean(axis=1, keepdims=True)) / np.linalg.norm(sh[:, 0] - sh[:, 1], axis=1)[:, None, None]
        norm[~rec.mask[:, data.layout.groups.index("right_hand")], sl["right_hand"]] = 0.0
        norm[~rec.mask[:, data.layout.groups.index("left_hand")], sl["left_hand"]] = 0.0
        spans = gloss_frames(data, plans[rec.sample_id])
        assert [s[0] for s in spans] == list(plans[rec.sample_id].sentence.gloss)
        assert all(0 <= a <= b < rec.n_frames for _, a, b in spans)
        assert all(spans[i][1] <= spans[i + 1][1] for i in range(len(spans) - 1))
        for gloss, a, b in spans:
            picks = np.linspace(a, b, 3).round().astype(int)
            feats[rec.split].append((norm[picks].ravel(), gloss))
    labels = sorted({g for _, g in feats["train"]})
    x = np.stack([f for f, _ in feats["train"]])
    y = np.array([labels.index(g) for _, g in feats["train"]])
    centroids = np.stack([x[y == k].mean(axis=0) for k in range(len(labels))])
    held = [(f, g) for f, g in feats["dev"] if g in labels]
    pred = [labels[int(np.argmin(((centroids - f) ** 2).sum(axis=1)))] for f, _ in held]
    accuracy = np.mean([p == g for p, (_, g) in zip(pred, held)])
    chance = np.bincount(y).max() / len(y)
    assert accuracy > 3 * chance, (accuracy, chance)
