"""hatl.normalise: shoulder centring invariances, gap filling, fallbacks and the per-split output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hatl import cli
from hatl.config import validate_config
from hatl.errors import InputError
from hatl.keypoint_store import KeypointRecord, read_keypoints, read_meta, write_keypoints
from hatl.landmarks import build_layout
from hatl.normalise import NormaliseConfig, fill_gaps, normalise_dataset, normalise_sample

LAYOUT = build_layout(("pose", "left_hand", "right_hand"))
POSE, LH, RH = 0, 1, 2


def random_sequence(rng: np.random.Generator, t: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Image-like coordinates with a plausible shoulder pair and some undetected hand frames."""
    lm = rng.uniform(0.2, 0.8, size=(t, LAYOUT.num_joints, 3)).astype(np.float32)
    lm[..., 2] = rng.normal(0, 0.1, size=(t, LAYOUT.num_joints))
    left, right = LAYOUT.index("pose", 11), LAYOUT.index("pose", 12)
    lm[:, left, :2] = [0.65, 0.5]
    lm[:, right, :2] = [0.35, 0.5]
    lm[:, left] += rng.normal(0, 0.01, size=(t, 3)).astype(np.float32)
    mask = np.ones((t, len(LAYOUT.groups)), dtype=bool)
    mask[2:5, LH] = False
    mask[-3:, RH] = False
    for gi, sl in enumerate(LAYOUT.group_slices().values()):
        lm[~mask[:, gi], sl] = 0.0  # MediaPipe's contract: undetected groups are 0
    return lm, mask


def shift_scale(lm: np.ndarray, mask: np.ndarray, shift: np.ndarray, scale: float) -> np.ndarray:
    """Move and zoom the detected points as a camera change would; undetected points stay 0."""
    out = lm.astype(np.float64) * scale + shift
    for gi, sl in enumerate(LAYOUT.group_slices().values()):
        out[~mask[:, gi], sl] = 0.0
    return out.astype(np.float32)


@pytest.mark.parametrize("fill", ["interpolate", "hold", "zero"])
@pytest.mark.parametrize("case", ["shoulders", "shoulders_median", "bbox"])
def test_invariant_to_translation_and_scale(fill: str, case: str) -> None:
    rng = np.random.default_rng(7)
    lm, mask = random_sequence(rng)
    if case == "shoulders_median":
        mask[[0, 5, 6], POSE] = False
    elif case == "bbox":
        mask[:, POSE] = False
    cfg = NormaliseConfig(fill=fill)
    base, how = normalise_sample(lm, mask, LAYOUT, cfg)
    assert how.method == case
    for _ in range(5):
        shift = rng.uniform(-0.5, 0.5, size=3)
        scale = float(rng.uniform(0.3, 3.0))
        moved, how2 = normalise_sample(shift_scale(lm, mask, shift, scale), mask, LAYOUT, cfg)
        assert how2.method == case
        np.testing.assert_allclose(moved, base, atol=1e-5)


def test_shoulders_become_unit_width_at_origin() -> None:
    rng = np.random.default_rng(1)
    lm, mask = random_sequence(rng)
    out, _ = normalise_sample(lm, mask, LAYOUT, NormaliseConfig())
    left, right = LAYOUT.index("pose", 11), LAYOUT.index("pose", 12)
    mid = (out[:, left] + out[:, right]) / 2
    np.testing.assert_allclose(mid, 0.0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(out[:, left, :2] - out[:, right, :2], axis=1), 1.0, atol=1e-5)


def test_missing_shoulder_frames_use_sequence_median() -> None:
    rng = np.random.default_rng(2)
    lm, mask = random_sequence(rng, t=8)  # right hand detected in frame 2
    mask[2, POSE] = False
    left, right = LAYOUT.index("pose", 11), LAYOUT.index("pose", 12)
    ok = mask[:, POSE]
    mids = (lm[:, left].astype(np.float64) + lm[:, right]) / 2
    widths = np.linalg.norm(lm[:, left, :2].astype(np.float64) - lm[:, right, :2], axis=1)
    centre, width = np.median(mids[ok], axis=0), np.median(widths[ok])
    out, how = normalise_sample(lm, mask, LAYOUT, NormaliseConfig())
    assert how.method == "shoulders_median" and how.median_frames == 1
    hand = LAYOUT.group_slices()["right_hand"]
    np.testing.assert_allclose(out[2, hand], (lm[2, hand] - centre) / width, atol=1e-5)


