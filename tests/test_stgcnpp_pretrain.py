"""Demo pretraining: coco mapping, labelled windows, a pyskl-format checkpoint that the importer accepts.

The end-to-end test runs on the three real MedASL keypoint sequences in ../shared/data (real_data_path)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import real_data_path
from hatl.cli import main
from hatl.errors import InputError
from hatl.keypoint_store import KeypointRecord, write_keypoints
from hatl.landmarks import build_layout, groups_from_flat1662, select_from_groups
from hatl.models.checkpoint import load_backbone
from hatl.models.pretrain import (
    PretrainConfig,
    build_windows,
    dominant_gloss,
    one_cycle,
    pose_to_coco,
    pretrain,
    window_starts,
)
from hatl.models.stgcnpp import STGCNPPConfig


pytestmark = pytest.mark.usefixtures("one_torch_thread")


REPO = Path(__file__).resolve().parents[1]
LAYOUT = build_layout()


def medasl_parquet(tmp_path: Path) -> Path:
    """The real MedASL sequences as a normalised-style Parquet (gloss = folder name, one signer)."""
    root = real_data_path("medasl", "Videos")
    records = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        frames = np.stack([np.load(f) for f in sorted(folder.glob("*.npy"), key=lambda f: int(f.stem))])
        coords, mask = select_from_groups(LAYOUT, groups_from_flat1662(frames), len(frames))
        records.append(KeypointRecord(folder.name.replace(" ", "_"), "train", coords, mask, 30.0,
                                      extra={"gloss": folder.name, "signer": "medasl", "text": "", "fold": -1}))
    path = tmp_path / "train.parquet"
    write_keypoints(path, records, LAYOUT, {"stage": "normalised"})
    return path


def synthetic_parquet(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    records = []
    for i, (gloss, signer) in enumerate([("A B", "s1"), ("B C", "s2"), ("", "s1"), ("C A B", "s2")]):
        t = 10 + 4 * i
        records.append(KeypointRecord(f"x{i}", "train", rng.normal(size=(t, LAYOUT.num_joints, 3)).astype(np.float32),
                                      np.ones((t, len(LAYOUT.groups)), bool), 25.0,
                                      extra={"gloss": gloss, "signer": signer, "text": "t", "fold": -1}))
    path = tmp_path / "syn.parquet"
    write_keypoints(path, records, LAYOUT, {"stage": "normalised"})
    return path


def test_window_helpers():
    assert window_starts(5, 8) == [0]
    assert window_starts(20, 8) == [0, 4, 8, 12]
    assert window_starts(21, 8) == [0, 4, 8, 12, 13]  # last crop aligned to the end
    glosses = ["A", "B", "C", "D"]
    assert dominant_gloss(glosses, 40, 0, 8) == "A"  # centre 4 -> first quarter
    assert dominant_gloss(glosses, 40, 12, 8) == "B"  # centre 16
    assert dominant_gloss(glosses, 40, 32, 8) == "D"


@pytest.mark.real_data
def test_pose_to_coco_on_real_keypoints(tmp_path):
    root = real_data_path("medasl", "Videos")
    folder = sorted(p for p in root.iterdir() if p.is_dir())[0]
    frames = np.stack([np.load(f) for f in sorted(folder.glob("*.npy"), key=lambda f: int(f.stem))])
    coords, _ = select_from_groups(LAYOUT, groups_from_flat1662(frames), len(frames))
    coco = pose_to_coco(coords, LAYOUT)
    assert coco.shape == (len(frames), 17, 3)
    pose = frames[:, :132].reshape(len(frames), 33, 4)[:, :, :3]
    np.testing.assert_allclose(coco[:, 5], pose[:, 11], rtol=1e-6)  # left shoulder
    np.testing.assert_allclose(coco[:, 10], pose[:, 16], rtol=1e-6)  # right wrist
    # synthetic knees below the hips (image y grows downwards), ankles below the knees
    assert np.all(coco[:, 13, 1] > coco[:, 11, 1]) and np.all(coco[:, 15, 1] > coco[:, 13, 1])


def test_build_windows_counts_skips(tmp_path):
    path = synthetic_parquet(tmp_path)
    ws = build_windows([path], PretrainConfig(window=8, max_classes=2, layout="coco"))
    assert ws.samples == 4 and ws.x.shape[1:] == (8, 17, 3) and ws.graph.name == "coco"
    assert ws.skipped["sample: no gloss"] == 1
    assert ws.skipped["window: label outside the 2 most frequent"] >= 1
    assert len(ws.classes) == 2 and set(ws.y.tolist()) <= {0, 1}
    signer = build_windows([path], PretrainConfig(window=8, target="signer"))
    assert signer.classes == ["s1", "s2"] or signer.classes == ["s2", "s1"]
    assert not signer.skipped.get("sample: no gloss")


def test_build_windows_needs_two_classes(tmp_path):
    rec = KeypointRecord("only", "train", np.zeros((9, LAYOUT.num_joints, 3), np.float32),
                         np.ones((9, len(LAYOUT.groups)), bool), 25.0, extra={"gloss": "A", "signer": "s"})
    path = tmp_path / "one.parquet"
    write_keypoints(path, [rec], LAYOUT, {"stage": "normalised"})
    with pytest.raises(InputError, match="at least 2 classes"):
        build_windows([path], PretrainConfig(window=8))


def test_pretrain_is_deterministic(tmp_path):
    ws = build_windows([synthetic_parquet(tmp_path)], PretrainConfig(window=8))
    cfg = PretrainConfig(window=8, epochs=1, batch_size=4)
    a, hist_a = pretrain(ws, STGCNPPConfig(base_channels=6), cfg, seed=3)
    b, hist_b = pretrain(ws, STGCNPPConfig(base_channels=6), cfg, seed=3)
    assert hist_a[0]["loss"] == hist_b[0]["loss"]
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k


@pytest.mark.real_data
def test_pretrain_demo_cli_then_import(tmp_path):
    data = medasl_parquet(tmp_path)
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["backbone"].update(base_channels=6, pretrain_demo={"window": 16, "epochs": 3, "batch_size": 8, "lr": 0.01,
                                                           "layout": "coco"})
    cfg_path = tmp_path / "config.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    ck, rep = tmp_path / "pretrained" / "stgcnpp_demo.pth", tmp_path / "pretrained" / "report.json"
    assert main(["pretrain-demo", "--config", str(cfg_path), "--data", str(data), "--out", str(ck), "--report", str(rep)]) == 0

    blob = torch.load(ck, weights_only=True)
    assert set(blob) == {"meta", "state_dict"}
    keys = set(blob["state_dict"])
    assert {"cls_head.fc_cls.weight", "cls_head.fc_cls.bias"} <= keys
    assert all(k.startswith(("backbone.", "cls_head.fc_cls.")) for k in keys)
    assert blob["state_dict"]["backbone.gcn.0.gcn.A"].shape == (3, 17, 17)  # coco layout
    summary = json.loads(rep.read_text())
    assert summary["samples"] == 3 and summary["windows"] > 10 and len(summary["history"]) == 3
    assert summary["history"][-1]["loss"] < summary["history"][0]["loss"]  # it learns something
    assert "provenance" in summary and blob["meta"]["hatl"]["classes"] == summary["classes"]

    out, ir = tmp_path / "backbone" / "stgcnpp.pt", tmp_path / "backbone" / "import_report.json"
    assert main(["import-backbone", "--config", str(cfg_path), "--checkpoint", str(ck),
                 "--out", str(out), "--report", str(ir)]) == 0
    report = json.loads(ir.read_text())
    assert report["source_layout"] == "coco" and report["counts"]["ignored"] == 2
    model = load_backbone(out)
    pre = blob["state_dict"]["backbone.gcn.6.tcn.transform.2.weight"]
    assert torch.equal(model.state_dict()["gcn.6.tcn.transform.2.weight"], pre)


def test_mediapipe_windows_keep_every_joint_of_the_layout(tmp_path):
    ws = build_windows([synthetic_parquet(tmp_path)], PretrainConfig(window=8))  # default layout: mediapipe
    assert ws.x.shape[1:] == (8, LAYOUT.num_joints, 3)
    assert ws.graph.name.startswith("mediapipe[") and ws.graph.num_nodes == LAYOUT.num_joints
    assert any(n.startswith("left_hand.") for n in ws.graph.joint_names)  # the hands reach the pretraining


def test_mediapipe_pretraining_imports_unchanged_onto_its_own_layout(tmp_path):
    """pretrain-demo on the MediaPipe layout writes a pyskl-format file with the graph in meta; import-backbone
    onto the same layout loads every backbone key as it is (nothing 'adapted'), so the learned adjacency and
    data_bn of the hand joints survive; onto a smaller layout the shared joints carry over by name."""
    layout = build_layout(("pose", "left_hand", "right_hand"))
    rng = np.random.default_rng(2)
    records = [KeypointRecord(f"r{i}", "train", rng.normal(size=(12, layout.num_joints, 3)).astype(np.float32),
                              np.ones((12, len(layout.groups)), bool), 25.0,
                              extra={"gloss": g, "signer": "s", "text": "t", "fold": -1})
               for i, g in enumerate(["A B", "B C", "C A", "A C"])]
    data = tmp_path / "train.parquet"
    write_keypoints(data, records, layout, {"stage": "normalised"})
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["preprocess"]["keypoints"]["groups"] = ["pose", "left_hand", "right_hand"]
    cfg["backbone"].update(base_channels=6, pretrain_demo={"window": 8, "epochs": 1, "batch_size": 4})
    cfg_path = tmp_path / "config.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    ck = tmp_path / "stgcnpp_demo.pth"
    assert main(["pretrain-demo", "--config", str(cfg_path), "--data", str(data), "--out", str(ck)]) == 0
    blob = torch.load(ck, weights_only=True)
    assert blob["state_dict"]["backbone.gcn.0.gcn.A"].shape == (3, layout.num_joints, layout.num_joints)
    assert blob["meta"]["hatl"]["layout"] == "mediapipe"
    assert blob["meta"]["hatl"]["graph"]["joint_names"] == [j.name for j in layout.joints]
    out, ir = tmp_path / "stgcnpp.pt", tmp_path / "import.json"
    assert main(["import-backbone", "--config", str(cfg_path), "--checkpoint", str(ck), "--out", str(out),
                 "--report", str(ir)]) == 0
    report = json.loads(ir.read_text())
    assert report["source_layout"].startswith("mediapipe[") and "adapted" not in report["counts"]
    model = load_backbone(out)
    for key in ("gcn.0.gcn.A", "data_bn.running_mean", "gcn.3.tcn.transform.2.weight"):
        assert torch.equal(model.state_dict()[key], blob["state_dict"][f"backbone.{key}"]), key

    cfg["preprocess"]["keypoints"]["groups"] = ["pose", "right_hand"]  # another layout: carried over by name
    cfg_path.write_text(yaml.safe_dump(cfg))
    assert main(["import-backbone", "--config", str(cfg_path), "--checkpoint", str(ck), "--out", str(out),
                 "--report", str(ir)]) == 0
    report = json.loads(ir.read_text())
    small = build_layout(("pose", "right_hand"))
    assert report["counts"]["adapted"] >= 2 and f"({small.num_joints})" in " ".join(report["notes"])
    a_new = load_backbone(out).state_dict()["gcn.0.gcn.A"]
    old_a = blob["state_dict"]["backbone.gcn.0.gcn.A"]
    first_hand = [j.name for j in layout.joints].index(small.joints[-1].name)
    assert torch.equal(a_new[:, -1, -1], old_a[:, first_hand, first_hand])


def test_pretrain_demo_missing_data_exits_2(tmp_path):
    out = tmp_path / "ck.pth"
    code = main(["pretrain-demo", "--config", str(REPO / "config" / "config.yaml"),
                 "--data", str(tmp_path / "nope.parquet"), "--out", str(out)])
    assert code == 2 and not out.exists()


def cv_parquet(tmp_path: Path, split: str = "trainval") -> Path:
    """Six rows of two trainval folds; fold 0's rows carry gloss 'DEV' (fold 1's: A B / B C)."""
    rng = np.random.default_rng(1)
    records = []
    for i in range(6):
        fold = i % 2
        gloss = "DEV ONLY" if fold == 0 else ("A B" if i % 4 == 1 else "B C")
        records.append(KeypointRecord(f"r{i}", split, rng.normal(size=(12, LAYOUT.num_joints, 3)).astype(np.float32),
                                      np.ones((12, len(LAYOUT.groups)), bool), 25.0,
                                      extra={"gloss": gloss, "signer": "s", "text": "t", "fold": fold if split == "trainval" else -1}))
    path = tmp_path / f"{split}.parquet"
    write_keypoints(path, records, LAYOUT, {"stage": "normalised"})
    return path


def test_fold_pretraining_leaves_out_the_fold_dev_rows(tmp_path):
    path = cv_parquet(tmp_path)
    ws = build_windows([path], PretrainConfig(window=8), "fold0")
    assert ws.samples == 3 and ws.held_out == 3  # fold 1's rows train fold 0; fold 0's are its dev rows
    assert set(ws.classes) <= {"A", "B", "C"}  # no window of fold 0's dev glosses
    assert "DEV" in build_windows([path], PretrainConfig(window=8), "fold1").classes
    with pytest.raises(InputError, match=r"\[r0\].*pass --fold foldK"):
        build_windows([path], PretrainConfig(window=8))  # main on cross-validation rows
    with pytest.raises(InputError, match="trainval rows only"):
        build_windows([cv_parquet(tmp_path, "test")], PretrainConfig(window=8), "fold0")
    out = tmp_path / "ck.pth"
    code = main(["pretrain-demo", "--config", str(REPO / "config" / "config.yaml"), "--data", str(path),
                 "--fold", "main", "--out", str(out)])
    assert code == 2 and not out.exists()


def test_two_stage_pretraining_starts_from_an_imported_checkpoint(tmp_path):
    """--init: the first stage's weights (a kinect20 checkpoint) are imported onto the windows' MediaPipe graph
    and trained further; the provenance names both stages, and --fallback-note is said in the label."""
    from hatl.models.checkpoint import import_checkpoint
    from hatl.models.graph import layout_graph
    from hatl.models.stgcnpp import STGCNPP
    from hatl.models.pretrain import pyskl_state_dict, save_pyskl_checkpoint, _Classifier

    data = synthetic_parquet(tmp_path)
    arch = STGCNPPConfig(in_channels=3, base_channels=6)
    kinect = layout_graph(build_layout(("kinect20",)))
    torch.manual_seed(5)
    first = _Classifier(STGCNPP(kinect.adjacency(), arch), 4)
    init = tmp_path / "stgcnpp_isl_kinect.pth"
    save_pyskl_checkpoint(init, pyskl_state_dict(first), {
        "hatl": {"graph": kinect.to_dict()},
        "backbone": {"kind": "pretrained", "name": "isl_kinect", "synthetic": False}})
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["backbone"].update(base_channels=6, pretrain_demo={"window": 8, "epochs": 1, "batch_size": 4, "lr": 1e-9})
    cfg_path = tmp_path / "config.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "stgcnpp_two_stage.pth"
    assert main(["pretrain-demo", "--config", str(cfg_path), "--data", str(data), "--init", str(init),
                 "--out", str(out)]) == 0
    blob = torch.load(out, weights_only=True)
    label = "pretrained on isl_kinect (real) then syn windows (unknown data)"
    assert blob["meta"]["backbone"]["label"] == label and blob["meta"]["hatl"]["init"]["counts"]["loaded"] > 0
    # lr ~0: the trained weights are the imported first stage (a joint-independent conv and a carried joint's A)
    imported = import_checkpoint(init, arch, LAYOUT).model.state_dict()
    for key in ("gcn.5.tcn.transform.2.weight", "gcn.3.gcn.A"):
        assert torch.allclose(blob["state_dict"][f"backbone.{key}"], imported[key])
    assert main(["pretrain-demo", "--config", str(cfg_path), "--data", str(data), "--fallback-note", "FALLBACK: x",
                 "--out", str(out)]) == 0
    assert torch.load(out, weights_only=True)["meta"]["backbone"]["label"].endswith("; FALLBACK: x")
    cfg["backbone"]["pretrain_demo"]["layout"] = "coco"
    cfg_path.write_text(yaml.safe_dump(cfg))
    assert main(["pretrain-demo", "--config", str(cfg_path), "--data", str(data), "--init", str(init),
                 "--out", str(tmp_path / "x.pth")]) == 2  # the importer maps onto MediaPipe graphs only


@pytest.mark.parametrize("steps", [1, 5, 9, 10, 11, 20, 100])
def test_one_cycle_runs_every_step_count_and_peaks_after_its_warm_up(steps):
    """10 steps at a 0.1 warm-up is the count on which torch's own schedule divides by zero."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = one_cycle(opt, 0.1, steps)
    rates = []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert len(rates) == steps and all(0 < r <= 0.1 + 1e-12 for r in rates)
    if steps >= 10:
        peak = int(np.argmax(rates))
        assert rates[peak] > 0.09 and 1 <= peak <= max(2, steps // 10)
        assert rates[-1] < 0.01  # decayed to near zero at the end
