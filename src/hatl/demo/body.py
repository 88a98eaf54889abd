"""Signers, signs and the synthetic skeleton: from a gloss sequence to per-frame MediaPipe-like landmarks.

Geometry is computed in isotropic image units (1 = the image width, y down, z toward the camera negative)
and converted to MediaPipe's image-normalised x, y at the end (y is divided by the aspect ratio). Sign
locations are in shoulder widths relative to the shoulder midpoint, so a sign lands at the same place on
every body; body proportions, framing, speed and noise come from the signer.

A sign (one per gloss, seeded by dataset and gloss) is a dominant-hand palm path (start/end locations and a
movement: line, arc, circle, repeated or hold-with-wiggle), a start and end handshape, palm orientation, a
role for the other hand (rest, mirror, or static base) and non-manual parts (mouthing cycles, brows, nod).
A sentence is a timeline of keyframes: rest, each sign sampled along its movement, linear transitions
between consecutive signs, rest again; frames are sampled uniformly from it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from hatl.demo import face as facemod
from hatl.demo import hands as handmod
from hatl.demo.grammar import is_question, sign_key
from hatl.landmarks import REDUCED_FACE

# State vector of one keyframe (each hand: palm position xyz, handshape, roll, yaw; then the face)
_DOM_POS, _ND_POS = slice(0, 3), slice(3, 6)
_DOM_SHAPE, _ND_SHAPE = slice(6, 13), slice(13, 20)
_DOM_ROLL, _DOM_YAW, _ND_ROLL, _ND_YAW = 20, 21, 22, 23
_MOUTH, _BROW, _HEAD_ROLL, _NOD = 24, 25, 26, 27
STATE_SIZE = 28
MOUTH = _MOUTH  # public: the renderer opens the drawn mouth with this state
SAMPLES_PER_SIGN = 9

# Sign locations (palm centre; shoulder widths from the shoulder midpoint; x toward the image right,
# i.e. the subject's left; the dominant hand is the subject's right one, on the image's left side)
LOCATIONS: dict[str, tuple[float, float, float]] = {
    "forehead": (-0.05, -0.72, -0.3), "eye": (-0.17, -0.58, -0.35), "nose": (-0.03, -0.47, -0.4),
    "mouth": (-0.03, -0.38, -0.4), "chin": (-0.03, -0.27, -0.4), "cheek": (-0.27, -0.46, -0.3),
    "ear": (-0.4, -0.58, -0.2), "neck": (-0.05, -0.12, -0.3), "chest": (-0.1, 0.32, -0.35),
    "opposite_chest": (0.25, 0.3, -0.35), "shoulder": (-0.45, 0.05, -0.3), "stomach": (-0.1, 0.75, -0.4),
    "neutral": (-0.25, 0.42, -0.65), "neutral_high": (-0.3, 0.0, -0.65), "side": (-0.75, 0.35, -0.35),
    "low": (-0.2, 0.7, -0.6),
}
REST_DOM = np.array([-0.38, 0.95, -0.45])  # palm on the lap, in front of the body
BASE_LOCATION = np.array([0.2, 0.5, -0.55])
MOVEMENTS = ("line", "arc", "circle", "repeat", "hold")


def stable_seed(*parts: object) -> int:
    """A platform-independent 64-bit seed from any values (Python's hash() is salted per process)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little")


# ------------------------------------------------------------------------------------------------ signers
@dataclass(frozen=True)
class Signer:
    signer_id: str
    shoulder_width: float  # isotropic units (fraction of the image width)
    centre_x: float  # shoulder midpoint, isotropic units
    shoulder_y: float
    arm_factor: float  # upper arm + forearm length relative to the average body
    head_factor: float
    hand_factor: float
    frames_per_gloss: float  # speed
    noise: float  # landmark jitter, isotropic units
    miss_rate: float  # chance per frame that a hand detection drops out
    space_scale: float  # how large the signer's signing space is
    sway: float  # body sway amplitude
    skin: tuple[int, int, int]  # BGR colours for the rendered clips
    shirt: tuple[int, int, int]
    hair: tuple[int, int, int]


# Seconds a signer spends on one sign (the transition to the next adds 40% on average): 0.36-0.50 s per sign,
# about 0.6 s per gloss with transitions, the pace of real continuous signing (PHOENIX14T: 10.53 h for 8,257
# sentences of 7.66 glosses on average = 0.6 s per gloss; about 16 frames per gloss at its 25 fps).
SIGN_SECONDS = (0.36, 0.50)


def make_signer(seed: int, index: int, signer_id: str, aspect: float, fps: float = 25.0) -> Signer:
    """Signer ``index`` of a dataset; ``aspect`` = height / width of the virtual camera frame; ``fps`` the
    frame rate of the recordings (a signer's pace is in seconds, its frames per gloss follow from it)."""
    rng = np.random.default_rng(stable_seed(seed, "signer", index))
    sw = 0.38 * rng.uniform(0.85, 1.12)
    skins = [(140, 180, 225), (120, 160, 210), (95, 135, 185), (70, 100, 150), (160, 195, 235)]
    shirts = [(90, 40, 20), (40, 40, 40), (30, 60, 110), (60, 90, 40), (110, 60, 90), (50, 50, 130)]
    hairs = [(20, 20, 25), (30, 50, 80), (60, 90, 130), (120, 120, 125)]
    return Signer(
        signer_id=signer_id,
        shoulder_width=sw,
        centre_x=0.5 + rng.uniform(-0.04, 0.04),
        shoulder_y=aspect * 0.6 + rng.uniform(-0.03, 0.03),
        arm_factor=rng.uniform(0.9, 1.1),
        head_factor=rng.uniform(0.88, 1.12),
        hand_factor=rng.uniform(0.9, 1.1),
        frames_per_gloss=fps * rng.uniform(*SIGN_SECONDS),
        noise=rng.uniform(0.0015, 0.005),
        miss_rate=rng.uniform(0.02, 0.08),
        space_scale=rng.uniform(0.9, 1.1),
        sway=rng.uniform(0.0, 0.012),
        skin=skins[int(rng.integers(len(skins)))],
        shirt=shirts[int(rng.integers(len(shirts)))],
        hair=hairs[int(rng.integers(len(hairs)))],
    )


# -------------------------------------------------------------------------------------------------- signs
@dataclass(frozen=True)
class Sign:
    start: np.ndarray  # (3,) palm location, shoulder widths
    end: np.ndarray
    movement: str
    shape_start: np.ndarray  # (7,)
    shape_end: np.ndarray
    roll: tuple[float, float]  # start, end
    yaw: float
    two_hands: str  # "rest" | "mirror" | "base"
    base_shape: np.ndarray
    mouth_cycles: int  # 0 = no mouthing
    mouth_amp: float
    brow: float
    nod: float


def _shape(rng: np.random.Generator) -> np.ndarray:
    names = sorted(handmod.HANDSHAPES)
    base = np.array(handmod.HANDSHAPES[names[int(rng.integers(len(names)))]])
    return np.clip(base + rng.normal(0, 0.06, size=base.shape), 0, 1)


def make_sign(seed: int, gloss: str) -> Sign:
    """The sign of one gloss, the same for every signer of the dataset (seeded by dataset seed and gloss)."""
    rng = np.random.default_rng(stable_seed(seed, "sign", sign_key(gloss)))
    names = sorted(LOCATIONS)
    start = np.array(LOCATIONS[names[int(rng.integers(len(names)))]]) + rng.normal(0, 0.06, 3)
    if rng.random() < 0.4:
        end = np.array(LOCATIONS[names[int(rng.integers(len(names)))]]) + rng.normal(0, 0.06, 3)
    else:
        direction = rng.normal(0, 1, 3) * np.array([1.0, 1.0, 0.4])
        end = start + 0.35 * direction / (np.linalg.norm(direction) + 1e-9)
    two = rng.random()
    two_hands = "mirror" if two < 0.25 else "base" if two < 0.4 else "rest"
    if two_hands == "base":  # the dominant hand acts on the static other hand
        start = BASE_LOCATION + np.array([-0.15, -0.2, -0.05]) + rng.normal(0, 0.04, 3)
        end = BASE_LOCATION + np.array([-0.05, -0.05, -0.05]) + rng.normal(0, 0.04, 3)
    shape_start = _shape(rng)
    shape_end = _shape(rng) if rng.random() < 0.3 else shape_start
    roll0 = rng.uniform(-0.9, 0.9)
    mouthing = rng.random() < 0.5
    return Sign(
        start=start, end=end, movement=MOVEMENTS[int(rng.integers(len(MOVEMENTS)))],
        shape_start=shape_start, shape_end=shape_end,
        roll=(roll0, roll0 + rng.uniform(-0.6, 0.6)), yaw=rng.uniform(0.0, 1.2),
        two_hands=two_hands, base_shape=np.array(handmod.HANDSHAPES["B"]),
        mouth_cycles=int(rng.integers(1, 4)) if mouthing else 0, mouth_amp=rng.uniform(0.3, 1.0),
        brow=rng.uniform(-0.4, 0.4), nod=rng.uniform(-0.5, 0.5),
    )


def rest_state() -> np.ndarray:
    s = np.zeros(STATE_SIZE)
    s[_DOM_POS] = REST_DOM
    s[_ND_POS] = REST_DOM * np.array([-1.0, 1.0, 1.0])
    s[_DOM_SHAPE] = handmod.RELAXED
    s[_ND_SHAPE] = handmod.RELAXED
    s[_DOM_ROLL] = s[_ND_ROLL] = -2.7  # fingers hang down and inward
    s[_DOM_YAW] = s[_ND_YAW] = 1.0
    return s


def sign_states(sign: Sign, question: bool, n: int = SAMPLES_PER_SIGN) -> np.ndarray:
    """(n, STATE_SIZE) keyframes of one sign along its movement, u = 0..1."""
    u = np.linspace(0.0, 1.0, n)
    ease = 0.5 - 0.5 * np.cos(np.pi * u)
    path = sign.start[None] + (sign.end - sign.start)[None] * ease[:, None]
    delta = sign.end - sign.start
    perp = np.array([-delta[1], delta[0], 0.0])
    perp = perp / (np.linalg.norm(perp) + 1e-9)
    if sign.movement == "arc":
        path = path + 0.2 * np.sin(np.pi * u)[:, None] * perp[None]
    elif sign.movement == "circle":
        ang = 2 * np.pi * u
        path = sign.start[None] + 0.15 * np.stack([np.cos(ang) - 1, np.sin(ang), np.zeros(n)], axis=1)
    elif sign.movement == "repeat":
        path = sign.start[None] + delta[None] * (0.5 - 0.5 * np.cos(4 * np.pi * u))[:, None] * 0.6
    elif sign.movement == "hold":
        path = sign.start[None] + 0.04 * np.sin(6 * np.pi * u)[:, None] * perp[None]
    states = np.zeros((n, STATE_SIZE))
    states[:, _DOM_POS] = path
    shape = sign.shape_start[None] + (sign.shape_end - sign.shape_start)[None] * ease[:, None]
    if sign.movement == "hold":  # finger wiggle
        shape = shape.copy()
        shape[:, 1:5] = np.clip(shape[:, 1:5] + 0.25 * np.sin(6 * np.pi * u)[:, None], 0, 1)
    states[:, _DOM_SHAPE] = shape
    states[:, _DOM_ROLL] = sign.roll[0] + (sign.roll[1] - sign.roll[0]) * ease
    states[:, _DOM_YAW] = sign.yaw
    if sign.two_hands == "mirror":
        states[:, _ND_POS] = path * np.array([-1.0, 1.0, 1.0])
        states[:, _ND_SHAPE] = shape
        states[:, _ND_ROLL] = states[:, _DOM_ROLL]
        states[:, _ND_YAW] = sign.yaw
    else:
        rest = rest_state()
        pos = BASE_LOCATION if sign.two_hands == "base" else rest[_ND_POS]
        states[:, _ND_POS] = pos
        states[:, _ND_SHAPE] = sign.base_shape if sign.two_hands == "base" else rest[_ND_SHAPE]
        states[:, _ND_ROLL] = 1.35 if sign.two_hands == "base" else rest[_ND_ROLL]  # base: fingers across
        states[:, _ND_YAW] = 1.2 if sign.two_hands == "base" else rest[_ND_YAW]
    if sign.mouth_cycles:
        states[:, _MOUTH] = sign.mouth_amp * np.sin(np.pi * sign.mouth_cycles * u) ** 2
    states[:, _BROW] = 0.9 if question else sign.brow
    states[:, _NOD] = (0.6 if question else sign.nod) * np.sin(np.pi * u)
    states[:, _HEAD_ROLL] = 0.04 * sign.nod
    return states


@dataclass(frozen=True)
class Timeline:
    times: np.ndarray  # (K,) keyframe times in frames
    states: np.ndarray  # (K, STATE_SIZE)
    gloss_spans: tuple[tuple[float, float], ...]  # start/end time of each gloss


def build_timeline(glosses: list[str] | tuple[str, ...], signs: dict[str, Sign], signer: Signer,
                   rng: np.random.Generator) -> Timeline:
    """Rest, the signs with transitions between them, rest; durations follow the signer's speed."""
    fpg = signer.frames_per_gloss
    rest = rest_state()
    times, states, spans = [0.0], [rest], []
    t = 0.6 * fpg
    for gloss in glosses:
        dur = fpg * rng.uniform(0.85, 1.15)
        sign_rows = sign_states(signs[sign_key(gloss)], is_question(gloss))
        for pos in (_DOM_POS, _ND_POS):
            sign_rows[:, pos] *= signer.space_scale
            sign_rows[:, pos.start + 1] = np.clip(sign_rows[:, pos.start + 1], -0.85, 1.1)  # crown to lap
        times.extend(t + np.linspace(0.0, dur, len(sign_rows)))
        states.extend(sign_rows)
        spans.append((t, t + dur))
        t += dur + 0.4 * fpg * rng.uniform(0.8, 1.2)
    times.append(t - 0.4 * fpg + 0.6 * fpg)
    states.append(rest)
    return Timeline(np.asarray(times), np.asarray(states), tuple(spans))


def sample_frames(timeline: Timeline, min_frames: int, max_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(T, STATE_SIZE) states at T uniformly spaced frame times, T clipped to [min_frames, max_frames].

    A sentence longer than ``max_frames`` is signed faster (time compressed), a short one slower.
    """
    total = float(timeline.times[-1])
    n = int(np.clip(round(total), min_frames, max_frames))
    frame_times = np.linspace(0.0, total, n)
    out = np.empty((n, STATE_SIZE))
    for k in range(STATE_SIZE):
        out[:, k] = np.interp(frame_times, timeline.times, timeline.states[:, k])
    return out, frame_times


# --------------------------------------------------------------------------------------------- skeleton
def _elbows(shoulder: np.ndarray, wrist: np.ndarray, upper: float, fore: float,
            outward: float) -> tuple[np.ndarray, np.ndarray]:
    """Two-bone inverse kinematics: the elbow (and the wrist, pulled in when out of reach), per frame."""
    d = wrist - shoulder
    dist = np.linalg.norm(d, axis=1, keepdims=True)
    reach = np.clip(dist, abs(upper - fore) + 1e-4, (upper + fore) * 0.999)
    unit = d / np.maximum(dist, 1e-9)
    wrist = shoulder + unit * reach
    cos_a = (upper**2 + reach**2 - fore**2) / (2 * upper * reach)
    sin_a = np.sqrt(np.clip(1 - cos_a**2, 0, 1))
    pole = np.array([outward * 0.35, 1.0, 0.6])  # elbows hang down, a little outward and back
    pole = pole[None] - (unit @ pole)[:, None] * unit
    pole = pole / np.maximum(np.linalg.norm(pole, axis=1, keepdims=True), 1e-9)
    elbow = shoulder + upper * (cos_a * unit + sin_a * pole)
    return elbow, wrist


@dataclass
class Skeleton:
    """Full per-group MediaPipe landmark arrays (isotropic units until :func:`to_image`)."""

    pose: np.ndarray  # (T, 33, 3)
    face: np.ndarray  # (T, 478, 3): mesh 0-467 (only the reduced points unless full=True) + iris 468-477
    left_hand: np.ndarray  # (T, 21, 3)
    right_hand: np.ndarray  # (T, 21, 3)
    face_idx: np.ndarray  # the face indices that were computed (the rest are 0 and never selected)


def build_skeleton(states: np.ndarray, frame_times: np.ndarray, signer: Signer, full_face: bool) -> Skeleton:
    """Landmarks of every frame from the sampled states (noise-free, every group present)."""
    t = len(states)
    sw = signer.shoulder_width
    sway = signer.sway * np.sin(2 * np.pi * frame_times / 40.0)
    mid = np.stack([signer.centre_x + sway, np.full(t, signer.shoulder_y), np.zeros(t)], axis=1)
    half = np.array([sw / 2, 0.0, 0.0])
    r_sh, l_sh = mid - half, mid + half  # subject's right shoulder is on the image left
    upper, fore = 0.8 * sw * signer.arm_factor, 0.7 * sw * signer.arm_factor
    hand_len = 0.6 * sw * signer.hand_factor  # MediaPipe shoulders are joint centres: a hand is ~0.6 of their gap

    hands = {}
    wrists, elbows = {}, {}
    for side, left, pos_s, shape_s, roll_i, yaw_i, shoulder, out in (
        ("right", False, _DOM_POS, _DOM_SHAPE, _DOM_ROLL, _DOM_YAW, r_sh, -1.0),
        ("left", True, _ND_POS, _ND_SHAPE, _ND_ROLL, _ND_YAW, l_sh, 1.0),
    ):
        roll, yaw = states[:, roll_i], states[:, yaw_i]
        palm = mid + states[:, pos_s] * sw
        wrist = palm - handmod.palm_offset(roll, yaw, left) * hand_len
        elbow, wrist = _elbows(shoulder, wrist, upper, fore, out)
        pts = handmod.hand_points(states[:, shape_s], roll, yaw, left) * hand_len + wrist[:, None, :]
        hands[side], wrists[side], elbows[side] = pts, wrist, elbow

    # face: template (face-height units) -> rotated by head roll, placed above the shoulders
    fh = 0.5 * sw * signer.head_factor
    reduced = facemod.reduced_face(np.clip(states[:, _MOUTH], 0, 1), states[:, _BROW])
    gaze = np.zeros((t, 2))
    iris = facemod.iris_points(reduced, gaze)
    mesh_idx = np.arange(468) if full_face else np.array(REDUCED_FACE)
    mesh = facemod.full_face(reduced) if full_face else reduced
    head = np.concatenate([mesh, iris], axis=1)
    head_roll = states[:, _HEAD_ROLL]
    c, s = np.cos(head_roll)[:, None], np.sin(head_roll)[:, None]
    hx, hy = head[..., 0], head[..., 1]
    head = np.stack([c * hx - s * hy, s * hx + c * hy, head[..., 2]], axis=-1) * fh
    centre = mid + np.array([0.0, -0.25 * sw - 0.5 * fh, -0.1 * sw])  # chin a quarter shoulder width up
    centre[:, 1] += 0.06 * fh * states[:, _NOD]
    face_idx = np.concatenate([mesh_idx, np.arange(468, 478)])
    face = np.zeros((t, 478, 3))
    face[:, face_idx] = head + centre[:, None, :]

    pose = np.zeros((t, 33, 3))
    pose[:, 0] = face[:, 1]  # nose tip

    def placed(p: np.ndarray) -> np.ndarray:  # a template-unit face point, rolled and placed like the face
        x, y = p[:, 0:1], p[:, 1:2]
        return np.concatenate([c * x - s * y, s * x + c * y, p[:, 2:3]], axis=1) * fh + centre

    r_eye, l_eye = facemod.eye_centres(reduced)
    ear = np.tile([[facemod.OVAL_A * 1.03, -0.02, 0.1]], (t, 1))
    pose[:, 1], pose[:, 2], pose[:, 3] = face[:, 362], placed(l_eye), face[:, 263]
    pose[:, 4], pose[:, 5], pose[:, 6] = face[:, 133], placed(r_eye), face[:, 33]
    pose[:, 7] = placed(ear)
    pose[:, 8] = placed(ear * np.array([-1.0, 1.0, 1.0]))
    pose[:, 9], pose[:, 10] = face[:, 291], face[:, 61]
    pose[:, 11], pose[:, 12] = l_sh, r_sh
    pose[:, 13], pose[:, 14] = elbows["left"], elbows["right"]
    pose[:, 15], pose[:, 16] = wrists["left"], wrists["right"]
    pose[:, 17], pose[:, 18] = hands["left"][:, 17], hands["right"][:, 17]
    pose[:, 19], pose[:, 20] = hands["left"][:, 5], hands["right"][:, 5]
    pose[:, 21], pose[:, 22] = hands["left"][:, 3], hands["right"][:, 3]
    hip_y = np.array([0.0, 1.3 * sw, 0.0])
    pose[:, 23] = mid + hip_y + np.array([0.36 * sw, 0, 0])
    pose[:, 24] = mid + hip_y - np.array([0.36 * sw, 0, 0])
    for k, (dy, dx) in enumerate(((2.3, 0.33), (3.3, 0.33), (3.4, 0.36), (3.5, 0.25))):  # legs, out of frame
        pose[:, 25 + 2 * k] = mid + np.array([dx * sw, dy * sw, 0])
        pose[:, 26 + 2 * k] = mid + np.array([-dx * sw, dy * sw, 0])
    # MediaPipe's depth conventions: pose z relative to the body, hand z relative to the wrist, face z
    # relative to the head; the pose above keeps body-relative depth for its hand and face points
    for side in hands:
        hands[side] = hands[side].copy()
        hands[side][..., 2] -= wrists[side][:, None, 2]
    face[:, face_idx, 2] -= centre[:, None, 2]
    return Skeleton(pose=pose, face=face, left_hand=hands["left"], right_hand=hands["right"], face_idx=face_idx)


def to_image(skel: Skeleton, aspect: float) -> Skeleton:
    """Isotropic units -> MediaPipe image-normalised x, y (clipped to [0, 1]); z stays in width units."""

    def conv(a: np.ndarray) -> np.ndarray:
        out = a.copy()
        out[..., 1] = out[..., 1] / aspect
        out[..., :2] = np.clip(out[..., :2], 0.0, 1.0)
        return out

    return Skeleton(conv(skel.pose), conv(skel.face), conv(skel.left_hand), conv(skel.right_hand), skel.face_idx)


def hand_dropouts(rng: np.random.Generator, states: np.ndarray, signer: Signer) -> dict[str, np.ndarray]:
    """(T,) bool per hand, True where the detector would miss it: bursts, more often for a hand at rest."""
    out = {}
    for side, pos in (("right", _DOM_POS), ("left", _ND_POS)):
        low = states[:, pos][:, 1] > 0.9  # hand down at the lap, often out of view or blurred
        missing = np.zeros(len(states), dtype=bool)
        for i in range(len(states)):
            p = signer.miss_rate * (3.0 if low[i] else 1.0)
            if i > 0 and missing[i - 1]:
                p = 0.5  # dropouts come in bursts
            missing[i] = rng.random() < p
        out[side] = missing
    return out


def add_noise(skel: Skeleton, seed: int, signer: Signer) -> Skeleton:
    """Detector jitter: Gaussian per point and frame (hands a little noisier, depth less so).

    Each group draws from its own stream, so the pose and hands of a sample are the same whichever face
    subset is configured.
    """

    def jitter(a: np.ndarray, group: str, scale: float) -> np.ndarray:
        rng = np.random.default_rng(stable_seed(seed, "noise", group))
        sigma = np.array([1.0, 1.0, 0.5]) * signer.noise * scale
        return a + rng.normal(0.0, 1.0, a.shape) * sigma

    face = skel.face.copy()
    face[:, skel.face_idx] = jitter(skel.face[:, skel.face_idx], "face", 0.5)
    return Skeleton(jitter(skel.pose, "pose", 1.0), face, jitter(skel.left_hand, "left_hand", 1.5),
                    jitter(skel.right_hand, "right_hand", 1.5), skel.face_idx)
