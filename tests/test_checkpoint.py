"""Checkpoint import: both pyskl layouts, both file styles, the report, carry-over onto the MediaPipe graph,
and refusal of unknown, misshapen or missing keys and wrong checksums."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import torch
import yaml

from hatl.cli import main
from hatl.errors import InputError
from hatl.landmarks import build_layout
from hatl.models.checkpoint import import_checkpoint, load_backbone, map_key, read_checkpoint
from hatl.models.graph import mediapipe_graph, pyskl_graph, shared_joints
from hatl.models.stgcnpp import STGCNPP, STGCNPPConfig


pytestmark = pytest.mark.usefixtures("one_torch_thread")


REPO = Path(__file__).resolve().parents[1]
BASE = 6  # the smallest width mstcn accepts: keeps these tests fast
ARCH = STGCNPPConfig(base_channels=BASE)


def pyskl_like_state(layout: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A backbone state dict under pyskl's names with non-default adjacency and input-norm values."""
    torch.manual_seed(seed)
    model = STGCNPP(pyskl_graph(layout).adjacency(), ARCH)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(seed)
    for key, value in state.items():
        if key.endswith(".A") or key.startswith("data_bn.") and value.is_floating_point():
            value.copy_(torch.rand(value.shape, generator=g) + 0.5)
    return state


def write_ckpt(path: Path, state: dict[str, torch.Tensor], style: str) -> Path:
    if style == "mmcv":
        obj = {"meta": {"epoch": 3}, "optimizer": {"state": {}},
               "state_dict": {**{f"backbone.{k}": v for k, v in state.items()},
                              "cls_head.fc_cls.weight": torch.zeros(4, 24), "cls_head.fc_cls.bias": torch.zeros(4)}}
    elif style == "flat_prefixed":
        obj = {f"backbone.{k}": v for k, v in state.items()}
    else:
        obj = dict(state)
    torch.save(obj, path)
    return path


@pytest.mark.parametrize("layout", ["coco", "nturgb+d"])
@pytest.mark.parametrize("style", ["mmcv", "flat", "flat_prefixed"])
def test_import_onto_mediapipe_graph(tmp_path, layout, style):
    state = pyskl_like_state(layout)
    path = write_ckpt(tmp_path / "ck.pth", state, style)
    target_layout = build_layout()
    result = import_checkpoint(path, ARCH, target_layout)
    report = result.report.to_dict()
    assert report["source_layout"] == layout
    assert report["source_format"] == ("mmcv" if style == "mmcv" else "flat")
    assert report["counts"]["adapted"] == 10 + 4  # every block's A + data_bn weight/bias/mean/var
    assert report["counts"]["loaded"] == len(state) - 14
    assert report["counts"].get("ignored", 0) == (2 if style == "mmcv" else 0)
    assert len(report["keys"]) == len(state) + report["counts"].get("ignored", 0)

    target = mediapipe_graph(target_layout)
    source = pyskl_graph(layout)
    pairs = shared_joints(source, target)
    assert len(pairs) == (13 if layout == "coco" else 9)
    new = result.model.state_dict()
    rebuilt = torch.as_tensor(target.adjacency())
    src = [s for s, _ in pairs]
    dst = [t for _, t in pairs]
    for i in range(10):
        A_new, A_old = new[f"gcn.{i}.gcn.A"], state[f"gcn.{i}.gcn.A"]
        assert A_new.shape == (3, 135, 135)
        # carried-over entries equal the checkpoint's ...
        torch.testing.assert_close(A_new[:, dst][:, :, dst], A_old[:, src][:, :, src], rtol=0, atol=0)
        # ... and every other entry equals the rebuilt graph's
        keep = torch.ones(135, 135, dtype=torch.bool)
        keep[torch.tensor(dst)[:, None], torch.tensor(dst)[None, :]] = False
        assert torch.equal(A_new[:, keep], rebuilt[:, keep])
    c = 3
    for name in ("weight", "bias", "running_mean", "running_var"):
        old, cur = state[f"data_bn.{name}"], new[f"data_bn.{name}"]
        assert cur.shape == (135 * c,)
        for s, t in pairs:
            assert torch.equal(cur[t * c:(t + 1) * c], old[s * c:(s + 1) * c])
        others = [t for t in range(135) if t not in dst]
        default = 1.0 if name in ("weight", "running_var") else 0.0
        assert torch.all(cur.view(135, c)[others] == default)
    # joint-independent weights load unchanged
    assert torch.equal(new["gcn.5.tcn.branches.2.3.conv.weight"], state["gcn.5.tcn.branches.2.3.conv.weight"])


