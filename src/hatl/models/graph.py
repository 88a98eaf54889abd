"""Skeleton graphs in pyskl's 'spatial' mode: A = stack(I, normalised inward, normalised outward).

Three skeletons: pyskl's ``coco`` (17 joints) and ``nturgb+d`` (25 joints), the layouts of the released
ST-GCN++ checkpoints, and a MediaPipe Holistic graph built from the project's landmark layout
(:func:`hatl.landmarks.build_layout`). Each joint has a name; joints that exist in two skeletons under the
same meaning share a name in :data:`POSE_EQUIVALENTS`, which is how :mod:`hatl.models.checkpoint` carries
pretrained adjacency entries and input-norm statistics across graphs (see docs/backbone.md).

Conventions (as pyskl): an inward edge (i, j) points from child i to parent j (towards the centre);
``edge2mat`` sets A[j, i] = 1; ``normalize_digraph`` divides each column by its sum (columns of zeros stay zero).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from hatl.landmarks import FACE_PARTS, FACE_RINGS, Layout

Edge = tuple[int, int]


def edge2mat(edges: Iterable[Edge], num_nodes: int) -> np.ndarray:
    """Adjacency with A[j, i] = 1 for each edge (i, j): column i lists where joint i sends its features."""
    A = np.zeros((num_nodes, num_nodes))
    for i, j in edges:
        A[j, i] = 1
    return A


def normalize_digraph(A: np.ndarray) -> np.ndarray:
    """Divide every column by its sum (A @ D^-1); all-zero columns stay zero."""
    col = A.sum(axis=0)
    inv = np.zeros_like(col)
    nz = col > 0
    inv[nz] = 1.0 / col[nz]
    return A * inv[None, :]


@dataclass(frozen=True)
class Graph:
    """A skeleton: joint names, inward (child -> parent) edges and the centre joint."""

    name: str
    joint_names: tuple[str, ...]
    inward: tuple[Edge, ...]
    center: int

    @property
    def num_nodes(self) -> int:
        return len(self.joint_names)

    @property
    def outward(self) -> tuple[Edge, ...]:
        return tuple((j, i) for i, j in self.inward)

    def adjacency(self) -> np.ndarray:
        """(3, V, V) float32: identity, column-normalised inward, column-normalised outward."""
        v = self.num_nodes
        identity = edge2mat([(i, i) for i in range(v)], v)
        A = np.stack([identity, normalize_digraph(edge2mat(self.inward, v)), normalize_digraph(edge2mat(self.outward, v))])
        return A.astype(np.float32)

    def to_dict(self) -> dict:
        return {"name": self.name, "joint_names": list(self.joint_names),
                "inward": [list(e) for e in self.inward], "center": self.center}

    @classmethod
    def from_dict(cls, d: dict) -> Graph:
        return cls(d["name"], tuple(d["joint_names"]), tuple((int(i), int(j)) for i, j in d["inward"]), int(d["center"]))


# ---------------------------------------------------------------------------------------------------------
# pyskl's layouts (the graphs the released checkpoints were trained on). Joint names use the MediaPipe pose
# names where the joint means the same body point, so that carried-over joints match by name.

COCO_NAMES = (
    "pose.nose", "pose.left_eye", "pose.right_eye", "pose.left_ear", "pose.right_ear",
    "pose.left_shoulder", "pose.right_shoulder", "pose.left_elbow", "pose.right_elbow",
    "pose.left_wrist", "pose.right_wrist", "pose.left_hip", "pose.right_hip",
    "coco.left_knee", "coco.right_knee", "coco.left_ankle", "coco.right_ankle",
)
COCO_INWARD: tuple[Edge, ...] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 5), (12, 6), (9, 7), (7, 5),
    (10, 8), (8, 6), (5, 0), (6, 0), (1, 0), (3, 1), (2, 0), (4, 2),
)

# NTU RGB+D (Kinect v2) joints, 0-based. The Kinect "head" joint is the nearest thing to MediaPipe's nose
# (the notes' head~nose convention); Kinect's left is the subject's left, like MediaPipe's and COCO's.
NTU_NAMES = (
    "ntu.spine_base", "ntu.spine_mid", "ntu.neck", "pose.nose",
    "pose.left_shoulder", "pose.left_elbow", "pose.left_wrist", "ntu.left_hand",
    "pose.right_shoulder", "pose.right_elbow", "pose.right_wrist", "ntu.right_hand",
    "pose.left_hip", "ntu.left_knee", "ntu.left_ankle", "ntu.left_foot",
    "pose.right_hip", "ntu.right_knee", "ntu.right_ankle", "ntu.right_foot",
    "ntu.spine_shoulder", "ntu.left_hand_tip", "ntu.left_thumb", "ntu.right_hand_tip", "ntu.right_thumb",
)
_NTU_BASE = (
    (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10), (12, 11),
    (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (22, 8), (23, 8), (24, 12), (25, 12),
)
NTU_INWARD: tuple[Edge, ...] = tuple((i - 1, j - 1) for i, j in _NTU_BASE)

# Joints carried from a checkpoint skeleton to the MediaPipe graph (matched by the names above).
POSE_EQUIVALENTS = {
    "coco": ("pose.nose", "pose.left_eye", "pose.right_eye", "pose.left_ear", "pose.right_ear",
             "pose.left_shoulder", "pose.right_shoulder", "pose.left_elbow", "pose.right_elbow",
             "pose.left_wrist", "pose.right_wrist", "pose.left_hip", "pose.right_hip"),
    "nturgb+d": ("pose.nose", "pose.left_shoulder", "pose.right_shoulder", "pose.left_elbow", "pose.right_elbow",
                 "pose.left_wrist", "pose.right_wrist", "pose.left_hip", "pose.right_hip"),
    "kinect20": ("pose.nose", "pose.left_shoulder", "pose.right_shoulder", "pose.left_elbow", "pose.right_elbow",
                 "pose.left_wrist", "pose.right_wrist", "pose.left_hip", "pose.right_hip"),
    "boston3": ("pose.nose",),
}


# Kinect v1 skeleton of the isl_kinect release (hatl.landmarks.KINECT20_NAMES order). "head" stands for the
# nose (as NTU's head does); the shoulder centre is the centre, like NTU's spine-shoulder.
KINECT20_GRAPH_NAMES = (
    "pose.nose", "kinect.shoulder_center", "pose.left_shoulder", "pose.right_shoulder", "pose.left_elbow",
    "pose.right_elbow", "pose.left_wrist", "pose.right_wrist", "kinect.left_hand", "kinect.right_hand",
    "kinect.spine", "kinect.hip_center", "pose.left_hip", "pose.right_hip", "kinect.left_knee", "kinect.right_knee",
    "kinect.left_ankle", "kinect.right_ankle", "kinect.left_foot", "kinect.right_foot",
)
KINECT20_INWARD: tuple[Edge, ...] = (
    (0, 1), (2, 1), (3, 1), (4, 2), (5, 3), (6, 4), (7, 5), (8, 6), (9, 7), (10, 1), (11, 10), (12, 11), (13, 11),
    (14, 12), (15, 13), (16, 14), (17, 15), (18, 16), (19, 17),
)
# RWTH-BOSTON-104 tracks (hatl.landmarks.BOSTON3_NAMES order): two hand centres and the nose, the hands linked
# to the nose. The tracked hand centre is not MediaPipe's wrist, so only the nose carries over.
BOSTON3_GRAPH_NAMES = ("boston.left_hand", "boston.right_hand", "pose.nose")
BOSTON3_INWARD: tuple[Edge, ...] = ((0, 2), (1, 2))


def kinect20_graph() -> Graph:
    return Graph("kinect20", KINECT20_GRAPH_NAMES, KINECT20_INWARD, center=1)


def boston3_graph() -> Graph:
    return Graph("boston3", BOSTON3_GRAPH_NAMES, BOSTON3_INWARD, center=2)


def coco_graph() -> Graph:
    return Graph("coco", COCO_NAMES, COCO_INWARD, center=0)


def ntu_graph() -> Graph:
    return Graph("nturgb+d", NTU_NAMES, NTU_INWARD, center=20)


# Graphs a pyskl-format checkpoint can come in: pyskl's own two, kinect20 (hatl's supervised pretraining
# on isl_kinect writes its checkpoint in pyskl's format on that skeleton) and boston3 (a backbone trained on
# the RWTH-BOSTON-104 tracks; only its nose carries over).
PYSKL_GRAPHS = {"coco": coco_graph, "nturgb+d": ntu_graph, "kinect20": kinect20_graph, "boston3": boston3_graph}
# Graphs of the non-MediaPipe skeleton layouts (hatl.landmarks.SKELETONS), by group name.
SKELETON_GRAPHS = {"kinect20": kinect20_graph, "boston3": boston3_graph}


def layout_graph(layout: Layout) -> Graph:
    """The graph of a keypoint layout: a skeleton group's own graph, else the MediaPipe graph over it."""
    if len(layout.groups) == 1 and layout.groups[0] in SKELETON_GRAPHS:
        return SKELETON_GRAPHS[layout.groups[0]]()
    return mediapipe_graph(layout)


