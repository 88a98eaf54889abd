"""boston104 adapter: the real release (201 sentences, 3 signers, original split), the 3-point layout and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import real_data_path

from hatl.config import validate_config
from hatl.datasets import boston104
from hatl.datasets.manifest import build_manifest, write_manifest
from hatl.errors import ConfigError, InputError
from hatl.keypoint_store import read_keypoints, read_layout
from hatl.keypoints.cli import keypoints_shard
from hatl.landmarks import build_layout
from hatl.models.graph import boston3_graph, layout_graph


def config_for(root: Path, **over) -> dict:
    return validate_config({"datasets": {"b": {"adapter": "boston104", "root": str(root), "tasks": [], **over}}})


def rows_of(root: Path, **over) -> tuple[list[dict], list[dict]]:
    cfg = config_for(root, **over)
    return boston104.build_rows("b", cfg["datasets"]["b"], cfg)


def write_release(root: Path, tracks: dict[int, int], train: list[str], test: list[str] | None = None,
                  speakers: str | None = None) -> None:
    """tracks: video -> frames; train/test: words-file data lines."""
    root.mkdir(parents=True, exist_ok=True)
    lines = ["video,frame,left-x,left-y,right-x,right-y,nose-x,nose-y"]
    for video, n in tracks.items():
        lines += [f"{video},{f},{100 + f},{200},{50},{60 + f},{70},{80}" for f in range(n)]
    (root / "hands_condensed.csv").write_text("\n".join(lines) + "\n")
    (root / "train_words.csv").write_text("\n".join(["video,speaker,word,startframe,endframe", *train]) + "\n")
    (root / "test_words.csv").write_text("\n".join(["video,speaker,word,startframe,endframe", *(test or [])]) + "\n")
    default = "\n".join(f"{v},woman-1" for v in tracks)
    (root / "speaker.csv").write_text("video,speaker\n" + (speakers if speakers is not None else default) + "\n")


# ------------------------------------------------------------------------------------------- real data
@pytest.mark.real_data
def test_real_release_manifest():
    root = real_data_path("boston104")
    manifest = build_manifest(config_for(root), "b")
    frame = manifest.frame.set_index("sample_id")
    assert len(frame) == 201 and manifest.meta["skipped_count"] == 0
    # the database's sentence split; every 10th training video (by number) is dev: 161 -> 145 + 16
    assert manifest.meta["counts"] == {"dev": 16, "test": 40, "train": 145}
    assert frame["signer"].value_counts().to_dict() == {"man-1": 79, "woman-1": 62, "woman-2": 60}
    glosses = {g for seq in frame["gloss"] for g in seq.split()}
    assert len(glosses) == 113  # 112 in train, one more seen only in test
    assert frame["gloss"].nunique() == 140 and (frame["gloss"].value_counts() >= 2).sum() == 37  # SOURCES.md
    # video 1 (train_words.csv: JOHN 8-17, WRITE 22-50, ...) in start-frame order
    assert frame.loc["001", "gloss"].startswith("JOHN WRITE") and frame.loc["001", "split"] == "train"
    train_videos = sorted(int(v) for v in frame.index[frame["split"] != "test"])
    assert sorted(int(v) for v in frame.index[frame["split"] == "dev"]) == train_videos[9::10]
    assert frame.loc["002", "split"] == "test" and frame.loc["002", "gloss"].startswith("JOHN WRITE")


@pytest.mark.real_data
def test_real_keypoints_in_the_boston3_layout(tmp_path):
    root = real_data_path("boston104")
    cfg = config_for(root)
    manifest = build_manifest(cfg, "b")
    path = tmp_path / "manifest.parquet"
    write_manifest(manifest, path)
    shard = int(manifest.frame.set_index("sample_id").loc["098", "shard"])
    out = tmp_path / "shard.parquet"
    keypoints_shard(cfg, "b", path, shard, out)
    assert read_layout(out) == build_layout(("boston3",))
    rec = {r.sample_id: r for r in read_keypoints(out)}["098"]
    # hands_condensed.csv, first row of video 98: 98,0,149,181,170,175,161,62
    np.testing.assert_array_equal(rec.landmarks[0], [[149, 181, 0], [170, 175, 0], [161, 62, 0]])
    assert rec.n_frames == manifest.frame.set_index("sample_id").loc["098", "n_frames"]


def test_boston3_graph_is_its_own_layout():
    graph = layout_graph(build_layout(("boston3",)))
    assert graph == boston3_graph() and graph.num_nodes == 3 and graph.joint_names[graph.center] == "pose.nose"
    adjacency = graph.adjacency()
    assert adjacency.shape == (3, 3, 3) and adjacency[1, 2, 0] == 1.0 and adjacency[1, 2, 1] == 1.0
    with pytest.raises(ValueError, match="layout of its own"):
        build_layout(("boston3", "pose"))


# ------------------------------------------------------------------------------------------ behaviour
def test_gloss_order_split_and_skips(tmp_path):
    write_release(tmp_path, {1: 30, 2: 20, 3: 10}, train=["1,woman-1,B,10,20", "1,woman-1,A,0,5"],
                  test=["2,woman-1,C,0,19"])
    rows, skipped = rows_of(tmp_path)
    by_id = {r["sample_id"]: r for r in rows}
    assert by_id["001"]["gloss"] == "A B" and by_id["001"]["split"] == "train" and by_id["001"]["n_frames"] == 30
    assert by_id["002"]["split"] == "test" and by_id["002"]["signer"] == "woman-1"
    assert skipped == [{"record": "hands_condensed.csv video 3", "reason": "tracks without gloss annotation: 10 frames"}]


def test_missing_tracks_follow_the_policy(tmp_path):
    write_release(tmp_path, {1: 30}, train=["1,woman-1,A,0,5", "4,woman-1,B,0,5"], speakers="1,woman-1\n4,woman-1")
    with pytest.raises(InputError, match="video without tracks; set missing_sources: skip"):
        rows_of(tmp_path)
    rows, skipped = rows_of(tmp_path, missing_sources="skip")
    assert [r["sample_id"] for r in rows] == ["001"] and skipped[0]["reason"].startswith("video without tracks")


@pytest.mark.parametrize(("train", "test", "speakers", "file", "problem"), [
    (["1,woman-1,A,5,3"], [], None, "train_words.csv", "segment 5-3 is empty"),
    (["1,woman-1,A,0,40"], [], None, "train_words.csv", "past the last tracked frame 29"),
    (["1,woman-1,A,x,3"], [], None, "train_words.csv", "startframe 'x' is not an integer"),
    (["1,woman-1,A,0,3"], ["1,woman-1,B,0,3"], None, "test_words.csv", "in both train and test"),
    (["1,man-1,A,0,3"], [], None, "train_words.csv", "disagrees with speaker.csv"),
    (["1,woman-1,A,0,3"], [], "", "speaker.csv", "has no speaker"),
    (["1,woman-1,A,0"], [], None, "train_words.csv", "4 fields, expected 5"),
])
def test_bad_input_names_file_record_and_problem(tmp_path, train, test, speakers, file, problem):
    write_release(tmp_path, {1: 30}, train=train, test=test, speakers=speakers)
    with pytest.raises(InputError) as err:
        rows_of(tmp_path)
    assert err.value.path.endswith(file) and err.value.record and problem in err.value.problem


def test_frame_gap_is_fatal(tmp_path):
    write_release(tmp_path, {1: 5}, train=["1,woman-1,A,0,3"])
    path = tmp_path / "hands_condensed.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:3] + lines[4:]) + "\n")  # drop frame 2
    with pytest.raises(InputError, match=r"video 1\]: frames are not numbered 0..3"):
        rows_of(tmp_path)


def test_text_tasks_are_refused(tmp_path):
    write_release(tmp_path, {1: 30}, train=["1,woman-1,A,0,3"])
    with pytest.raises(ConfigError, match="no spoken-language text"):
        rows_of(tmp_path, tasks=["sign2gloss2text"])


def test_gloss_recognition_alone_is_allowed(tmp_path):
    """sign2gloss needs video and glosses, no text: boston104 can run it (its Sign2Gloss WER)."""
    write_release(tmp_path, {1: 30}, train=["1,woman-1,A,0,3"])
    rows, _ = rows_of(tmp_path, tasks=["sign2gloss"])
    assert rows and all(r["gloss"] for r in rows)


def test_a_backbone_on_the_boston3_skeleton_imports_carrying_only_the_nose(tmp_path):
    import torch

    from hatl.models import checkpoint
    from hatl.models.stgcnpp import STGCNPP, STGCNPPConfig

    torch.set_num_threads(1)
    arch = STGCNPPConfig(base_channels=6)
    torch.manual_seed(0)
    state = {f"backbone.{k}": v for k, v in STGCNPP(boston3_graph().adjacency(), arch).state_dict().items()}
    state["backbone.gcn.2.gcn.A"] = torch.rand(3, 3, 3) + 1.0  # distinguishable from the rebuilt values
    torch.save({"state_dict": state}, tmp_path / "b3.pth")
    layout = build_layout(("pose", "left_hand", "right_hand"))
    result = checkpoint.import_checkpoint(tmp_path / "b3.pth", arch, layout)
    assert result.report.source_layout == "boston3"
    assert any(n.startswith("joints carried over (1)") and "pose.nose" in n for n in result.report.notes)
    nose = layout.index("pose", 0)
    assert result.model.state_dict()["gcn.2.gcn.A"][0, nose, nose] == state["backbone.gcn.2.gcn.A"][0, 2, 2]


def test_import_backbone_targets_the_skeleton_of_a_skeleton_dataset(tmp_path):
    """boston104's keypoints are boston3: its imported backbone is on that graph (the nose carried), not MediaPipe's."""
    import torch

    from hatl.cli import main
    from hatl.models.checkpoint import load_backbone
    from hatl.models.graph import coco_graph
    from hatl.models.stgcnpp import STGCNPP, STGCNPPConfig

    torch.set_num_threads(1)
    torch.manual_seed(0)
    state = STGCNPP(coco_graph().adjacency(), STGCNPPConfig(base_channels=6)).state_dict()
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in state.items()}}, tmp_path / "coco.pth")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"datasets:\n  b: {{adapter: boston104, root: {tmp_path}, tasks: [sign2gloss]}}\n"
                   "backbone: {base_channels: 6}\n")
    assert main(["import-backbone", "--config", str(cfg), "--checkpoint", str(tmp_path / "coco.pth"), "--dataset", "b",
                 "--out", str(tmp_path / "bb.pt"), "--report", str(tmp_path / "r.json")]) == 0
    backbone = load_backbone(tmp_path / "bb.pt")
    assert backbone.graph.name == "boston3" and backbone.graph.num_nodes == 3