def test_import_keeping_source_graph_is_exact(tmp_path):
    state = pyskl_like_state("coco")
    result = import_checkpoint(write_ckpt(tmp_path / "ck.pth", state, "flat"), ARCH, layout=None)
    assert result.report.counts() == {"loaded": len(state)}
    for k, v in result.model.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_unknown_key_refused(tmp_path):
    state = pyskl_like_state("coco")
    state["gcn.0.gcn.PA"] = torch.ones(3, 17, 17)  # plain ST-GCN's importance map: not ST-GCN++
    with pytest.raises(InputError, match=r"gcn\.0\.gcn\.PA.*unknown key"):
        import_checkpoint(write_ckpt(tmp_path / "ck.pth", state, "flat"), ARCH, build_layout())


def test_key_outside_backbone_refused(tmp_path):
    state = {f"backbone.{k}": v for k, v in pyskl_like_state("coco").items()}
    state["neck.fc.weight"] = torch.zeros(2)
    torch.save({"state_dict": state}, tmp_path / "ck.pth")
    with pytest.raises(InputError, match=r"neck\.fc\.weight"):
        import_checkpoint(tmp_path / "ck.pth", ARCH, build_layout())


def test_key_beyond_architecture_refused(tmp_path):
    state = pyskl_like_state("coco")
    state["gcn.10.tcn.bn.weight"] = torch.ones(24)  # an 11th block: in the key map, not in this model
    with pytest.raises(InputError, match=r"gcn\.10\.tcn\.bn\.weight"):
        import_checkpoint(write_ckpt(tmp_path / "ck.pth", state, "flat"), ARCH, build_layout())


def test_misshapen_key_refused(tmp_path):
    state = pyskl_like_state("coco")
    state["gcn.3.tcn.transform.2.weight"] = torch.zeros(6, 5, 1, 1)
    with pytest.raises(InputError, match=r"gcn\.3\.tcn\.transform\.2\.weight.*shape \(6, 5, 1, 1\)"):
        import_checkpoint(write_ckpt(tmp_path / "ck.pth", state, "flat"), ARCH, build_layout())


def test_width_mismatch_names_base_channels(tmp_path):
    path = write_ckpt(tmp_path / "ck.pth", pyskl_like_state("coco"), "mmcv")
    with pytest.raises(InputError, match="base_channels=64"):
        import_checkpoint(path, STGCNPPConfig(base_channels=64), build_layout())


def test_missing_key_refused(tmp_path):
    state = pyskl_like_state("nturgb+d")
    del state["gcn.7.residual.conv.weight"]
    with pytest.raises(InputError, match=r"gcn\.7\.residual\.conv\.weight.*missing"):
        import_checkpoint(write_ckpt(tmp_path / "ck.pth", state, "flat"), ARCH, build_layout())


def test_unknown_joint_count_refused(tmp_path):
    torch.manual_seed(0)
    state = STGCNPP(torch.rand(3, 21, 21), ARCH).state_dict()
    with pytest.raises(InputError, match="21 joints"):
        import_checkpoint(write_ckpt(tmp_path / "ck.pth", state, "flat"), ARCH, build_layout())


def test_sha256_checked(tmp_path):
    path = write_ckpt(tmp_path / "ck.pth", pyskl_like_state("coco"), "mmcv")
    good = hashlib.sha256(path.read_bytes()).hexdigest()
    read_checkpoint(path, good)
    with pytest.raises(InputError, match="sha256 mismatch"):
        read_checkpoint(path, "0" * 64)


def test_not_a_checkpoint(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="bad.pth"):
        read_checkpoint(bad)
    torch.save({"epoch": 3}, tmp_path / "odd.pth")
    with pytest.raises(InputError, match="neither an mmcv checkpoint"):
        read_checkpoint(tmp_path / "odd.pth")


