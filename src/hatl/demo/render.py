"""Draw the synthetic skeleton as a person-like figure, so the resize and MediaPipe stages have real videos.

Filled shapes on a plain background: shirt-coloured torso and sleeves, skin-coloured neck, head, palms and
fingers (with a darker outline so fingers stay distinct), hair, eyes with irises, brows and a mouth that
opens. Far parts are drawn first. Whether MediaPipe then finds a person is up to MediaPipe.
"""

from __future__ import annotations

import numpy as np

from hatl.demo.body import Signer, Skeleton
from hatl.landmarks import FACE_PARTS

_BACKGROUND = (205, 200, 190)  # BGR, a light grey-blue studio wall
_FINGERS = ((0, 1, 2, 3, 4), (0, 5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (0, 17, 18, 19, 20))
_PALM = (0, 1, 5, 9, 13, 17)


def _px(points: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.round(points[..., :2] * np.array([width, height])).astype(np.int32)


def _darker(colour: tuple[int, int, int], factor: float = 0.7) -> tuple[int, int, int]:
    return tuple(int(c * factor) for c in colour)  # type: ignore[return-value]


def _draw_hand(img: np.ndarray, pts: np.ndarray, skin: tuple[int, int, int], finger_w: int) -> None:
    import cv2

    outline = _darker(skin, 0.6)
    palm = cv2.convexHull(pts[list(_PALM)])
    cv2.fillConvexPoly(img, palm, skin, lineType=cv2.LINE_AA)
    cv2.polylines(img, [palm], True, outline, 1, lineType=cv2.LINE_AA)
    for chain in _FINGERS:
        line = pts[list(chain)].reshape(-1, 1, 2)
        cv2.polylines(img, [line], False, outline, finger_w + 2, lineType=cv2.LINE_AA)
        cv2.polylines(img, [line], False, skin, finger_w, lineType=cv2.LINE_AA)


def _draw_arm(img: np.ndarray, pose: np.ndarray, side: str, shirt: tuple[int, int, int], width: int) -> None:
    import cv2

    s, e, w = (11, 13, 15) if side == "left" else (12, 14, 16)
    sleeve = tuple(min(255, int(c * 1.25) + 12) for c in shirt)  # a lighter sleeve keeps the arm visible on the torso
    for colour, extra in ((_darker(shirt, 0.6), 2), (sleeve, 0)):
        cv2.line(img, tuple(pose[s]), tuple(pose[e]), colour, width + extra, lineType=cv2.LINE_AA)
        cv2.line(img, tuple(pose[e]), tuple(pose[w]), colour, int(width * 0.85) + extra, lineType=cv2.LINE_AA)
        cv2.circle(img, tuple(pose[e]), (width + extra) // 2, colour, -1, lineType=cv2.LINE_AA)


def render_frame(pose: np.ndarray, face: np.ndarray, left: np.ndarray, right: np.ndarray, signer: Signer,
                 width: int, height: int, mouth_open: float, depth: dict[str, float]) -> np.ndarray:
    """One BGR frame from pixel-coordinate landmarks of that frame."""
    import cv2

    img = np.empty((height, width, 3), dtype=np.uint8)
    img[:] = _BACKGROUND
    sw = float(np.linalg.norm(pose[11] - pose[12]))
    arm_w = max(3, int(0.24 * sw))
    finger_w = max(2, int(0.045 * sw))
    # torso: shoulders to hips, a little wider than the shoulder points (the deltoids)
    ls, rs, lh, rh = pose[11], pose[12], pose[23], pose[24]
    out = np.array([int(0.1 * sw), int(0.04 * sw)])
    mid_sh = (ls + rs) // 2
    neck_base = np.array([int(0.22 * sw), int(-0.12 * sw)])  # the trapezius slopes up to the neck
    torso = np.array([rs - out * [1, -1], mid_sh + neck_base * [-1, 1], mid_sh + neck_base, ls + out,
                      lh + out // 2, rh - out // 2], dtype=np.int32)
    cv2.fillConvexPoly(img, cv2.convexHull(torso), signer.shirt, lineType=cv2.LINE_AA)
    # neck and head
    oval = face[list(FACE_PARTS["oval"])]
    centre = oval.mean(axis=0)
    axes = np.maximum((oval.max(axis=0) - oval.min(axis=0)) / 2, 2).astype(int)
    neck_w = int(0.45 * axes[0])
    chin = face[152]
    cv2.fillConvexPoly(img, np.array([chin + [-neck_w, -5], chin + [neck_w, -5], mid_sh + [neck_w, 2],
                                      mid_sh + [-neck_w, 2]], dtype=np.int32), signer.skin, lineType=cv2.LINE_AA)
    cv2.ellipse(img, (int(centre[0]), int(centre[1] - 0.25 * axes[1])), (int(axes[0] * 1.08), int(axes[1] * 0.85)),
                0, 180, 360, signer.hair, -1, lineType=cv2.LINE_AA)
    cv2.ellipse(img, tuple(int(c) for c in centre), tuple(int(a) for a in axes), 0, 0, 360, signer.skin, -1,
                lineType=cv2.LINE_AA)
    for ear in (pose[7], pose[8]):
        cv2.circle(img, tuple(ear), max(2, int(0.18 * axes[0])), signer.skin, -1, lineType=cv2.LINE_AA)
    # eyes, irises, brows, nose, mouth
    for eye, iris in (("right_eye", 468), ("left_eye", 473)):
        ring = face[list(FACE_PARTS[eye])]
        cv2.fillPoly(img, [ring], (245, 245, 245), lineType=cv2.LINE_AA)
        cv2.circle(img, tuple(face[iris]), max(1, int(0.06 * axes[0])), (40, 30, 20), -1, lineType=cv2.LINE_AA)
    for brow in ("right_brow", "left_brow"):
        cv2.polylines(img, [face[list(FACE_PARTS[brow])]], False, _darker(signer.hair, 0.8),
                      max(1, int(0.06 * axes[0])), lineType=cv2.LINE_AA)
    cv2.polylines(img, [face[list(FACE_PARTS["nose"])]], False, _darker(signer.skin, 0.75), 1, lineType=cv2.LINE_AA)
    cv2.fillPoly(img, [face[list(FACE_PARTS["lips_outer"])]], (70, 70, 160), lineType=cv2.LINE_AA)
    if mouth_open > 0.15:
        cv2.fillPoly(img, [face[list(FACE_PARTS["lips_inner"])]], (30, 20, 40), lineType=cv2.LINE_AA)
    # arms and hands, the farther one first
    hands = {"left": left, "right": right}
    for side in sorted(hands, key=lambda s: -depth[s]):
        _draw_arm(img, pose, side, signer.shirt, arm_w)
        _draw_hand(img, hands[side], signer.skin, finger_w)
    return img


def render_frames(skel: Skeleton, signer: Signer, width: int, height: int, mouth: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 BGR frames of a skeleton in image-normalised coordinates."""
    pose, face = _px(skel.pose, width, height), _px(skel.face, width, height)
    left, right = _px(skel.left_hand, width, height), _px(skel.right_hand, width, height)
    frames = np.empty((len(pose), height, width, 3), dtype=np.uint8)
    for t in range(len(pose)):
        depth = {"left": float(skel.pose[t, 15, 2]), "right": float(skel.pose[t, 16, 2])}  # body-relative wrists
        frames[t] = render_frame(pose[t], face[t], left[t], right[t], signer, width, height, float(mouth[t]), depth)
    return frames
