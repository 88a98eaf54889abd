"""Backbone provenance: recorded by pretraining, kept by import-backbone, carried into a run's result files,
and a warning when a real dataset's backbone saw only synthetic data (tables: tests/test_tables.py)."""

from __future__ import annotations

import copy
import json
import logging

import numpy as np
import pytest
import torch

from hatl.keypoint_store import KeypointRecord, write_keypoints
from hatl.landmarks import build_layout
from hatl.models.backbone_source import (
    NONE,
    BackboneSource,
    effective_method,
    missing_real_source,
    pretrained_on,
    pretrained_on_files,
    pyskl,
    synthetic_backbone_warning,
    then,
    with_note,
)
from hatl.models.checkpoint import backbone_source_of, import_checkpoint, save_backbone
from hatl.models.graph import pyskl_graph
from hatl.models.stgcnpp import STGCNPP, STGCNPPConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ARCH = STGCNPPConfig(base_channels=6)


def test_the_three_labels():
    assert pyskl("ckpts/stgcnpp_ntu120_xsub_hrnet/j.pth").label == "pyskl checkpoint stgcnpp_ntu120_xsub_hrnet/j.pth"
    assert pretrained_on([("phoenix14t", True)]).label == "pretrained on phoenix14t (synthetic)"
    assert pretrained_on([("isl_kinect", False)]).label == "pretrained on isl_kinect (real)"
    assert NONE.label == "none"
    assert pretrained_on([("phoenix14t", True)]).synthetic_only
    # real data anywhere in the mix: not synthetic-only
    mixed = pretrained_on([("phoenix14t", True), ("medasl", False)])
    assert not mixed.synthetic_only and mixed.label == "pretrained on medasl+phoenix14t (real)"
    for source in (pyskl("a/b.pth"), pretrained_on([("medasl", True)]), NONE):
        assert BackboneSource.from_dict(json.loads(json.dumps(source.to_dict()))) == source
    assert BackboneSource.from_dict(None).label.startswith("unknown")


def test_two_stage_and_fallback_labels():
    real, demo = pretrained_on([("isl_kinect", False)]), pretrained_on([("phoenix14t", True)])
    staged = then(real, demo)
    assert staged.label == "pretrained on isl_kinect (real) then phoenix14t windows (synthetic)"
    assert staged.real_data and not staged.synthetic_only  # the first stage saw real signing
    assert BackboneSource.from_dict(json.loads(json.dumps(staged.to_dict()))) == staged
    fallback = with_note(demo, "FALLBACK: isl_kinect missing")
    assert fallback.label == "pretrained on phoenix14t (synthetic); FALLBACK: isl_kinect missing"
    assert fallback.synthetic_only and not fallback.real_data
    assert BackboneSource.from_dict(fallback.to_dict()) == fallback
    with pytest.raises(ValueError, match="must be a pretraining"):
        then(real, NONE)


def test_missing_real_source_falls_back_to_demo_only_when_the_root_is_absent(tmp_path):
    def config(method, root, checkpoint=None):
        return {"backbone": {"checkpoint": checkpoint,
                             "pretrain": {"method": method, "sources": ["isl_kinect"], "roots": {"isl_kinect": root}}}}

    absent = str(tmp_path / "no_such_folder")
    note = missing_real_source(config("two_stage", absent))
    assert note and "isl_kinect" in note and absent in note and note.startswith("FALLBACK")
    assert effective_method(config("two_stage", absent)) == "demo"
    assert effective_method(config("supervised", absent)) == "demo"
    assert missing_real_source(config("two_stage", str(tmp_path))) is None  # the folder exists
    assert effective_method(config("two_stage", str(tmp_path))) == "two_stage"
    assert missing_real_source(config("demo", absent)) is None  # the demo method reads no real source
    assert missing_real_source(config("two_stage", absent, checkpoint="j.pth")) is None  # a checkpoint wins


def _keypoint_file(path, dataset: str, adapter: str | None):
    layout = build_layout(("pose",))
    rec = KeypointRecord("s1", "train", np.zeros((4, layout.num_joints, 3), np.float32), np.ones((4, 1), bool), 25.0,
                         extra={"gloss": "A", "text": "a"})
    meta = {"stage": "normalised", "dataset": dataset}
    if adapter is not None:
        meta["provenance"] = {"config": {"datasets": {dataset: {"adapter": adapter}}}}
    else:
        meta["keypoints"] = {"extractor": {"extractor": "demo"}}
    write_keypoints(path, [rec], layout, meta)
    return path