@pytest.mark.parametrize("content, reason", [
    (b"", r"empty \(0 bytes\)"),
    (b"this is not a checkpoint\n", r"text file starting 'this is not a checkpoint'"),  # was 'pop from empty list'
    (b"ifake\n", r"text file starting 'ifake'"),  # was ': 105' (the byte value of 'i')
    (b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 9\n", r"Git LFS pointer"),
    (b"<!DOCTYPE html><html><body>Not Found</body></html>", r"HTML page"),
    (bytes(range(40)), r"starts with the bytes b'\\x00\\x01"),
], ids=["empty", "text", "text-i", "lfs-pointer", "html", "binary"])
def test_a_file_that_is_not_a_checkpoint_is_named_with_what_it_is(tmp_path, content, reason):
    bad = tmp_path / "fake.pth"
    bad.write_bytes(content)
    with pytest.raises(InputError, match=reason) as err:
        read_checkpoint(bad)
    assert str(err.value).startswith(str(bad))


def test_a_truncated_checkpoint_gives_a_reason(tmp_path):
    good = write_ckpt(tmp_path / "ck.pth", pyskl_like_state("coco"), "flat").read_bytes()
    (tmp_path / "cut.pth").write_bytes(good[: len(good) // 2])
    with pytest.raises(InputError, match=r"cut\.pth: not a readable torch checkpoint \(truncated or corrupt\?\): "
                                         r"RuntimeError: \S+"):
        read_checkpoint(tmp_path / "cut.pth")


@pytest.mark.parametrize("style", ["mmcv", "flat"])
def test_ddp_module_prefix_is_accepted(tmp_path, style):
    state = pyskl_like_state("nturgb+d")
    plain = import_checkpoint(write_ckpt(tmp_path / "plain.pth", state, style), ARCH, build_layout())
    obj = torch.load(tmp_path / "plain.pth", weights_only=True)
    if style == "mmcv":
        obj["state_dict"] = {f"module.{k}": v for k, v in obj["state_dict"].items()}
    else:
        obj = {f"module.{k}": v for k, v in obj.items()}
    torch.save(obj, tmp_path / "ddp.pth")
    wrapped = import_checkpoint(tmp_path / "ddp.pth", ARCH, build_layout())
    assert wrapped.report.counts() == plain.report.counts()
    assert any("'module.' prefix stripped" in note for note in wrapped.report.notes)
    for key, value in plain.model.state_dict().items():
        assert torch.equal(wrapped.model.state_dict()[key], value), key


def test_a_partial_module_prefix_is_refused(tmp_path):
    state = {f"module.{k}": v for k, v in pyskl_like_state("coco").items()}
    state["data_bn.bias"] = state.pop("module.data_bn.bias")
    with pytest.raises(InputError, match=r"\[data_bn\.bias\]: key lacks the 'module\.' prefix"):
        import_checkpoint(write_ckpt(tmp_path / "ck.pth", state, "flat"), ARCH, build_layout())


@pytest.mark.parametrize("layout, key, shape, expected", [
    ("coco", "gcn.4.gcn.A", (3, 20, 20), r"\(3, 17, 17\)"),  # was reported "adapted"
    ("coco", "data_bn.running_var", (50,), r"\(51,\) \(17 joints x 3 channels\)"),  # was reported "adapted"
    ("nturgb+d", "gcn.0.gcn.A", (2, 25, 25), r"\(3, 25, 25\)"),  # was a raw RuntimeError
])
def test_joint_dependent_tensors_are_shape_checked_before_carry_over(tmp_path, layout, key, shape, expected):
    state = pyskl_like_state(layout)
    state[key] = torch.rand(shape)
    path = write_ckpt(tmp_path / "ck.pth", state, "flat")
    want = rf"\[{re.escape(key)}\]: shape {re.escape(str(shape))} does not fit the {re.escape(layout)} skeleton: expected {expected}"
    with pytest.raises(InputError, match=want):
        import_checkpoint(path, ARCH, build_layout())


def test_cli_misshapen_adjacency_exits_2_without_output(tmp_path, caplog):
    state = pyskl_like_state("nturgb+d")
    state["gcn.0.gcn.A"] = torch.rand(2, 25, 25)
    ck = write_ckpt(tmp_path / "ck.pth", state, "mmcv")
    cfg = _config(tmp_path, base_channels=BASE)
    out, rep = tmp_path / "bb" / "stgcnpp.pt", tmp_path / "bb" / "import_report.json"
    code = main(["import-backbone", "--config", str(cfg), "--checkpoint", str(ck), "--out", str(out), "--report", str(rep)])
    assert code == 2
    assert "gcn.0.gcn.A" in caplog.text and "(2, 25, 25)" in caplog.text
    assert not out.exists() and not rep.exists()


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(tmp_path, bad):
    state = pyskl_like_state("coco")
    state["gcn.2.gcn.conv.weight"].view(-1)[3] = bad
    state["gcn.5.tcn.bn.running_var"][0] = bad
    with pytest.raises(InputError, match=r"\[gcn\.2\.gcn\.conv\.weight\]: 2 tensor\(s\) hold NaN or infinite values.*"
                                         r"gcn\.5\.tcn\.bn\.running_var"):
        import_checkpoint(write_ckpt(tmp_path / "ck.pth", state, "mmcv"), ARCH, build_layout())


def test_key_map_is_explicit():
    assert map_key("gcn.9.tcn.branches.4.1.running_var") == "gcn.9.tcn.branches.4.1.running_var"
    assert map_key("gcn.4.residual.bn.num_batches_tracked") == "gcn.4.residual.bn.num_batches_tracked"
    assert map_key("gcn.2.gcn.down.2.weight") is None
    assert map_key("gcn.2.tcn.branches.0.2.weight") is None  # index 2 is the ReLU: no parameters
    assert map_key("cls_head.fc_cls.weight") is None


def _config(tmp_path: Path, **backbone) -> Path:
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["backbone"].update(backbone)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_cli_import_and_load_backbone(tmp_path):
    ck = write_ckpt(tmp_path / "ck.pth", pyskl_like_state("nturgb+d"), "mmcv")
    sha = hashlib.sha256(ck.read_bytes()).hexdigest()
    cfg = _config(tmp_path, base_channels=BASE, checkpoint=str(ck), sha256=sha)
    out, rep = tmp_path / "bb" / "stgcnpp.pt", tmp_path / "bb" / "import_report.json"
    assert main(["import-backbone", "--config", str(cfg), "--out", str(out), "--report", str(rep)]) == 0
    report = json.loads(rep.read_text())
    assert report["sha256"] == sha and report["source_layout"] == "nturgb+d"
    assert report["counts"] == {"ignored": 2, "adapted": 14, "loaded": len(pyskl_like_state("nturgb+d")) - 14}
    assert "config" in report["provenance"] and "code_version" in report["provenance"]
    model = load_backbone(out)
    assert model.num_joints == 135 and model.config.base_channels == BASE
    with torch.no_grad():
        assert model.eval().frame_features(torch.randn(2, 12, 135, 3)).shape == (2, 3, 24)


def test_cli_bad_checkpoint_exits_2_without_output(tmp_path):
    state = pyskl_like_state("coco")
    state["gcn.1.gcn.conv.weight"] = torch.zeros(1)
    ck = write_ckpt(tmp_path / "ck.pth", state, "flat")
    cfg = _config(tmp_path, base_channels=BASE)
    out, rep = tmp_path / "bb" / "stgcnpp.pt", tmp_path / "bb" / "import_report.json"
    code = main(["import-backbone", "--config", str(cfg), "--checkpoint", str(ck), "--out", str(out), "--report", str(rep)])
    assert code == 2
    assert not out.exists() and not rep.exists()
    assert not (tmp_path / "bb").exists() or not any((tmp_path / "bb").iterdir())  # no temporary leftovers


def test_load_backbone_refuses_other_files(tmp_path):
    path = write_ckpt(tmp_path / "ck.pth", pyskl_like_state("coco"), "mmcv")
    with pytest.raises(InputError, match="import-backbone"):
        load_backbone(path)


def test_legacy_torch_format_is_still_read(tmp_path):
    state = pyskl_like_state("coco")
    torch.save(state, tmp_path / "old.pth", _use_new_zipfile_serialization=False)  # pre-1.6 pickle stream
    read, fmt = read_checkpoint(tmp_path / "old.pth")
    assert fmt == "flat" and read.keys() == state.keys()
    assert all(torch.equal(read[k], v) for k, v in state.items())