def test_no_person_stays_zero() -> None:
    lm = np.zeros((4, LAYOUT.num_joints, 3), np.float32)
    mask = np.zeros((4, 3), bool)
    out, how = normalise_sample(lm, mask, LAYOUT, NormaliseConfig())
    assert how.method == "no_person"
    assert not out.any()


def test_fill_interpolates_between_detections_and_holds_edges() -> None:
    values = np.array([0, 0, 2, 0, 0, 8, 0], dtype=np.float64)[:, None]
    detected = np.array([False, False, True, False, False, True, False])
    interp = fill_gaps(values, detected, "interpolate")[:, 0]
    np.testing.assert_allclose(interp, [2, 2, 2, 4, 6, 8, 8])
    hold = fill_gaps(values, detected, "hold")[:, 0]
    np.testing.assert_allclose(hold, [2, 2, 2, 2, 2, 8, 8])
    zero = fill_gaps(values, detected, "zero")[:, 0]
    np.testing.assert_allclose(zero, [0, 0, 2, 0, 0, 8, 0])
    never = fill_gaps(np.ones((3, 1)), np.zeros(3, bool), "interpolate")
    assert not never.any()


def test_sample_fill_keeps_mask_and_detected_values() -> None:
    rng = np.random.default_rng(3)
    lm, mask = random_sequence(rng)
    out_zero, _ = normalise_sample(lm, mask, LAYOUT, NormaliseConfig(fill="zero"))
    out_int, _ = normalise_sample(lm, mask, LAYOUT, NormaliseConfig(fill="interpolate"))
    lh = LAYOUT.group_slices()["left_hand"]
    # detected frames are identical whatever the fill; gaps 2..4 lie on the line from frame 1 to frame 5
    np.testing.assert_allclose(out_int[mask[:, LH], lh], out_zero[mask[:, LH], lh], atol=1e-6)
    for k, t in enumerate((2, 3, 4), start=1):
        np.testing.assert_allclose(out_int[t, lh], out_int[1, lh] + (out_int[5, lh] - out_int[1, lh]) * k / 4, atol=1e-5)
    assert not out_zero[2:5, lh].any()


# --------------------------------------------------------------------------------------------- dataset stage


def _config(fill: str = "interpolate") -> dict:
    return validate_config({
        "datasets": {"toy": {"adapter": "demo", "demo_profile": "phoenix14t", "language": "German", "domain": "Weather"}},
        "preprocess": {"normalise": {"centre": "shoulders", "fill": fill}},
    })


def write_toy(tmp_path: Path, n: int = 6, splits: tuple[str, ...] = ("train", "dev", "test")) -> tuple[Path, list[Path]]:
    rng = np.random.default_rng(0)
    rows, shards = [], []
    records: list[list[KeypointRecord]] = [[], []]
    for i in range(n):
        split = splits[i % len(splits)]
        lm, mask = random_sequence(rng, t=8 + i)
        if i == 0:
            mask[:, POSE] = False  # bbox fallback
        sid = f"s{i:02d}"
        rows.append({"sample_id": sid, "split": split, "fold": -1, "signer": f"p{i % 2}", "gloss": "A B", "text": "ein satz",
                     "source": "x", "source_kind": "demo", "fps": 25.0, "n_frames": 8 + i, "shard": i % 2})
        records[i % 2].append(KeypointRecord(sid, split, lm, mask, fps=25.0, width=52, height=65))
    for k, recs in enumerate(records):
        path = tmp_path / f"shard-{k}.parquet"
        write_keypoints(path, recs, LAYOUT, {"stage": "keypoints"})
        shards.append(path)
    manifest = tmp_path / "manifest.parquet"
    pd.DataFrame(rows).to_parquet(manifest)
    return manifest, shards


