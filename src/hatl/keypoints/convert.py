"""Keypoints that need no MediaPipe run: MedASL-style per-frame ``.npy`` folders, other trackers' skeleton
files (isl_kinect, boston104: kept in their own skeleton layout) and the demo keypoint file.

``.npy`` folders (MedASL): one file per frame named by its index (``0.npy``, ``1.npy``, ... ``10.npy``),
each a (1662,) vector (pose 33x4 | face 468x3 | left hand 21x3 | right hand 21x3, zeros when not
detected). Files are read in numeric order; ``hatl.landmarks.groups_from_flat1662`` splits them into
groups. The face list has 468 points, so the iris group (refined points 468-477) is never detected there.

Width/height of ``.npy`` records: the landmarks are normalised to the recording's frame, which the files
do not store. For the ``medasl`` adapter the recording resolution is documented (Intel RealSense, 1280x800,
see data-facts), so it is written; for any other adapter 0x0 ("unknown", the keypoint-store convention)
is written rather than a guess.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from hatl.datasets.base import npy_frame_files
from hatl.demo import read_demo_samples
from hatl.errors import InputError
from hatl.keypoint_store import KeypointRecord, read_layout
from hatl.landmarks import FLAT1662_SIZE, Layout, build_layout, groups_from_flat1662, select_from_groups

# adapter -> (width, height) of the recordings behind its .npy landmarks, where the dataset documents it
NPY_RESOLUTION: dict[str, tuple[int, int]] = {"medasl": (1280, 800)}


def list_npy_frames(folder: Path, sample_id: str) -> list[Path]:
    """The per-frame ``<i>.npy`` files of a folder in numeric order (0, 1, ..., 10, ...).

    Ordering and the checks (names must be ``<integer>.npy``, numbered 0..N-1 without gaps) are the
    manifest stage's own (:func:`hatl.datasets.base.npy_frame_files`), so both stages agree on frame order.
    """
    if not folder.is_dir():
        raise InputError(folder, sample_id, "npy folder does not exist" if not folder.exists() else "not a folder")
    files = npy_frame_files(folder, sample_id)
    if not files:
        raise InputError(folder, sample_id, "npy folder holds no .npy frames (zero frames)")
    return files


def read_npy_frame(path: Path, sample_id: str) -> np.ndarray:
    """One frame as a (1662,) float64 vector; anything else is an InputError naming file and sample."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise InputError(path, sample_id, f"unreadable .npy frame: {err}") from err
    if arr.shape != (FLAT1662_SIZE,):
        raise InputError(path, sample_id, f"frame has shape {arr.shape} ({arr.size} values), expected {FLAT1662_SIZE} values")
    if not np.issubdtype(arr.dtype, np.number):
        raise InputError(path, sample_id, f"frame dtype {arr.dtype} is not numeric")
    return arr.astype(np.float64, copy=False)


def read_npy_sequence(folder: Path, sample_id: str) -> np.ndarray:
    """All frames of a sample as (T, 1662) float64, in numeric file order."""
    files = list_npy_frames(folder, sample_id)
    out = np.empty((len(files), FLAT1662_SIZE), dtype=np.float64)
    for t, path in enumerate(files):
        out[t] = read_npy_frame(path, sample_id)
    return out


def npy_record(folder: Path, sample_id: str, split: str, fps: float, layout: Layout, adapter: str) -> KeypointRecord:
    frames = read_npy_sequence(folder, sample_id)
    coords, mask = select_from_groups(layout, groups_from_flat1662(frames), len(frames))
    width, height = NPY_RESOLUTION.get(adapter, (0, 0))
    return KeypointRecord(sample_id, split, coords, mask, fps, width, height)


# -------------------------------------------------------------------------------------------- skeleton
def skeleton_layout(adapter: str) -> Layout:
    """The layout a skeleton adapter's files are in (its ``SKELETON`` group of :data:`hatl.landmarks.SKELETONS`)."""
    from hatl.datasets import get_adapter

    module = get_adapter(adapter)
    group = getattr(module, "SKELETON", None)
    if group is None or not callable(getattr(module, "read_skeleton", None)):
        raise InputError(None, f"adapter {adapter}", "manifest rows of kind 'skeleton' need an adapter with SKELETON "
                         "and read_skeleton (isl_kinect, boston104)")
    return build_layout((group,))


def skeleton_record(source: Path, sample_id: str, split: str, fps: float, adapter: str) -> KeypointRecord:
    """One sample of another tracker's skeleton file, in the adapter's own skeleton layout.

    The detection mask is True in frames where the tracker reported any non-zero joint (the releases store
    every joint in every frame, so frames are only undetected when all zeros).
    """
    from hatl.datasets import get_adapter

    coords = get_adapter(adapter).read_skeleton(Path(source), sample_id).astype(np.float32, copy=False)
    if len(coords) == 0:
        raise InputError(source, sample_id, "skeleton file holds no frames")
    mask = np.abs(coords).sum(axis=(1, 2))[:, None] > 0
    return KeypointRecord(sample_id, split, coords, mask, fps)


# ------------------------------------------------------------------------------------------------ demo
def remap_record(rec: KeypointRecord, src: Layout, dst: Layout, path: Path) -> KeypointRecord:
    """Re-express a record in another layout; every joint of ``dst`` must exist in ``src``."""
    if src == dst:
        return rec
    src_pos = {(j.group, j.source_index): v for v, j in enumerate(src.joints)}
    missing = [f"{j.group}[{j.source_index}]" for j in dst.joints if (j.group, j.source_index) not in src_pos]
    if missing:
        raise InputError(path, rec.sample_id, f"keypoint file lacks {len(missing)} joint(s) of the configured layout, e.g. {missing[:3]}")
    joint_idx = np.array([src_pos[(j.group, j.source_index)] for j in dst.joints])
    group_idx = np.array([src.groups.index(g) for g in dst.groups])
    return KeypointRecord(rec.sample_id, rec.split, rec.landmarks[:, joint_idx], rec.mask[:, group_idx],
                          rec.fps, rec.width, rec.height, dict(rec.extra))


def read_demo_records(path: Path, sample_ids: Iterable[str], layout: Layout) -> list[KeypointRecord]:
    """The demo file's records for ``sample_ids`` (in that order), in the configured layout."""
    ids = [str(s) for s in sample_ids]
    if not path.is_file():
        raise InputError(path, None, "demo keypoint file does not exist")
    records = read_demo_samples(path, ids)  # raises InputError naming the first id the file lacks
    by_id = {r.sample_id: r for r in records}
    src = read_layout(path)
    return [remap_record(by_id[s], src, layout, path) for s in ids]
