"""Parity with pyskl: reference tensors made by running pyskl's STGCN (see tests/data/stgcnpp_ref/README.md)
go through hatl's checkpoint importer into hatl's STGCNPP and must give pyskl's outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hatl.models.checkpoint import import_checkpoint
from hatl.models.graph import pyskl_graph
from hatl.models.stgcnpp import STGCNPPConfig


pytestmark = pytest.mark.usefixtures("one_torch_thread")


REF_DIR = Path(__file__).parent / "data" / "stgcnpp_ref"
CASES = ["coco_b10", "ntu_b8"]


def load_reference(name: str) -> tuple[dict, dict]:
    """(checkpoint object as pyskl/mmcv would have written it, reference blob with x / y_eval / y_train)."""
    ref = torch.load(REF_DIR / f"{name}.pt", weights_only=True)
    state, offset = {}, 0
    for key, shape, dtype in zip(ref["keys"], ref["shapes"], ref["dtypes"]):
        n = int(torch.Size(shape).numel())
        state[key] = ref["flat"][offset:offset + n].reshape(shape).to(getattr(torch, dtype.split(".")[-1]))
        offset += n
    assert offset == ref["flat"].numel()
    ckpt = {"meta": {"source": "pyskl reference"}, "state_dict": state} if ref["checkpoint_style"] == "mmcv" else state
    return ckpt, ref


@pytest.fixture(params=CASES)
def imported(request, tmp_path):
    ckpt, ref = load_reference(request.param)
    path = tmp_path / f"{request.param}.pth"
    torch.save(ckpt, path)
    result = import_checkpoint(path, STGCNPPConfig(base_channels=ref["base_channels"]), layout=None)
    return result, ref


def test_eval_outputs_match_pyskl(imported):
    result, ref = imported
    model = result.model.eval()
    with torch.no_grad():
        y = model(ref["x"])
    assert y.shape == ref["y_eval"].shape
    # end-to-end float32 noise (notes: ~1e-4 moves with thread count alone): relative 5e-5 plus a tiny floor
    torch.testing.assert_close(y, ref["y_eval"], rtol=5e-5, atol=2e-6)


def test_train_mode_outputs_match_pyskl(imported):
    """Training mode uses batch statistics over a tiny batch, which amplifies float noise: looser tolerance."""
    result, ref = imported
    model = result.model.train()
    y = model(ref["x"]).detach()
    torch.testing.assert_close(y, ref["y_train"], rtol=1e-3, atol=1e-3)


def test_report_lists_every_key(imported):
    result, ref = imported
    report = result.report.to_dict()
    n_model = len(result.model.state_dict())
    assert report["counts"]["loaded"] == n_model  # same graph: nothing adapted
    assert report["source_layout"] == ref["layout"]
    if ref["checkpoint_style"] == "mmcv":
        assert report["counts"]["ignored"] == 2  # cls_head.fc_cls.{weight,bias}
        assert report["source_format"] == "mmcv"
    else:
        assert "ignored" not in report["counts"]
        assert report["source_format"] == "flat"


@pytest.mark.parametrize("name", CASES)
def test_reference_adjacency_is_pyskl_graph(name):
    """The generator added U[0, 0.05) to each block's A: the graph structure underneath must be hatl's graph."""
    ckpt, ref = load_reference(name)
    state = ckpt["state_dict"] if "state_dict" in ckpt else ckpt
    prefix = "backbone." if ref["checkpoint_style"] == "mmcv" else ""
    base = torch.as_tensor(pyskl_graph(ref["layout"]).adjacency())
    for i in range(10):
        diff = state[f"{prefix}gcn.{i}.gcn.A"] - base
        assert float(diff.min()) >= 0.0 and float(diff.max()) < 0.05