def pyskl_graph(name: str) -> Graph:
    try:
        return PYSKL_GRAPHS[name]()
    except KeyError as err:
        raise ValueError(f"unknown pyskl layout {name!r}; known: {', '.join(PYSKL_GRAPHS)}") from err


# ---------------------------------------------------------------------------------------------------------
# MediaPipe Holistic topology (the connection lists MediaPipe draws; indices inside each group).

# POSE_CONNECTIONS restricted to the upper-body joints 0-24 that the layout keeps.
POSE_EDGES: tuple[Edge, ...] = (
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12), (11, 13), (13, 15),
    (15, 17), (15, 19), (15, 21), (17, 19), (12, 14), (14, 16), (16, 18), (16, 20), (16, 22), (18, 20),
    (11, 23), (12, 24), (23, 24),
)
# MediaPipe's pose graph leaves the head, the mouth and the body as three islands; join them as COCO does
# (shoulders -> nose) plus mouth corners -> nose, so that shoulder/nose adjacency can carry over from coco.
POSE_BRIDGES: tuple[Edge, ...] = ((11, 0), (12, 0), (9, 0), (10, 0))
HAND_EDGES: tuple[Edge, ...] = (
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11), (11, 12),
    (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19), (19, 20),
)
# Iris (mesh 468-477): each centre to its 4 ring points, rings closed (MediaPipe's FACEMESH_IRISES rings).
IRIS_EDGES: tuple[Edge, ...] = (
    (468, 469), (468, 470), (468, 471), (468, 472), (469, 470), (470, 471), (471, 472), (472, 469),
    (473, 474), (473, 475), (473, 476), (473, 477), (474, 475), (475, 476), (476, 477), (477, 474),
)
FACE_NOSE_TIP = 1  # mesh point on the nose tip: linked to the pose nose
# Reduced face: join the parts (rings/chains of FACE_PARTS) into one piece around the nose bridge.
FACE_PART_LINKS: tuple[Edge, ...] = (
    (33, 168), (263, 168), (70, 33), (300, 263), (61, 1), (78, 61), (10, 168),
    # (right eye inner corner 133 and left 362 would also do; one link per part keeps the graph sparse)
)
# Iris centre -> the eye it sits in: face mesh corner when the face is present, else the pose eye.
IRIS_TO_FACE_EYE = {468: 33, 473: 263}
IRIS_TO_POSE_EYE = {468: 5, 473: 2}  # pose.right_eye, pose.left_eye


