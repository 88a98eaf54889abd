"""The landmark layout shared by every stage: which MediaPipe Holistic points a sequence holds, in what order.

A layout is an ordered list of joints drawn from five groups. Keypoint extraction, the MedASL ``.npy``
conversion, the demo generator, normalisation and the ST-GCN++ graph all build their joint order from
:func:`build_layout`, so a Parquet file's ``V`` axis means the same thing everywhere.

Groups (MediaPipe Holistic indices):

* ``pose``: upper body, pose landmarks 0-24 (face points, shoulders, elbows, wrists, hand tips, hips).
* ``face``: a subset of the 468-point face mesh (``face_subset``: ``reduced`` = 58 points on lips,
  eyes, brows, nose and face oval, the parts that carry non-manual signals; ``full`` = all 468).
* ``iris``: the 10 iris points (mesh indices 468-477), present only with ``refine_face_landmarks``.
* ``left_hand`` / ``right_hand``: 21 points each.

Skeleton groups (not MediaPipe): datasets released as skeletons from another tracker keep their own joints,
one group per layout and never mixed with MediaPipe groups (:data:`SKELETONS`): ``kinect20`` (Kinect v1,
20 joints, the isl_kinect release's order) and ``boston3`` (RWTH-BOSTON-104 hand and nose tracks, 2D).
Their graphs are in :mod:`hatl.models.graph`; the backbone import maps them onto the MediaPipe graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GROUPS: tuple[str, ...] = ("pose", "face", "iris", "left_hand", "right_hand")
DEFAULT_GROUPS: tuple[str, ...] = GROUPS
CHANNELS: tuple[str, ...] = ("x", "y", "z")

POSE_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip",
)
HAND_NAMES = (
    "wrist", "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip", "index_mcp", "index_pip", "index_dip",
    "index_tip", "middle_mcp", "middle_pip", "middle_dip", "middle_tip", "ring_mcp", "ring_pip", "ring_dip",
    "ring_tip", "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)

# Reduced face: rings/chains of mesh indices, each listed in drawing order (the graph links neighbours).
FACE_PARTS: dict[str, tuple[int, ...]] = {
    "lips_outer": (61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91),
    "lips_inner": (78, 81, 13, 311, 308, 402, 14, 178),
    "right_eye": (33, 160, 158, 133, 153, 144),
    "left_eye": (263, 387, 385, 362, 380, 373),
    "right_brow": (70, 63, 105, 66, 107),
    "left_brow": (300, 293, 334, 296, 336),
    "nose": (168, 6, 197, 1),
    "oval": (10, 297, 389, 454, 361, 397, 152, 172, 132, 234, 162, 67),
}
FACE_RINGS = ("lips_outer", "lips_inner", "right_eye", "left_eye", "oval")  # closed loops; others are chains
REDUCED_FACE: tuple[int, ...] = tuple(i for part in FACE_PARTS.values() for i in part)
IRIS: tuple[int, ...] = tuple(range(468, 478))  # 468 right-eye centre + 4 ring, 473 left-eye centre + 4 ring

# Skeleton groups of non-MediaPipe trackers: joint names in file order.
# kinect20: the order of the isl_kinect files (checked against the data: bone lengths constant over frames,
# heights head > shoulders > ... > feet; NOT the Kinect SDK's enum order). Pairs are (left, right) of the
# subject: Kinect camera-space x grows to the sensor's left, i.e. the subject's right, and the odd joints have
# the larger x (and the busier arm of right-handed signers).
KINECT20_NAMES: tuple[str, ...] = (
    "head", "shoulder_center", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
    "right_wrist", "left_hand", "right_hand", "spine", "hip_center", "left_hip", "right_hip", "left_knee",
    "right_knee", "left_ankle", "right_ankle", "left_foot", "right_foot",
)
# boston3: the tracked positions of hands_condensed.csv (pixels, 2D: z is stored as 0).
BOSTON3_NAMES: tuple[str, ...] = ("left_hand", "right_hand", "nose")
SKELETONS: dict[str, tuple[str, ...]] = {"kinect20": KINECT20_NAMES, "boston3": BOSTON3_NAMES}

# Layout of one MedASL / ADAT-style 1662-value frame: pose 33x4 | face 468x3 | left hand 21x3 | right hand 21x3.
FLAT1662_OFFSETS = {"pose": (0, 33, 4), "face": (132, 468, 3), "left_hand": (1536, 21, 3), "right_hand": (1599, 21, 3)}
FLAT1662_SIZE = 1662


@dataclass(frozen=True)
class Joint:
    group: str
    source_index: int  # index inside the group's MediaPipe landmark list
    name: str


@dataclass(frozen=True)
class Layout:
    groups: tuple[str, ...]
    face_subset: str
    joints: tuple[Joint, ...]

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def group_slices(self) -> dict[str, slice]:
        """Contiguous V-range of each group (groups are laid out one after another)."""
        out: dict[str, slice] = {}
        start = 0
        for group in self.groups:
            n = sum(1 for j in self.joints if j.group == group)
            out[group] = slice(start, start + n)
            start += n
        return out

    def index(self, group: str, source_index: int) -> int:
        """Position on the V axis of MediaPipe landmark ``source_index`` of ``group``."""
        for v, joint in enumerate(self.joints):
            if joint.group == group and joint.source_index == source_index:
                return v
        raise KeyError(f"{group}[{source_index}] is not in this layout")

    def to_dict(self) -> dict:
        return {
            "groups": list(self.groups),
            "face_subset": self.face_subset,
            "joints": [[j.group, j.source_index, j.name] for j in self.joints],
        }


def group_indices(group: str, face_subset: str = "reduced") -> tuple[int, ...]:
    if group == "pose":
        return tuple(range(25))
    if group == "face":
        if face_subset == "reduced":
            return REDUCED_FACE
        if face_subset == "full":
            return tuple(range(468))
        raise ValueError(f"face_subset must be 'reduced' or 'full', got {face_subset!r}")
    if group == "iris":
        return IRIS
    if group in ("left_hand", "right_hand"):
        return tuple(range(21))
    if group in SKELETONS:
        return tuple(range(len(SKELETONS[group])))
    raise ValueError(f"unknown landmark group {group!r}; known: {', '.join(GROUPS + tuple(SKELETONS))}")


def _joint_name(group: str, idx: int) -> str:
    if group == "pose":
        return f"pose.{POSE_NAMES[idx]}"
    if group in ("left_hand", "right_hand"):
        return f"{group}.{HAND_NAMES[idx]}"
    if group in SKELETONS:
        return f"{group}.{SKELETONS[group][idx]}"
    return f"{group}.{idx}"


def build_layout(groups: tuple[str, ...] | list[str] = DEFAULT_GROUPS, face_subset: str = "reduced") -> Layout:
    """The joint order for the selected groups, always in the canonical group order of :data:`GROUPS`.

    A skeleton group (:data:`SKELETONS`) is a whole layout of its own: it cannot be combined with others.
    """
    unknown = [g for g in groups if g not in GROUPS and g not in SKELETONS]
    if unknown:
        raise ValueError(f"unknown landmark group(s) {unknown}; known: {', '.join(GROUPS + tuple(SKELETONS))}")
    skeletons = [g for g in groups if g in SKELETONS]
    if skeletons and len(set(groups)) > 1:
        raise ValueError(f"skeleton group {skeletons[0]!r} is a layout of its own; it cannot be combined with {sorted(set(groups) - {skeletons[0]})}")
    ordered = tuple(skeletons[:1]) if skeletons else tuple(g for g in GROUPS if g in groups)
    joints = tuple(
        Joint(group, idx, _joint_name(group, idx)) for group in ordered for idx in group_indices(group, face_subset)
    )
    return Layout(groups=ordered, face_subset=face_subset, joints=joints)


def layout_from_dict(d: dict) -> Layout:
    layout = build_layout(tuple(d["groups"]), d["face_subset"])
    stored = [tuple(j) for j in d["joints"]]
    if stored != [(j.group, j.source_index, j.name) for j in layout.joints]:
        raise ValueError("stored joint list does not match the layout rebuilt from its groups and face subset")
    return layout


def select_from_groups(
    layout: Layout, group_arrays: dict[str, np.ndarray | None], num_frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """Assemble (T, V, 3) coordinates and a (T, G) detection mask from full per-group landmark arrays.

    ``group_arrays[g]`` is (T, N_g, >=3) with the group's full MediaPipe landmark list (pose 33, face 468 or
    478, hands 21) and NaN rows where the group was not detected, or None when the source lacks the group
    entirely. The mask is True where the group was detected in that frame.
    """
    coords = np.zeros((num_frames, layout.num_joints, 3), dtype=np.float32)
    mask = np.zeros((num_frames, len(layout.groups)), dtype=bool)
    slices = layout.group_slices()
    for gi, group in enumerate(layout.groups):
        source_group = "face" if group == "iris" else group
        arr = group_arrays.get(source_group)
        idx = np.asarray(group_indices(group, layout.face_subset))
        if arr is None or arr.shape[1] <= idx.max():
            continue  # e.g. iris from a 468-point face: the group is absent, its mask stays False
        picked = arr[:, idx, :3].astype(np.float32)
        detected = ~np.isnan(picked).any(axis=(1, 2))
        coords[:, slices[group]] = np.nan_to_num(picked, nan=0.0)
        mask[:, gi] = detected
    return coords, mask


def groups_from_flat1662(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Split (T, 1662) MedASL/ADAT frames into per-group arrays; an all-zero group becomes NaN (not detected)."""
    if frames.ndim != 2 or frames.shape[1] != FLAT1662_SIZE:
        raise ValueError(f"expected (T, {FLAT1662_SIZE}) frames, got {frames.shape}")
    out: dict[str, np.ndarray] = {}
    for group, (offset, n, c) in FLAT1662_OFFSETS.items():
        arr = frames[:, offset : offset + n * c].reshape(len(frames), n, c).astype(np.float64)
        missing = np.all(arr == 0.0, axis=(1, 2))
        arr = arr[:, :, :3].copy()
        arr[missing] = np.nan
        out[group] = arr
    return out
