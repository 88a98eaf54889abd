"""MediaPipe Holistic (solutions API, mediapipe 0.10.21) on a sequence of RGB frames -> per-group landmark arrays.

One Holistic instance per sample: in tracking mode (``static_image_mode=False``) MediaPipe carries the
previous frame's landmarks forward as the next frame's region of interest, so one instance shared across
videos would leak a person's position from the end of one clip into the start of the next.
``model_complexity`` is fixed at 1: it is the only pose model bundled in the 0.10.21 wheel (0 and 2 are
downloaded on first use, which fails offline).

Per-frame cost beyond MediaPipe itself is one list comprehension per detected group written into a
preallocated (T, N, 3) NaN array; groups the layout does not use are not converted at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any

import numpy as np

# the attribute of Holistic's result that holds each group's landmark list
RESULT_ATTRS: dict[str, str] = {
    "pose": "pose_landmarks",
    "face": "face_landmarks",
    "left_hand": "left_hand_landmarks",
    "right_hand": "right_hand_landmarks",
}


@dataclass(frozen=True)
class HolisticConfig:
    """``preprocess.keypoints`` extractor settings (names as MediaPipe's own arguments)."""

    model_complexity: int = 1
    refine_face_landmarks: bool = True
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    static_image_mode: bool = False  # tracking across the frames of one sample, by design not configurable
    smooth_landmarks: bool = True  # MediaPipe's default, recorded so the metadata is complete

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> HolisticConfig:
        section = config.get("preprocess", {}).get("keypoints", {})
        keys = ("model_complexity", "refine_face_landmarks", "min_detection_confidence", "min_tracking_confidence")
        return cls(**{k: section[k] for k in keys if k in section})

    def settings(self) -> dict[str, Any]:
        """What goes into the Parquet metadata: every argument plus the library and API used."""
        try:
            version = metadata.version("mediapipe")
        except metadata.PackageNotFoundError:
            version = "unknown"
        return {"extractor": "mediapipe.solutions.holistic", "mediapipe": version, **asdict(self)}


def group_sizes(refine_face_landmarks: bool) -> dict[str, int]:
    return {"pose": 33, "face": 478 if refine_face_landmarks else 468, "left_hand": 21, "right_hand": 21}


def source_groups(layout_groups: Iterable[str]) -> tuple[str, ...]:
    """Holistic result groups needed for a layout (iris points live in the refined face list)."""
    wanted = {"face" if g == "iris" else g for g in layout_groups}
    return tuple(g for g in RESULT_ATTRS if g in wanted)


class HolisticExtractor:
    """Runs Holistic over one sample's frames at a time; reusable across samples (a fresh graph per sample)."""

    def __init__(self, cfg: HolisticConfig, groups: Iterable[str]) -> None:
        import mediapipe as mp  # heavy import, paid only by the keypoint stage

        self.cfg = cfg
        self.groups = source_groups(groups)
        self.sizes = group_sizes(cfg.refine_face_landmarks)
        self._holistic_cls = mp.solutions.holistic.Holistic

    def _new_graph(self):
        c = self.cfg
        return self._holistic_cls(
            static_image_mode=c.static_image_mode,
            model_complexity=c.model_complexity,
            smooth_landmarks=c.smooth_landmarks,
            refine_face_landmarks=c.refine_face_landmarks,
            min_detection_confidence=c.min_detection_confidence,
            min_tracking_confidence=c.min_tracking_confidence,
        )

    def extract(self, frames: Iterable[np.ndarray], n_hint: int = 0) -> tuple[dict[str, np.ndarray], int]:
        """Landmarks of every frame: ({group: (T, N_group, 3) float32, NaN where not detected}, T).

        ``frames`` are RGB uint8 (H, W, 3) arrays. ``n_hint`` sizes the buffers; they grow if it is short.
        """
        capacity = max(int(n_hint), 1)
        buffers = {g: np.full((capacity, self.sizes[g], 3), np.nan, dtype=np.float32) for g in self.groups}
        attrs = [(g, RESULT_ATTRS[g]) for g in self.groups]
        t = 0
        with self._new_graph() as graph:
            for frame in frames:
                if t == capacity:  # the hint was short (e.g. a container that under-reports): double
                    buffers = {g: np.concatenate([b, np.full_like(b, np.nan)]) for g, b in buffers.items()}
                    capacity *= 2
                result = graph.process(frame)
                for group, attr in attrs:
                    found = getattr(result, attr)
                    if found is not None:
                        buffers[group][t] = [(p.x, p.y, p.z) for p in found.landmark]
                t += 1
        return {g: b[:t] for g, b in buffers.items()}, t