def _face_edges(face_subset: str) -> list[Edge]:
    if face_subset == "reduced":
        edges: list[Edge] = []
        for part, idx in FACE_PARTS.items():
            edges.extend(zip(idx[:-1], idx[1:]))
            if part in FACE_RINGS:
                edges.append((idx[-1], idx[0]))
        return edges + list(FACE_PART_LINKS)
    # full mesh: MediaPipe's tesselation covers all 468 points (imported lazily: mediapipe is heavy)
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    return sorted({(min(a, b), max(a, b)) for a, b in FACEMESH_TESSELATION if a < 468 and b < 468})


def _orient(num_nodes: int, undirected: Sequence[Edge], center: int) -> list[Edge]:
    """Turn undirected edges into inward (child -> parent) pairs by hop distance from the centre.

    The farther joint is the child. Joints at equal distance (inside rings) point from the higher index
    to the lower one, so the result is deterministic. Components not reached from the centre are rooted at
    their lowest-index joint (e.g. hands when the pose group is not selected).
    """
    nbrs: list[set[int]] = [set() for _ in range(num_nodes)]
    for a, b in undirected:
        nbrs[a].add(b)
        nbrs[b].add(a)
    dist = [-1] * num_nodes
    comp = [-1] * num_nodes
    roots = [center] + [i for i in range(num_nodes) if i != center]
    for root in roots:
        if dist[root] >= 0:
            continue
        dist[root] = 0
        comp[root] = root
        queue = deque([root])
        while queue:
            u = queue.popleft()
            for w in sorted(nbrs[u]):
                if dist[w] < 0:
                    dist[w] = dist[u] + 1
                    comp[w] = root
                    queue.append(w)
    out = []
    for a, b in undirected:
        if (dist[a], a) > (dist[b], b):
            out.append((a, b))
        else:
            out.append((b, a))
    return out


