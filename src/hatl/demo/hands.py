"""A 21-point MediaPipe hand from a handshape (finger curls, spread, thumb abduction) and an orientation.

The hand is built in its own frame (hand-length units: wrist at the origin, fingers up = -y, palm facing
the camera = flexion toward -z, the subject's right hand with the thumb toward +x), then turned by yaw
(about the finger axis) and roll (in the image plane), mirrored for the left hand, scaled and placed.
Each finger is a chain MCP-PIP-DIP-TIP whose joints bend by fractions of a full curl, so a curl of 0 is a
straight finger and 1 a fist.
"""

from __future__ import annotations

import numpy as np

SHAPE_SIZE = 7  # curls of thumb, index, middle, ring, pinky; finger spread; thumb abduction

# MCP positions (x, y) and segment lengths (proximal, middle, distal) of index, middle, ring, pinky
_MCP = np.array([[0.09, -0.47], [0.0, -0.5], [-0.08, -0.47], [-0.15, -0.42]])
_SEGMENTS = np.array([[0.22, 0.13, 0.10], [0.25, 0.15, 0.11], [0.23, 0.14, 0.10], [0.18, 0.10, 0.09]])
_FAN = np.array([0.12, 0.0, -0.12, -0.26])  # per-finger in-plane angle at full spread (radians)
_FLEX = np.array([1.35, 1.7, 1.1])  # MCP, PIP, DIP flexion at curl 1 (radians)
_THUMB_CMC = np.array([0.12, -0.08])
_THUMB_SEGMENTS = np.array([0.2, 0.15, 0.12])
_THUMB_FLEX = np.array([0.45, 0.8, 0.7])
PALM_CENTRE = np.array([0.0, -0.28, 0.0])  # the point a sign's location refers to

# Named handshapes: (curls thumb..pinky, spread, thumb abduction)
HANDSHAPES: dict[str, tuple[float, ...]] = {
    "B": (0.55, 0.0, 0.0, 0.0, 0.0, 0.05, 0.1),
    "5": (0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0),
    "A": (0.1, 1.0, 1.0, 1.0, 1.0, 0.0, 0.15),
    "S": (0.85, 1.0, 1.0, 1.0, 1.0, 0.0, 0.1),
    "1": (0.8, 0.0, 1.0, 1.0, 1.0, 0.0, 0.2),
    "V": (0.8, 0.0, 0.0, 1.0, 1.0, 0.9, 0.2),
    "Y": (0.0, 1.0, 1.0, 1.0, 0.0, 0.6, 1.0),
    "L": (0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0),
    "C": (0.3, 0.45, 0.45, 0.45, 0.45, 0.2, 0.7),
    "O": (0.6, 0.7, 0.7, 0.7, 0.7, 0.0, 0.6),
    "I": (0.85, 1.0, 1.0, 1.0, 0.0, 0.0, 0.2),
    "W": (0.85, 0.0, 0.0, 0.0, 1.0, 0.8, 0.2),
    "bent": (0.4, 0.55, 0.55, 0.55, 0.55, 0.1, 0.3),
}
RELAXED = np.array([0.3, 0.3, 0.35, 0.4, 0.45, 0.2, 0.4])


def _rot_z(points: np.ndarray, angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    x, y = points[..., 0], points[..., 1]
    return np.stack([c * x - s * y, s * x + c * y, points[..., 2]], axis=-1)


def _rot_y(points: np.ndarray, angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    x, z = points[..., 0], points[..., 2]
    return np.stack([c * x + s * z, points[..., 1], -s * x + c * z], axis=-1)


def _chain(base: np.ndarray, direction: np.ndarray, normal: np.ndarray, lengths: np.ndarray,
           flex: np.ndarray) -> list[np.ndarray]:
    """Joint positions along a finger: each joint turns the bone from ``direction`` toward ``normal``."""
    points = []
    pos = base
    total = np.zeros(base.shape[0])
    for k, length in enumerate(lengths):
        total = total + flex[:, k]
        bone = np.cos(total)[:, None] * direction + np.sin(total)[:, None] * normal
        pos = pos + length * bone
        points.append(pos)
    return points


def hand_points(shape: np.ndarray, roll: np.ndarray, yaw: np.ndarray, left: bool) -> np.ndarray:
    """(T, 21, 3) hand landmarks in hand-length units, wrist at the origin (MediaPipe joint order).

    ``shape`` (T, 7) handshape parameters; ``roll`` rotates the fingers in the image plane (0 = up,
    positive = toward the image right for the right hand); ``yaw`` turns the palm away from the camera.
    """
    t = shape.shape[0]
    curls, spread, abduction = np.clip(shape[:, :5], 0, 1), np.clip(shape[:, 5], 0, 1), np.clip(shape[:, 6], 0, 1)
    out = np.zeros((t, 21, 3))
    toward_camera = np.broadcast_to(np.array([0.0, 0.0, -1.0]), (t, 3))
    # thumb: leaves the palm outward by its abduction and flexes across the palm
    cmc = np.zeros((t, 3))
    cmc[:, :2] = _THUMB_CMC
    out[:, 1] = cmc
    phi = 0.35 + 0.75 * abduction
    thumb_dir = np.stack([np.sin(phi), -np.cos(phi), np.zeros(t)], axis=-1)
    across = np.broadcast_to(np.array([-0.6, 0.0, -0.8]), (t, 3))
    flex = curls[:, :1] * _THUMB_FLEX[None, :]
    out[:, 2:5] = np.stack(_chain(cmc, thumb_dir, across, _THUMB_SEGMENTS, flex), axis=1)
    for f in range(4):
        base = np.zeros((t, 3))
        base[:, :2] = _MCP[f]
        angle = _FAN[f] * spread
        direction = np.stack([np.sin(angle), -np.cos(angle), np.zeros(t)], axis=-1)
        flex = curls[:, f + 1 : f + 2] * _FLEX[None, :]
        first = 5 + 4 * f
        out[:, first] = base
        out[:, first + 1 : first + 4] = np.stack(_chain(base, direction, toward_camera, _SEGMENTS[f], flex), axis=1)
    out = _rot_y(out, yaw)
    if left:  # the left hand is the mirror image of the right one
        out[..., 0] *= -1.0
        roll = -roll
    return _rot_z(out, roll)


def palm_offset(roll: np.ndarray, yaw: np.ndarray, left: bool) -> np.ndarray:
    """(T, 3) vector from the wrist to the palm centre in hand-length units (for placing a hand by its palm)."""
    t = len(roll)
    centre = np.broadcast_to(PALM_CENTRE, (t, 1, 3)).copy()
    centre = _rot_y(centre, yaw)
    if left:
        centre[..., 0] *= -1.0
        roll = -roll
    return _rot_z(centre, roll)[:, 0]
