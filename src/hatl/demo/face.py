"""A synthetic MediaPipe face: the reduced mesh points placed by region, the rest of the 468 derived from them.

The 58 points of :data:`hatl.landmarks.FACE_PARTS` are placed on their region (oval, eyes, brows, nose, lips)
of a face-shaped template in face-height units (origin at the face centre, x to the image right, y down,
z toward the camera negative). Mouth opening and brow raising move them. The other mesh points of the
``full`` subset are placed by harmonic interpolation over MediaPipe's own face tessellation (each free point
is the average of its mesh neighbours, the reduced points held fixed), so every index lands where its
neighbours are and the full mesh follows the same mouth and brow motion.
"""

from __future__ import annotations

import functools

import numpy as np

from hatl.landmarks import FACE_PARTS, IRIS, REDUCED_FACE

OVAL_A, OVAL_B = 0.4, 0.5  # half width / half height of the face oval (face-height units)
_EYE_X, _EYE_Y, _EYE_HALF_W, _EYE_HALF_H = 0.2, -0.08, 0.075, 0.024


def _bulge(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Relative depth of a point on the face (an ellipsoid cap: the centre is nearest the camera)."""
    r2 = np.clip((x / OVAL_A) ** 2 + (y / OVAL_B) ** 2, 0.0, 1.0)
    return -0.25 * np.sqrt(1.0 - r2)


def _template() -> dict[int, tuple[float, float]]:
    """Neutral (x, y) of each reduced mesh index, region by region."""
    pts: dict[int, tuple[float, float]] = {}
    # oval: 12 points clockwise from the top (index 10), the jaw a little narrower than the temples
    for k, idx in enumerate(FACE_PARTS["oval"]):
        theta = np.deg2rad(-90 + 30 * k)
        a = OVAL_A * (0.85 if np.sin(theta) > 0.2 else 1.0)
        pts[idx] = (a * np.cos(theta), OVAL_B * np.sin(theta))
    # eyes: outer corner, two upper-lid points, inner corner, two lower-lid points (subject's right = image left)
    for part, side in (("right_eye", -1.0), ("left_eye", 1.0)):
        cx = side * _EYE_X
        outer, up_out, up_in, inner, low_in, low_out = FACE_PARTS[part]
        pts[outer] = (cx + side * _EYE_HALF_W, _EYE_Y)
        pts[up_out] = (cx + side * 0.35 * _EYE_HALF_W, _EYE_Y - _EYE_HALF_H)
        pts[up_in] = (cx - side * 0.35 * _EYE_HALF_W, _EYE_Y - _EYE_HALF_H)
        pts[inner] = (cx - side * _EYE_HALF_W, _EYE_Y)
        pts[low_in] = (cx - side * 0.35 * _EYE_HALF_W, _EYE_Y + _EYE_HALF_H)
        pts[low_out] = (cx + side * 0.35 * _EYE_HALF_W, _EYE_Y + _EYE_HALF_H)
    # brows: outer to inner, arched
    for part, side in (("right_brow", -1.0), ("left_brow", 1.0)):
        for k, idx in enumerate(FACE_PARTS[part]):
            u = k / 4.0
            pts[idx] = (side * (0.3 - 0.22 * u), -0.17 - 0.03 * np.sin(np.pi * (0.3 + 0.7 * u)))
    # nose: between the eyes down to the tip
    for idx, y in zip(FACE_PARTS["nose"], (-0.08, -0.02, 0.04, 0.12)):
        pts[idx] = (0.0, y)
    # lips: outer ring from the right corner over the upper lip, back under the lower lip
    outer_x = (-0.13, -0.085, -0.03, 0.0, 0.03, 0.085, 0.13, 0.085, 0.03, 0.0, -0.03, -0.085)
    outer_y = (0.26, 0.235, 0.225, 0.227, 0.225, 0.235, 0.26, 0.295, 0.305, 0.31, 0.305, 0.295)
    for idx, x, y in zip(FACE_PARTS["lips_outer"], outer_x, outer_y):
        pts[idx] = (x, y)
    inner_x = (-0.1, -0.05, 0.0, 0.05, 0.1, 0.05, 0.0, -0.05)
    inner_y = (0.26, 0.252, 0.25, 0.252, 0.26, 0.266, 0.268, 0.266)
    for idx, x, y in zip(FACE_PARTS["lips_inner"], inner_x, inner_y):
        pts[idx] = (x, y)
    return pts


_TEMPLATE = _template()
_LOWER_LIP = set(FACE_PARTS["lips_outer"][7:]) | set(FACE_PARTS["lips_inner"][5:])
_BROWS = set(FACE_PARTS["right_brow"]) | set(FACE_PARTS["left_brow"])
_UPPER_LIDS = {FACE_PARTS[e][i] for e in ("right_eye", "left_eye") for i in (1, 2)}


def reduced_face(mouth: np.ndarray, brow: np.ndarray) -> np.ndarray:
    """(T, 58, 3) reduced points in :data:`REDUCED_FACE` order, template units, for per-frame mouth/brow.

    ``mouth`` in [0, 1] opens the jaw (lower lip and chin drop); ``brow`` in about [-1, 1] raises (+) or
    lowers (-) the brows and, with them a little, the upper lids.
    """
    t = len(mouth)
    base = np.array([_TEMPLATE[i] for i in REDUCED_FACE], dtype=np.float64)  # (58, 2)
    out = np.zeros((t, len(REDUCED_FACE), 3))
    out[:, :, 0] = base[None, :, 0]
    out[:, :, 1] = base[None, :, 1]
    drop = np.zeros(len(REDUCED_FACE))
    lift = np.zeros(len(REDUCED_FACE))
    for v, idx in enumerate(REDUCED_FACE):
        if idx in _LOWER_LIP:
            drop[v] = 0.09
        elif idx in (152, 172, 397):  # chin and jaw follow the mouth
            drop[v] = 0.06 if idx == 152 else 0.03
        if idx in _BROWS:
            lift[v] = 0.035
        elif idx in _UPPER_LIDS:
            lift[v] = 0.008
    out[:, :, 1] += mouth[:, None] * drop[None, :] - brow[:, None] * lift[None, :]
    out[:, :, 2] = _bulge(out[:, :, 0], out[:, :, 1])
    nose_tip = REDUCED_FACE.index(1)
    out[:, nose_tip, 2] -= 0.12  # the nose sticks out of the cap
    out[:, REDUCED_FACE.index(197), 2] -= 0.06
    return out


def eye_centres(reduced: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, 3) centres of the subject's right and left eye rings in a reduced-face array."""
    right = [REDUCED_FACE.index(i) for i in FACE_PARTS["right_eye"]]
    left = [REDUCED_FACE.index(i) for i in FACE_PARTS["left_eye"]]
    return reduced[:, right].mean(axis=1), reduced[:, left].mean(axis=1)


def iris_points(reduced: np.ndarray, gaze: np.ndarray) -> np.ndarray:
    """(T, 10, 3) iris landmarks 468-477: each eye's centre (shifted by gaze) and four points on a ring."""
    radius = 0.9 * _EYE_HALF_H
    ring = np.array([[radius, 0, 0], [0, -radius, 0], [-radius, 0, 0], [0, radius, 0]])
    out = []
    for centre in eye_centres(reduced):
        c = centre.copy()
        c[:, :2] += gaze
        c[:, 2] -= 0.01
        out.append(c[:, None, :])
        out.append(c[:, None, :] + ring[None])
    assert len(IRIS) == 10
    return np.concatenate(out, axis=1)


@functools.lru_cache(maxsize=1)
def full_mesh_weights() -> np.ndarray:
    """(468, 58) weights: every mesh point as a fixed combination of the reduced points (harmonic on the mesh).

    Uses MediaPipe's face tessellation (the same package the keypoint stage runs). Reduced points map onto
    themselves; a free point's position solves L_ff x_f = -L_fa x_a on the mesh graph Laplacian.
    """
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    n = 468
    adj = np.zeros((n, n))
    for a, b in FACEMESH_TESSELATION:
        adj[a, b] = adj[b, a] = 1.0
    lap = np.diag(adj.sum(axis=1)) - adj
    anchors = np.array(REDUCED_FACE)
    free = np.array([i for i in range(n) if i not in set(REDUCED_FACE)])
    weights = np.zeros((n, len(anchors)))
    weights[anchors, np.arange(len(anchors))] = 1.0
    weights[free] = np.linalg.solve(lap[np.ix_(free, free)], -lap[np.ix_(free, anchors)])
    return weights


def full_face(reduced: np.ndarray) -> np.ndarray:
    """(T, 468, 3) full mesh from (T, 58, 3) reduced points."""
    return np.einsum("na,tac->tnc", full_mesh_weights(), reduced)
