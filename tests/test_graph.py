"""Skeleton graphs: pyskl's spatial-mode adjacency and the MediaPipe graph over the configured layout."""

from __future__ import annotations

import numpy as np
import pytest

from hatl.landmarks import FACE_PARTS, build_layout
from hatl.models.graph import (
    COCO_NAMES,
    Graph,
    edge2mat,
    mediapipe_graph,
    normalize_digraph,
    pyskl_graph,
    shared_joints,
)


def _components(graph: Graph) -> int:
    parent = list(range(graph.num_nodes))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for i, j in graph.inward:
        parent[find(i)] = find(j)
    return len({find(i) for i in range(graph.num_nodes)})


def test_edge2mat_and_column_normalisation():
    A = edge2mat([(0, 1), (2, 1), (1, 3)], 4)
    assert A[1, 0] == 1 and A[1, 2] == 1 and A[3, 1] == 1 and A.sum() == 3
    B = normalize_digraph(np.array([[1.0, 0.0, 2.0], [3.0, 0.0, 2.0], [0.0, 0.0, 0.0]]))
    np.testing.assert_allclose(B, [[0.25, 0.0, 0.5], [0.75, 0.0, 0.5], [0.0, 0.0, 0.0]])


@pytest.mark.parametrize("name,v,center", [("coco", 17, 0), ("nturgb+d", 25, 20)])
def test_pyskl_graphs(name, v, center):
    g = pyskl_graph(name)
    A = g.adjacency()
    assert A.shape == (3, v, v) and A.dtype == np.float32 and g.center == center
    np.testing.assert_array_equal(A[0], np.eye(v))
    for k in (1, 2):
        cols = A[k].sum(axis=0)
        nz = cols > 0
        np.testing.assert_allclose(cols[nz], 1.0, rtol=1e-6)  # columns sum to 1 where non-zero
    # a tree: V-1 edges, one component; outward is inward transposed before normalisation
    assert len(g.inward) == v - 1 and _components(g) == 1
    np.testing.assert_array_equal(edge2mat(g.outward, v), edge2mat(g.inward, v).T)


def test_coco_values_pyskl_would_give():
    A = pyskl_graph("coco").adjacency()
    # nose (0) receives from eyes 1, 2 and shoulders 5, 6: inward column of each child is one-hot
    assert A[1, 0, 1] == 1.0 and A[1, 0, 5] == 1.0
    # outward: the nose sends to its 4 children, column 0 normalised to 1/4 each
    np.testing.assert_allclose(A[2, [1, 2, 5, 6], 0], 0.25)


def test_mediapipe_default_layout_graph():
    layout = build_layout()
    g = mediapipe_graph(layout)
    A = g.adjacency()
    assert g.num_nodes == layout.num_joints == 135 and A.shape == (3, 135, 135)
    assert g.joint_names[g.center] == "pose.nose"
    assert _components(g) == 1  # every group is linked to the body
    und = {frozenset(e) for e in g.inward}
    # hand wrists to pose wrists, face nose tip to pose nose, iris centres to their eyes
    assert frozenset((layout.index("left_hand", 0), layout.index("pose", 15))) in und
    assert frozenset((layout.index("right_hand", 0), layout.index("pose", 16))) in und
    assert frozenset((layout.index("face", 1), layout.index("pose", 0))) in und
    assert frozenset((layout.index("iris", 468), layout.index("face", 33))) in und
    assert frozenset((layout.index("iris", 473), layout.index("face", 263))) in und
    # face rings are closed
    lips = FACE_PARTS["lips_outer"]
    assert frozenset((layout.index("face", lips[-1]), layout.index("face", lips[0]))) in und
    # hand topology: thumb chain and palm
    assert frozenset((layout.index("left_hand", 0), layout.index("left_hand", 17))) in und
    for k in (1, 2):
        cols = A[k].sum(axis=0)
        np.testing.assert_allclose(cols[cols > 0], 1.0, rtol=1e-6)
    # inward edges point away from the centre (parent is never farther than the child)
    assert all(i != g.center for i, _ in g.inward)


@pytest.mark.parametrize("groups", [("left_hand", "right_hand"), ("pose", "iris"), ("pose", "face"), ("pose",)])
def test_mediapipe_subsets(groups):
    layout = build_layout(groups)
    g = mediapipe_graph(layout)
    assert g.num_nodes == layout.num_joints
    assert g.adjacency().shape == (3, layout.num_joints, layout.num_joints)
    if "pose" in groups:
        assert _components(g) == 1
    else:  # two hands without a body: one component each, rooted at their own wrists
        assert _components(g) == 2


def test_full_face_uses_tesselation():
    layout = build_layout(("pose", "face"), face_subset="full")
    g = mediapipe_graph(layout)
    assert g.num_nodes == 25 + 468
    assert _components(g) == 1
    assert len(g.inward) > 1000


def test_shared_joints_coco_and_ntu():
    layout = build_layout()
    target = mediapipe_graph(layout)
    coco = shared_joints(pyskl_graph("coco"), target)
    assert [COCO_NAMES[s] for s, _ in coco] == list(COCO_NAMES[:13])
    assert all(target.joint_names[t] == COCO_NAMES[s] for s, t in coco)
    ntu = shared_joints(pyskl_graph("nturgb+d"), target)
    names = {target.joint_names[t] for _, t in ntu}
    assert names == {"pose.nose", "pose.left_shoulder", "pose.right_shoulder", "pose.left_elbow", "pose.right_elbow",
                     "pose.left_wrist", "pose.right_wrist", "pose.left_hip", "pose.right_hip"}
    assert shared_joints(pyskl_graph("coco"), mediapipe_graph(build_layout(("left_hand",)))) == []


def test_graph_dict_roundtrip():
    g = mediapipe_graph(build_layout(("pose", "left_hand")))
    assert Graph.from_dict(g.to_dict()) == g