def test_dataset_writes_one_file_per_split(tmp_path: Path) -> None:
    manifest, shards = write_toy(tmp_path)
    out = tmp_path / "normalised"
    report = normalise_dataset(manifest, shards, out, _config(), "toy")
    assert sorted(p.name for p in out.iterdir()) == ["dev.parquet", "report.json", "test.parquet", "train.parquet"]
    assert report["samples"] == {"dev": 2, "test": 2, "train": 2}
    assert report["centring"]["train"]["bbox"] == 1
    meta = read_meta(out / "train.parquet")
    assert meta["stage"] == "normalised" and meta["normalisation"]["fill"] == "interpolate"
    recs = {r.sample_id: r for split in ("train", "dev", "test") for r in read_keypoints(out / f"{split}.parquet")}
    assert set(recs) == {f"s{i:02d}" for i in range(6)}
    src = {r.sample_id: r for s in shards for r in read_keypoints(s)}
    for sid, rec in recs.items():
        assert rec.extra["gloss"] == "A B" and rec.extra["text"] == "ein satz" and rec.extra["fold"] == -1
        np.testing.assert_array_equal(rec.mask, src[sid].mask)  # masks unchanged
        expected, _ = normalise_sample(src[sid].landmarks, src[sid].mask, LAYOUT, NormaliseConfig(), 52 / 65)
        np.testing.assert_allclose(rec.landmarks, expected, atol=1e-6)
    assert json.loads((out / "report.json").read_text())["provenance"]["code_version"]


def test_cross_validation_splits(tmp_path: Path) -> None:
    manifest, shards = write_toy(tmp_path, n=4, splits=("trainval", "test"))
    out = tmp_path / "norm"
    normalise_dataset(manifest, shards, out, _config("hold"), "toy")
    assert sorted(p.name for p in out.glob("*.parquet")) == ["test.parquet", "trainval.parquet"]


def test_missing_sample_is_an_error_and_leaves_no_output(tmp_path: Path) -> None:
    manifest, shards = write_toy(tmp_path)
    out = tmp_path / "normalised"
    with pytest.raises(InputError, match=r"s01.*no keypoint shard"):
        normalise_dataset(manifest, shards[:1], out, _config(), "toy")
    assert not out.exists()
    assert not list(tmp_path.glob(".normalised*"))


def test_cli_exit_code_2_on_bad_input(tmp_path: Path) -> None:
    manifest, shards = write_toy(tmp_path)
    cfg = tmp_path / "config.yaml"
    cfg.write_text("datasets:\n  toy: {adapter: demo, demo_profile: phoenix14t}\n")
    args = ["normalise", "--config", str(cfg), "--dataset", "toy", "--manifest", str(manifest), "--out-dir"]
    assert cli.main([*args, str(tmp_path / "bad"), "--keypoints", str(shards[0])]) == 2
    assert not (tmp_path / "bad").exists()
    assert cli.main([*args, str(tmp_path / "ok"), "--keypoints", *map(str, shards)]) == 0
    assert (tmp_path / "ok" / "train.parquet").exists()


def test_inconsistent_shards_are_errors(tmp_path: Path) -> None:
    manifest, shards = write_toy(tmp_path)
    df = pd.read_parquet(manifest)
    # a shard sample the manifest does not list
    df.iloc[1:].to_parquet(tmp_path / "short.parquet")
    with pytest.raises(InputError, match=r"\[s00\].*not in the manifest"):
        normalise_dataset(tmp_path / "short.parquet", shards, tmp_path / "o1", _config(), "toy")
    # the same sample in two shards
    with pytest.raises(InputError, match="also appears in"):
        normalise_dataset(manifest, [*shards, shards[0]], tmp_path / "o2", _config(), "toy")
    # split disagreement
    df.loc[0, "split"] = "test"
    df.to_parquet(tmp_path / "moved.parquet")
    with pytest.raises(InputError, match=r"\[s00\].*split 'train' differs"):
        normalise_dataset(tmp_path / "moved.parquet", shards, tmp_path / "o3", _config(), "toy")
    assert not any((tmp_path / name).exists() for name in ("o1", "o2", "o3"))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_keypoints_are_refused_naming_shard_and_sample(tmp_path: Path, bad: float) -> None:
    manifest, shards = write_toy(tmp_path)
    recs = read_keypoints(shards[1])
    recs[1].landmarks = recs[1].landmarks.copy()  # read-only view of the file
    recs[1].landmarks[3, 5, 0] = bad  # s03, a detected pose point
    write_keypoints(shards[1], recs, LAYOUT, {"stage": "keypoints"})
    out = tmp_path / "normalised"
    with pytest.raises(InputError, match=r"shard-1\.parquet \[s03\]: landmarks contain NaN or infinite values"):
        normalise_dataset(manifest, shards, out, _config(), "toy")
    assert not out.exists()
