"""The demo adapter: manifest rows from a written demo folder, cross-validation, skips and bad input."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from hatl.config import dataset_config, effective_config
from hatl.datasets import demo as adapter
from hatl.datasets.base import ROW_COLUMNS
from hatl.demo.generator import write_demo
from hatl.errors import InputError
from test_demo import small_config


def write(tmp_path: Path, dataset: str, clips: int = 2, **kw) -> tuple[dict, Path]:
    cfg = small_config(clips=clips, sizes=(8, 2, 2), **kw)
    out = tmp_path / "results" / dataset / "demo"
    write_demo(cfg, dataset, out)
    return cfg, out


def rows_for(cfg: dict, dataset: str):
    eff = effective_config(cfg, dataset)
    return adapter.build_rows(dataset, dataset_config(eff, dataset), eff)


def test_rows_from_the_default_place(tmp_path, monkeypatch):
    cfg, out = write(tmp_path, "phoenix14t")
    monkeypatch.chdir(tmp_path)
    rows, skipped = rows_for(cfg, "phoenix14t")
    assert skipped == []
    assert len(rows) == 14
    for row in rows:
        assert tuple(row) == ROW_COLUMNS
        assert Path(row["source"]).is_absolute() and Path(row["source"]).is_file()
        assert row["fold"] == -1 and row["split"] in ("train", "dev", "test")
        assert row["fps"] == 12.5 and row["n_frames"] >= 16  # half PHOENIX14T's 25 fps (generator.PROFILES)
        assert row["gloss"] and row["text"] and row["signer"].startswith("Signer")
    kinds = Counter((r["source_kind"], r["split"]) for r in rows)
    assert kinds == {("demo", "train"): 8, ("demo", "dev"): 2, ("demo", "test"): 2, ("video", "train"): 2}
    demo_sources = {r["source"] for r in rows if r["source_kind"] == "demo"}
    assert demo_sources == {str((out / "keypoints.parquet").absolute())}
    assert {Path(r["source"]).name for r in rows if r["source_kind"] == "video"} == {"clip_00.mp4", "clip_01.mp4"}


def test_manifest_contract_accepts_the_rows(tmp_path, monkeypatch):
    from hatl.datasets.manifest import check_rows

    cfg, _ = write(tmp_path, "isharah")
    monkeypatch.chdir(tmp_path)
    rows, _ = rows_for(cfg, "isharah")
    check_rows(rows, None, "demo")  # raises on a wrong key, type, split or fold


def test_cross_validation_pool_matches_the_generator(tmp_path):
    cfg, out = write(tmp_path, "medasl")
    cfg["datasets"]["medasl"]["root"] = str(out)  # root overrides results/<dataset>/demo
    rows, skipped = rows_for(cfg, "medasl")
    assert skipped == []
    by_id = {r["sample_id"]: r for r in rows}
    assert {r["split"] for r in rows} == {"trainval", "test"}
    assert all((r["fold"] == -1) == (r["split"] == "test") for r in rows)
    assert {r["fold"] for r in rows if r["split"] == "trainval"} <= set(range(5))
    assert all(r["split"] == "trainval" for r in rows if r["source_kind"] == "video")  # clips are training data
    n_test = sum(r["split"] == "test" for r in rows if r["source_kind"] == "demo")
    assert n_test == round(12 * 0.2)
    # the annotation file (written by the generator) agrees with the manifest's assignment
    lines = (out / "annotations.tsv").read_text(encoding="utf-8").splitlines()[1:]
    for line in lines:
        sid, split, fold = line.split("\t")[:3]
        assert (by_id[sid]["split"], by_id[sid]["fold"]) == (split, int(fold))


def test_missing_clip_and_missing_keypoint_sample_are_counted_skips(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    cfg, out = write(tmp_path, "phoenix14t")
    (out / "clips" / "clip_01.mp4").unlink()
    table = pq.read_table(out / "keypoints.parquet")
    keep = [sid != "demo_0003" for sid in table.column("sample_id").to_pylist()]
    pq.write_table(table.filter(keep), out / "keypoints.parquet")
    monkeypatch.chdir(tmp_path)
    rows, skipped = rows_for(cfg, "phoenix14t")
    assert len(rows) == 12
    reasons = sorted(s["reason"].split(":")[0] for s in skipped)
    assert reasons == ["missing video", "not in keypoint file"]
    assert any("clip_01" in s["record"] for s in skipped) and any("demo_0003" in s["record"] for s in skipped)


def test_bad_demo_folders_name_file_and_record(tmp_path, monkeypatch):
    cfg, out = write(tmp_path, "phoenix14t", clips=0)
    monkeypatch.chdir(tmp_path)
    ann = out / "annotations.tsv"
    lines = ann.read_text(encoding="utf-8").splitlines()
    ann.write_text("\n".join(lines[:3] + [lines[3].replace("\t12.5\t", "\tfast\t")] + lines[4:]) + "\n",
                   encoding="utf-8")
    with pytest.raises(InputError, match=r"annotations.tsv \[line 4 \(demo_0002\)\]"):
        rows_for(cfg, "phoenix14t")
    ann.write_text("\n".join(lines + [lines[2]]) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="duplicate id"):
        rows_for(cfg, "phoenix14t")
    ann.write_text("id\tsplit\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 1"):
        rows_for(cfg, "phoenix14t")
    ann.unlink()
    with pytest.raises(InputError, match="annotation file does not exist"):
        rows_for(cfg, "phoenix14t")
    with pytest.raises(InputError, match="demo folder does not exist"):
        rows_for(cfg, "isharah")
