"""hatl.stats: Table 3 figures (hand-computed), the keypoint quality report, the CLI, and the real corpora."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hatl import cli
from hatl.errors import InputError
from hatl.keypoint_store import KeypointRecord, write_keypoints
from hatl.landmarks import build_layout
from hatl.stats import REPORTED, length_stats, quality_rows, table3
from conftest import real_data_path

LAYOUT = build_layout(("pose", "left_hand", "right_hand"))
DEMO = {"adapter": "demo", "demo_profile": "phoenix14t", "language": "German", "domain": "Weather", "text": {}}


def manifest(rows: list[dict]) -> pd.DataFrame:
    base = {"split": "train", "fold": -1, "signer": "p1", "gloss": "", "text": "", "source": "x", "source_kind": "demo",
            "fps": 25.0, "n_frames": 10, "shard": 0}
    return pd.DataFrame([{**base, "sample_id": f"s{i}", **r} for i, r in enumerate(rows)])


SMALL = [
    {"n_frames": 90, "fps": 30.0, "signer": "p1", "gloss": "A B", "text": "Hallo Welt."},
    {"n_frames": 180, "fps": 30.0, "signer": "p2", "gloss": "A C, D", "text": "hallo", "split": "dev"},
    {"n_frames": 360, "fps": 60.0, "signer": "p1", "gloss": "", "text": "Welt hallo du", "split": "test"},
]


def test_table3_hand_computed() -> None:
    table = table3(["toy"], [manifest(SMALL)], [DEMO])
    measured = table[table["source"] == "measured"].iloc[0]
    assert measured["data"] == "demo" and measured["language"] == "German" and measured["domain"] == "Weather"
    assert measured["hours"] == pytest.approx((3 + 6 + 6) / 3600)
    assert (measured["signers"], measured["videos"]) == (2, 3)
    # gloss: "A B", "A C D" (the third sample has none) -> lengths 2, 3; types A B C D
    assert measured["gloss_vocab"] == 4
    assert measured["gloss_avg_len"] == pytest.approx(2.5) and measured["gloss_cv"] == pytest.approx(0.5 / 2.5)
    # text: "hallo welt", "hallo", "welt hallo du" -> lengths 2, 1, 3; types hallo welt du
    assert measured["text_vocab"] == 3
    assert measured["text_avg_len"] == pytest.approx(2.0) and measured["text_cv"] == pytest.approx(math.sqrt(2 / 3) / 2)
    reported = table[table["source"] == "reported"].iloc[0]
    assert reported["dataset"] == "toy" and reported["data"] == "paper"
    assert (reported["hours"], reported["videos"], reported["text_vocab"]) == (10.53, 8257, 3000)


def test_length_stats_edge_cases() -> None:
    empty = length_stats(["", " "])
    assert empty.vocab == 0 and empty.samples == 0 and math.isnan(empty.avg_len)
    same = length_stats(["a b", "c d"])
    assert same.cv == 0.0 and same.avg_len == 2.0


def test_generic_dataset_has_no_reported_row_and_bad_fps_fails() -> None:
    generic = {**DEMO, "adapter": "generic"}
    table = table3(["mine"], [manifest(SMALL)], [generic])
    assert list(table["source"]) == ["measured"] and table.iloc[0]["data"] == "real"
    with pytest.raises(InputError, match=r"\[s0\].*fps"):
        table3(["mine"], [manifest([{"fps": 0.0}])], [generic])


def write_normalised(folder: Path, dataset: str = "toy") -> None:
    """train: s1 (4 frames: pose always, left hand twice, right hand never), s2 (2 frames, nobody); test: s3."""
    folder.mkdir(parents=True)
    m1 = np.array([[1, 1, 0], [1, 1, 0], [1, 0, 0], [1, 0, 0]], bool)
    m2 = np.zeros((2, 3), bool)
    m3 = np.ones((3, 3), bool)

    def rec(sid: str, split: str, mask: np.ndarray) -> KeypointRecord:
        return KeypointRecord(sid, split, np.zeros((len(mask), LAYOUT.num_joints, 3), np.float32), mask, 25.0)

    meta = {"stage": "normalised", "dataset": dataset}
    write_keypoints(folder / "train.parquet", [rec("s1", "train", m1), rec("s2", "train", m2)], LAYOUT, meta)
    write_keypoints(folder / "test.parquet", [rec("s3", "test", m3)], LAYOUT, meta)


def test_quality_rates_from_masks(tmp_path: Path) -> None:
    write_normalised(tmp_path / "norm")
    rows = {(r["split"], r["group"]): r for r in quality_rows("toy", "demo", tmp_path / "norm")}
    train = {g: rows[("train", g)] for g in ("pose", "left_hand", "right_hand", "person")}
    assert {g: (r["detected_frames"], r["frames"]) for g, r in train.items()} == {
        "pose": (4, 6), "left_hand": (2, 6), "right_hand": (0, 6), "person": (4, 6)}
    assert {g: r["samples_never_detected"] for g, r in train.items()} == {
        "pose": 1, "left_hand": 1, "right_hand": 2, "person": 1}
    assert rows[("train", "pose")]["detection_rate"] == pytest.approx(4 / 6)
    assert rows[("all", "person")]["frames"] == 9 and rows[("all", "person")]["detected_frames"] == 7
    assert rows[("test", "right_hand")]["detection_rate"] == 1.0
    with pytest.raises(InputError, match="no normalised split files"):
        quality_rows("toy", "demo", tmp_path / "missing")


def test_cli_writes_all_outputs(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        "datasets:\n"
        "  toy: {adapter: demo, demo_profile: phoenix14t, language: German, domain: Weather}\n"
        "  med: {adapter: demo, demo_profile: medasl, language: American, domain: Medical, tasks: [gloss2text]}\n"
    )
    m1, m2 = tmp_path / "toy.parquet", tmp_path / "med.parquet"
    manifest(SMALL).to_parquet(m1)
    manifest([{"gloss": "X Y", "text": "x y", "split": "trainval", "fold": 0}]).to_parquet(m2)
    write_normalised(tmp_path / "toy" / "normalised")
    out = tmp_path / "results"
    args = ["stats", "--config", str(cfg), "--datasets", "toy", "med", "--manifests", str(m1), str(m2),
            "--normalised-dirs", str(tmp_path / "toy" / "normalised"),
            "--out-table", str(out / "table3.csv"), "--out-quality", str(out / "quality" / "keypoint_quality.csv"),
            "--out-figure", str(out / "figures" / "keypoint_quality.png")]
    assert cli.main(args) == 0
    table = pd.read_csv(out / "table3.csv")
    assert list(zip(table["dataset"], table["source"])) == [
        ("toy", "measured"), ("toy", "reported"), ("med", "measured"), ("med", "reported")]
    assert table.loc[3, "videos"] == REPORTED["medasl"]["videos"]
    md = (out / "table3.md").read_text(encoding="utf-8")
    assert "| toy | reported | paper | German | Weather | 10.53 | 9 | 8,257 |" in md
    assert json.loads((out / "table3.json").read_text())["provenance"]["code_version"]
    quality = pd.read_csv(out / "quality" / "keypoint_quality.csv")
    assert set(quality["dataset"]) == {"toy"} and set(quality["split"]) == {"train", "test", "all"}
    assert (out / "figures" / "keypoint_quality.png").stat().st_size > 10_000
    assert (out / "figures" / "keypoint_quality.pdf").exists()
    # mismatched argument counts are an input error (exit 2)
    assert cli.main([*args[:8], *args[9:]]) == 2


# --------------------------------------------------------------------------------------------- real data


@pytest.mark.real_data
def test_real_phoenix_table3_text_statistics() -> None:
    folder = real_data_path("phoenix14t", "manual")
    frames = [pd.read_csv(folder / f"PHOENIX-2014-T.{s}.corpus.csv", sep="|").assign(split=s) for s in ("train", "dev", "test")]
    df = pd.concat(frames, ignore_index=True)
    m = manifest([{"gloss": g, "text": t, "signer": p, "split": s}
                  for g, t, p, s in zip(df["orth"], df["translation"], df["speaker"], df["split"])])
    row = table3(["phoenix14t"], [m], [{**DEMO, "adapter": "phoenix14t"}]).iloc[0]
    # All three splits reproduce the paper's Table 3 text columns exactly (vocab 1,115 / 3,000, lengths 7.66 / 13.77).
    assert (row["signers"], row["videos"], row["gloss_vocab"], row["text_vocab"]) == (9, 8257, 1115, 3000)
    assert round(row["gloss_avg_len"], 2) == 7.66 and round(row["text_avg_len"], 2) == 13.77
    # The paper's CVs (0.49 / 1.06) are not std/mean of these lengths; ours: 0.44 / 0.43.
    assert round(row["gloss_cv"], 2) == 0.44 and round(row["text_cv"], 2) == 0.43


@pytest.mark.real_data
def test_real_medasl_table3_text_statistics() -> None:
    df = pd.read_csv(real_data_path("medasl", "Annotations", "Gloss-Text Annotations.csv"))
    m = manifest([{"gloss": g, "text": t} for g, t in zip(df["Gloss"], df["Text"])])
    row = table3(["medasl"], [m], [{**DEMO, "adapter": "medasl"}]).iloc[0]
    # The 500-sentence release (the paper's row is MedASL2000): normalised vocab 740 / 795.
    assert (row["signers"], row["videos"], row["gloss_vocab"], row["text_vocab"]) == (1, 500, 740, 795)
    assert round(row["gloss_avg_len"], 2) == 5.46 and round(row["text_avg_len"], 2) == 9.39