def mediapipe_graph(layout: Layout) -> Graph:
    """The graph over a MediaPipe layout's joints (any subset of pose, face, iris, hands).

    Centre: the pose nose when the pose group is present (the head is where pose, face and iris meet, and
    coco's centre is the nose too), else the first joint of the layout.
    """
    pos = {(j.group, j.source_index): v for v, j in enumerate(layout.joints)}
    undirected: list[Edge] = []

    def link(ga: str, a: int, gb: str, b: int) -> None:
        if (ga, a) in pos and (gb, b) in pos:
            undirected.append((pos[(ga, a)], pos[(gb, b)]))

    for a, b in POSE_EDGES + POSE_BRIDGES:
        link("pose", a, "pose", b)
    for hand, pose_wrist in (("left_hand", 15), ("right_hand", 16)):
        for a, b in HAND_EDGES:
            link(hand, a, hand, b)
        link(hand, 0, "pose", pose_wrist)
    if "face" in layout.groups:
        for a, b in _face_edges(layout.face_subset):
            link("face", a, "face", b)
        link("face", FACE_NOSE_TIP, "pose", 0)
    for a, b in IRIS_EDGES:
        link("iris", a, "iris", b)
    for centre_idx, eye in IRIS_TO_FACE_EYE.items():
        if "face" in layout.groups:
            link("iris", centre_idx, "face", eye)
        else:
            link("iris", centre_idx, "pose", IRIS_TO_POSE_EYE[centre_idx])
    undirected = sorted(set((min(a, b), max(a, b)) for a, b in undirected))
    center = pos.get(("pose", 0), 0)
    inward = _orient(layout.num_joints, undirected, center)
    name = f"mediapipe[{'+'.join(layout.groups)};face={layout.face_subset}]"
    return Graph(name, tuple(j.name for j in layout.joints), tuple(inward), center)


def shared_joints(source: Graph, target: Graph) -> list[tuple[int, int]]:
    """(source index, target index) of joints present in both graphs under the same name."""
    where = {name: v for v, name in enumerate(target.joint_names)}
    return [(v, where[name]) for v, name in enumerate(source.joint_names) if name in where and not name.startswith(("coco.", "ntu.", "kinect.", "boston."))]