def test_pretraining_data_is_read_from_the_keypoint_files(tmp_path):
    demo = _keypoint_file(tmp_path / "demo.parquet", "phoenix14t", "demo")
    real = _keypoint_file(tmp_path / "real.parquet", "medasl", "medasl")
    bare = _keypoint_file(tmp_path / "bare.parquet", "isharah", None)  # no config: the extractor says demo
    assert pretrained_on_files([demo]).label == "pretrained on phoenix14t (synthetic)"
    assert pretrained_on_files([real]).label == "pretrained on medasl (real)"
    assert pretrained_on_files([bare]).synthetic_only


def _mmcv_checkpoint(path, meta: dict | None):
    torch.manual_seed(0)
    state = {f"backbone.{k}": v for k, v in STGCNPP(pyskl_graph("coco").adjacency(), ARCH).state_dict().items()}
    torch.save({"meta": meta or {}, "state_dict": state} if meta is not None else state, path)
    return path


def test_import_keeps_the_record_and_a_foreign_file_is_a_pyskl_checkpoint(tmp_path):
    record = pretrained_on([("phoenix14t", True)])
    ours = _mmcv_checkpoint(tmp_path / "stgcnpp_demo.pth", {"hatl": {"task": "x"}, "backbone": record.to_dict()})
    result = import_checkpoint(ours, ARCH, build_layout())
    assert result.source == record
    save_backbone(tmp_path / "stgcnpp.pt", result)
    assert backbone_source_of(tmp_path / "stgcnpp.pt") == record
    released = tmp_path / "stgcnpp_ntu120_xsub_hrnet"
    released.mkdir()
    for meta in ({"epoch": 3}, None):  # an mmcv file with pyskl's own meta, and a flat state dict
        path = _mmcv_checkpoint(released / "j.pth", meta)
        assert import_checkpoint(path, ARCH, build_layout()).source.label == "pyskl checkpoint stgcnpp_ntu120_xsub_hrnet/j.pth"


def test_synthetic_backbone_warning_only_for_real_data():
    synthetic = pretrained_on([("phoenix14t", True)])
    assert "saw only synthetic data" in synthetic_backbone_warning("medasl", synthetic, dataset_is_demo=False)
    assert synthetic_backbone_warning("phoenix14t", synthetic, dataset_is_demo=True) is None
    assert synthetic_backbone_warning("medasl", pretrained_on([("medasl", False)]), dataset_is_demo=False) is None
    assert synthetic_backbone_warning("medasl", pyskl("a/j.pth"), dataset_is_demo=False) is None


def test_a_run_records_its_backbone_and_warns_on_real_data(tmp_path, caplog):
    """A real dataset (adapter generic) whose backbone was pretrained on a demo: logged at the start and at
    the end of training, kept in summary.json / best.pt; Gloss2Text has no backbone ('none')."""
    from hatl.train.recipe import RunSpec, Trainer
    from test_train_data import tiny_run_inputs

    inputs = tiny_run_inputs(tmp_path)
    blob = torch.load(inputs["backbone"], weights_only=True)
    blob["backbone"] = pretrained_on([("phoenix14t", True)]).to_dict()
    torch.save(blob, inputs["backbone"])
    config = copy.deepcopy(inputs["config"])
    config["training"]["max_epochs"] = 1
    spec = RunSpec("tiny", "transformer", "sign2text", "classical", "main", inputs["data_dir"], inputs["vocab_dir"],
                   inputs["backbone"], tmp_path / "out", tmp_path / "resume", threads=1)
    with caplog.at_level(logging.WARNING, logger="hatl"):
        summary = Trainer(spec, config).run()
    warnings = [r.getMessage() for r in caplog.records if "saw only synthetic data" in r.getMessage()]
    assert len(warnings) == 2  # at the start and at the end
    saved = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert saved["backbone"]["label"] == summary["backbone"]["label"] == "pretrained on phoenix14t (synthetic)"
    assert saved["warnings"] == warnings[:1]
    assert torch.load(tmp_path / "out" / "best.pt", weights_only=False)["backbone"]["label"].startswith("pretrained on")
    g2t = RunSpec("tiny", "transformer", "gloss2text", "full", "main", inputs["data_dir"], inputs["vocab_dir"], None,
                  tmp_path / "g2t", tmp_path / "g2t_resume", threads=1)
    trainer = Trainer(g2t, config)
    assert trainer.backbone_source.label == "none" and trainer.warnings == []
