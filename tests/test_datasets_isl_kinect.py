"""isl_kinect adapter: the real 300-file subset, its quirks, the keypoint conversion and bad input."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import real_data_path

from hatl.cli import main
from hatl.config import validate_config
from hatl.datasets import isl_kinect
from hatl.datasets.manifest import build_manifest, read_manifest
from hatl.datasets.pretrain_sources import write_source_data
from hatl.errors import ConfigError, InputError
from hatl.keypoint_store import read_keypoints, read_layout
from hatl.landmarks import KINECT20_NAMES
from hatl.models.graph import layout_graph


def config_for(root: Path, **over) -> dict:
    entry = {"adapter": "isl_kinect", "root": str(root), "tasks": [], **over}
    return validate_config({"datasets": {"isl": entry}})


def write_take(folder: Path, name: str, frames: int = 5, values: int = 60, text: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if text is None:
        rng = np.random.default_rng(len(name))
        text = "\n".join(" ".join(f"{v:.4f}" for v in rng.normal(size=values)) for _ in range(frames)) + "\n"
    path.write_text(text, encoding="ascii")
    return path


# ------------------------------------------------------------------------------------------- real data
@pytest.mark.real_data
def test_real_subset_manifest():
    root = real_data_path("isl_kinect")
    manifest = build_manifest(config_for(root), "isl")
    frame = manifest.frame
    assert len(frame) == 300 and manifest.meta["skipped_count"] == 0
    assert frame["gloss"].nunique() == 30 and frame["signer"].nunique() == 10
    assert set(Counter(frame["signer"]).values()) == {30}  # one take of every sign per signer
    # the release's double-underscore quirks are parsed, not skipped
    born = frame.set_index("sample_id").loc["born_pradeep_1"]
    assert born["gloss"] == "born" and born["signer"] == "pradeep" and born["source"].endswith("born__pradeep_1.txt")
    assert frame.set_index("sample_id").loc["no_apurve_1", "gloss"] == "no"
    # folds are leave-one-signer-out: fold = the signer's rank in name order
    signers = sorted(frame["signer"].unique())
    assert all(frame["fold"] == frame["signer"].map(signers.index)) and set(frame["split"]) == {"trainval"}
    assert frame["n_frames"].min() == 27 and frame["n_frames"].max() == 166  # take 1 (the full release: 18-189)
    assert frame.set_index("sample_id").loc["afternoon_apurve_1", "n_frames"] == 64


@pytest.mark.real_data
def test_real_joint_order_is_checked_against_the_data():
    """Bone lengths between linked joints stay (nearly) constant over a take, and the head is on top."""
    arr = isl_kinect.read_skeleton(real_data_path("isl_kinect", "RawDataset", "afternoon_apurve_1.txt"), "a")
    assert arr.shape == (64, 20, 3)
    graph = layout_graph(read_layout_of_kinect())
    for child, parent in graph.inward:
        length = np.linalg.norm(arr[:, child] - arr[:, parent], axis=1)
        assert length.std() < 0.05 and 0.04 < length.mean() < 0.6, (KINECT20_NAMES[child], KINECT20_NAMES[parent])
    heights = arr[:, :, 1].mean(axis=0)
    trunk = ["head", "shoulder_center", "spine", "hip_center", "left_knee", "left_ankle", "left_foot"]
    assert all(np.diff([heights[KINECT20_NAMES.index(j)] for j in trunk]) < 0)  # top to bottom
    # subject's right has the larger camera-space x (Kinect x grows to the sensor's left)
    assert (arr[:, 3, 0] > arr[:, 2, 0]).all()


def read_layout_of_kinect():
    from hatl.landmarks import build_layout

    return build_layout(("kinect20",))


@pytest.mark.real_data
def test_real_source_data_writes_manifest_and_keypoints(tmp_path):
    root = real_data_path("isl_kinect")
    sub = tmp_path / "rel" / "RawDataset"
    for name in ("born__pradeep_1.txt", "afternoon_apurve_1.txt", "no__apurve_1.txt"):
        write_take(sub, name, text=(root / "RawDataset" / name).read_text())
    config = validate_config({"datasets": {"medasl": {"adapter": "demo", "demo_profile": "medasl",
                                                       "cross_validation": {"folds": 5}}},
                              "backbone": {"pretrain": {"roots": {"isl_kinect": str(tmp_path / "rel")}}}})
    meta = write_source_data(config, "isl_kinect", tmp_path / "out")
    assert meta["counts"] == {"trainval": 3}
    shard = tmp_path / "out" / "keypoints" / "shard-0.parquet"
    assert read_layout(shard).groups == ("kinect20",)
    recs = {r.sample_id: r for r in read_keypoints(shard)}
    want = np.loadtxt(root / "RawDataset" / "born__pradeep_1.txt", dtype=np.float32).reshape(-1, 20, 3)
    np.testing.assert_array_equal(recs["born_pradeep_1"].landmarks, want)
    assert recs["born_pradeep_1"].mask.all()
    assert list(read_manifest(tmp_path / "out" / "manifest.parquet")["sample_id"]) == sorted(recs)


# ------------------------------------------------------------------------------------------- quirks
def test_skips_are_counted_with_reasons(tmp_path):
    folder = tmp_path / "RawDataset"
    write_take(folder, "hello_anna_1.txt")
    write_take(folder, "hello__bob_1.txt")
    write_take(folder, "README.md", text="notes")
    write_take(folder, "hello-anna-2.txt")
    write_take(folder, "hello_anna_3.txt", text="")
    rows, skipped = isl_kinect.build_rows("isl", config_for(tmp_path, missing_sources="skip")["datasets"]["isl"], {})
    assert sorted(r["sample_id"] for r in rows) == ["hello_anna_1", "hello_bob_1"]
    reasons = {s["record"]: s["reason"].split(":")[0] for s in skipped}
    assert reasons == {"README.md": "not a skeleton file", "hello-anna-2.txt": "file name not <sign>_<signer>_<take>.txt",
                       "hello_anna_3": "empty skeleton file"}


# -------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("text", "problem"), [
    ("1 2 3\n", "3 values, expected 60"),
    (" ".join(["0.1"] * 59 + ["x"]) + "\n", "not a number"),
    (" ".join(["0.1"] * 59 + ["nan"]) + "\n", "non-finite"),
])
def test_bad_line_names_file_line_and_problem(tmp_path, text, problem):
    path = write_take(tmp_path / "RawDataset", "hello_anna_1.txt", text=text)
    with pytest.raises(InputError) as err:
        isl_kinect.build_rows("isl", config_for(tmp_path)["datasets"]["isl"], {})
    assert err.value.path == str(path) and "hello_anna_1" in err.value.record and problem in err.value.problem


def test_duplicate_after_quirk_normalisation_is_fatal(tmp_path):
    write_take(tmp_path / "RawDataset", "born_pradeep_1.txt")
    write_take(tmp_path / "RawDataset", "born__pradeep_1.txt")
    with pytest.raises(InputError, match="duplicate sample id 'born_pradeep_1'"):
        isl_kinect.build_rows("isl", config_for(tmp_path)["datasets"]["isl"], {})


def test_empty_file_is_fatal_by_default(tmp_path):
    write_take(tmp_path / "RawDataset", "hello_anna_1.txt", text="")
    with pytest.raises(InputError, match="empty skeleton file; set missing_sources: skip"):
        isl_kinect.build_rows("isl", config_for(tmp_path)["datasets"]["isl"], {})


def test_text_tasks_are_refused(tmp_path):
    write_take(tmp_path / "RawDataset", "hello_anna_1.txt")
    with pytest.raises(ConfigError, match="tasks: \\[\\]"):
        isl_kinect.build_rows("isl", config_for(tmp_path, tasks=["sign2text"])["datasets"]["isl"], {})


def test_cli_exit_code_2_and_no_output(tmp_path, caplog):
    rel = tmp_path / "rel"
    write_take(rel / "RawDataset", "hello_anna_1.txt", text="1 2\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"datasets:\n  medasl: {{adapter: demo, demo_profile: medasl, cross_validation: {{folds: 5}}}}\n"
                   f"backbone:\n  pretrain: {{roots: {{isl_kinect: {rel}}}}}\n")
    assert main(["pretrain-data", "--config", str(cfg), "--source", "isl_kinect", "--out-dir", str(tmp_path / "o")]) == 2
    err = caplog.text
    assert "hello_anna_1.txt" in err and "line 1" in err and "2 values, expected 60" in err
    assert not (tmp_path / "o").exists()
