"""ST-GCN++ structure: shapes, channel plan, parameter names, layers L1..Ln, per-frame features."""

from __future__ import annotations

import pytest
import torch

from hatl.landmarks import build_layout
from hatl.models.graph import mediapipe_graph, pyskl_graph
from hatl.models.stgcnpp import STGCNPP, STGCNPPConfig


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small(graph: str = "coco", base: int = 8) -> STGCNPP:
    torch.manual_seed(0)
    return STGCNPP(pyskl_graph(graph).adjacency(), STGCNPPConfig(base_channels=base))


def test_channel_plan_matches_pyskl_defaults():
    cfg = STGCNPPConfig()
    assert cfg.stage_channels() == [
        (3, 64, 1), (64, 64, 1), (64, 64, 1), (64, 64, 1), (64, 128, 2),
        (128, 128, 1), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 256, 1),
    ]
    assert cfg.out_channels == 256


def test_parameter_count_matches_released_model():
    """notes: 1.42 M parameters for nturgb+d, which includes the 120-class GCNHead (256*120 + 120)."""
    model = STGCNPP(pyskl_graph("nturgb+d").adjacency())
    n = sum(p.numel() for p in model.parameters()) + 256 * 120 + 120
    assert round(n / 1e6, 2) == 1.42


def test_mstcn_branch_widths_and_key_names():
    model = STGCNPP(pyskl_graph("coco").adjacency())
    sd = model.state_dict()
    assert sd["gcn.0.tcn.branches.0.0.weight"].shape == (14, 64, 1, 1)  # remainder branch: 64 - 5*10
    assert sd["gcn.0.tcn.branches.1.0.weight"].shape == (10, 64, 1, 1)
    assert sd["gcn.0.tcn.branches.3.3.conv.weight"].shape == (10, 10, 3, 1)
    assert sd["gcn.0.tcn.branches.5.weight"].shape == (10, 64, 1, 1)
    assert sd["gcn.0.gcn.A"].shape == (3, 17, 17)
    assert sd["data_bn.weight"].shape == (51,)
    residual_blocks = sorted({k.split(".")[1] for k in sd if ".residual." in k})
    assert residual_blocks == ["4", "7"]
    down_blocks = sorted({k.split(".")[1] for k in sd if ".gcn.down." in k})
    assert down_blocks == ["0", "4", "7"]
    assert not any("PA" in k for k in sd)
    assert isinstance(model.gcn[3].gcn.A, torch.nn.Parameter)  # learned adjacency ('init' mode)
    # mstcn dilations 1..4: the dilated conv pads by its dilation
    for b, d in enumerate((1, 2, 3, 4)):
        conv = model.gcn[2].tcn.branches[b][3].conv
        assert conv.dilation == (d, 1) and conv.padding == (d, 0)


@pytest.mark.parametrize("t", [16, 17, 18, 19])
def test_forward_shape_and_temporal_stride(t):
    model = small().eval()
    x = torch.randn(2, 2, t, 17, 3)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, 2, 32, STGCNPP.output_length(t), 17)
    assert STGCNPP.output_length(t) == -(-t // 4)
    assert STGCNPP.downsample_mask(torch.ones(2, t, dtype=torch.bool)).shape == (2, STGCNPP.output_length(t))


def test_frame_features_mean_over_joints():
    model = small().eval()
    kp = torch.randn(3, 20, 17, 3)
    with torch.no_grad():
        feats = model.frame_features(kp)
        full = model(kp.unsqueeze(1))
    assert feats.shape == (3, 5, 32)
    torch.testing.assert_close(feats, full[:, 0].mean(dim=-1).transpose(1, 2))


def test_layers_cover_all_parameters_once_in_order():
    model = small()
    layers = model.layers()
    assert len(layers) == 10
    assert model.data_bn in list(layers[0].modules())  # data_bn belongs to L1
    assert layers[0][1] is model.gcn[0] and layers[-1] is model.gcn[9]
    ids = [id(p) for layer in layers for p in layer.parameters()]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    # L1..Ln are not registered as new submodules: state dict names stay pyskl's
    assert all(k.startswith(("data_bn.", "gcn.")) for k in model.state_dict())


def test_freezing_layers_stops_their_gradients():
    model = small().train()
    for layer in model.layers()[:3]:
        layer.requires_grad_(False)
    model.frame_features(torch.randn(2, 8, 17, 3)).sum().backward()
    assert model.data_bn.weight.grad is None and model.gcn[2].gcn.A.grad is None
    assert model.gcn[3].gcn.A.grad is not None


def test_runs_on_mediapipe_graph_and_is_deterministic():
    graph = mediapipe_graph(build_layout(("pose", "left_hand", "right_hand")))
    torch.manual_seed(0)
    a = STGCNPP(graph.adjacency(), STGCNPPConfig(base_channels=6)).eval()
    torch.manual_seed(0)
    b = STGCNPP(graph.adjacency(), STGCNPPConfig(base_channels=6)).eval()
    x = torch.randn(1, 9, graph.num_nodes, 3)
    with torch.no_grad():
        assert torch.equal(a.frame_features(x), b.frame_features(x))
    assert a.frame_features(x).shape == (1, 3, 24)


def test_rejects_bad_adjacency():
    with pytest.raises(ValueError):
        STGCNPP(torch.zeros(3, 4, 5))


def test_widening_gcn_reordering_equals_conv_then_aggregate():
    """Blocks that widen aggregate joints before the 1x1 conv; values and gradients must equal pyskl's order."""
    torch.manual_seed(0)
    model = small("nturgb+d", base=12)
    gcn = model.gcn[4].gcn  # 12 -> 24 channels
    assert gcn.in_channels < gcn.out_channels
    with torch.no_grad():
        gcn.A.add_(torch.rand_like(gcn.A))  # learned A: columns no longer sum to 1
        gcn.conv.bias.normal_()
    x = torch.randn(2, 12, 7, 25)
    ours = gcn.aggregate(x)
    n, _, t, v = x.shape
    ref = torch.einsum("nkctv,kvw->nctw", gcn.conv(x).view(n, 3, -1, t, v), gcn.A)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    g_ours = torch.autograd.grad(ours.square().sum(), (gcn.A, gcn.conv.weight, gcn.conv.bias))
    g_ref = torch.autograd.grad(ref.square().sum(), (gcn.A, gcn.conv.weight, gcn.conv.bias))
    for a, b in zip(g_ours, g_ref):  # float32 summation order: tolerance relative to the gradient's scale
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().max()))
