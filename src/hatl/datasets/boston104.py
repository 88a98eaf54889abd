"""RWTH-BOSTON-104 adapter: continuous ASL sentences as hand and nose tracks with gloss segments.

Release layout (udacity/AIND-Recognizer ``data/``, derived from RWTH-BOSTON-104; ``annotations`` overrides the
folder the csv files are read from, default the root):

* ``hands_condensed.csv``: ``video,frame,left-x,left-y,right-x,right-y,nose-x,nose-y`` (pixels), one row per
  frame; frames of a video must be numbered 0..T-1 without gaps;
* ``train_words.csv`` / ``test_words.csv``: ``video,speaker,word,startframe,endframe`` (inclusive frames), one
  row per gloss, the database's own sentence split;
* ``speaker.csv``: ``video,speaker``.

One sample per video (sentence): ``gloss`` = its words ordered by start frame, ``signer`` from ``speaker.csv``
(the words files repeat it; a disagreement is fatal), ``split`` train or test as released; the release has no
dev split, so every :data:`DEV_EVERY`-th training video (in video-number order) is held out as ``dev`` for model
selection (test stays exactly the database's test set),
``text`` empty (glosses only: no translation task can run on it). Sample id: the video number, 3 digits.
The keypoint stage reads the tracks into the ``boston3`` skeleton (left hand, right hand, nose; z = 0); left
and right are the signer's (the left track lies right of the nose in the image, and the right hand, the
dominant one, moves most).

Fatal: wrong headers or field counts, non-integer fields, a video in both splits, a segment that ends before
it starts or past the video's last tracked frame, a video without a speaker. Counted skips: blank lines,
tracked videos that neither words file annotates. Annotated videos without tracks follow ``missing_sources``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from hatl.datasets import base
from hatl.errors import InputError

SKELETON = "boston3"
TRACKS = "hands_condensed.csv"
TRACK_HEADER = ("video", "frame", "left-x", "left-y", "right-x", "right-y", "nose-x", "nose-y")
WORDS = {"train": "train_words.csv", "test": "test_words.csv"}
WORD_HEADER = ("video", "speaker", "word", "startframe", "endframe")
SPEAKERS = "speaker.csv"
SPEAKER_HEADER = ("video", "speaker")
# The release has no dev split; this share of the training videos (every 10th by number, deterministic) becomes dev.
DEV_EVERY = 10
# The tracks do not store the frame rate; RWTH-BOSTON videos are recorded at 30 frames/s (`fps` overrides).
DEFAULT_FPS = 30.0


def sample_id_of(video: int) -> str:
    return f"{video:03d}"


def _int(path: Path, line: base.Line, column: str, header: tuple[str, ...]) -> int:
    value = line.fields[header.index(column)]
    try:
        return int(value)
    except ValueError as err:
        raise InputError(path, f"line {line.number}", f"{column} {value!r} is not an integer") from err


def read_tracks(path: Path) -> dict[int, np.ndarray]:
    """video -> (T, 3, 3) float32 (left hand, right hand, nose; x, y, 0) from ``hands_condensed.csv``.

    Cached per (path, modification time, size): the keypoint stage reads one video at a time.
    """
    stat = path.stat()
    return _read_tracks(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=2)
def _read_tracks(path: Path, mtime_ns: int, size: int) -> dict[int, np.ndarray]:
    _, lines = base.read_delimited(path, ",", [TRACK_HEADER], [])
    frames: dict[int, list[tuple[int, list[float]]]] = {}
    for line in lines:
        video = _int(path, line, "video", TRACK_HEADER)
        frame = _int(path, line, "frame", TRACK_HEADER)
        try:
            coords = [float(v) for v in line.fields[2:]]
        except ValueError as err:
            raise InputError(path, f"line {line.number} (video {video})", f"coordinate is not a number: {err}") from err
        frames.setdefault(video, []).append((frame, coords))
    out: dict[int, np.ndarray] = {}
    for video, items in frames.items():
        items.sort(key=lambda item: item[0])
        numbers = [f for f, _ in items]
        if numbers != list(range(len(numbers))):
            first = next(i for i, f in enumerate(numbers) if f != i)
            raise InputError(path, f"video {video}", f"frames are not numbered 0..{len(numbers) - 1} without gaps or "
                             f"repeats: sorted position {first} holds frame {numbers[first]}")
        xy = np.asarray([c for _, c in items], dtype=np.float32).reshape(len(items), 3, 2)
        out[video] = np.concatenate([xy, np.zeros((len(items), 3, 1), np.float32)], axis=2)
    return out


def read_skeleton(path: Path, sample_id: str) -> np.ndarray:
    """(T, 3, 3) tracks of one video (the keypoint stage's reader; ``path`` is ``hands_condensed.csv``)."""
    tracks = read_tracks(Path(path))
    video = int(sample_id)
    if video not in tracks:
        raise InputError(path, sample_id, "no tracked frames for this video")
    return tracks[video]


def read_speakers(path: Path, skipped: list[dict[str, str]]) -> dict[int, str]:
    _, lines = base.read_delimited(path, ",", [SPEAKER_HEADER], skipped)
    out: dict[int, str] = {}
    for line in lines:
        video = _int(path, line, "video", SPEAKER_HEADER)
        if video in out:
            raise InputError(path, f"line {line.number}", f"video {video} listed twice")
        out[video] = line.fields[1]
    return out


def read_words(path: Path, split: str, skipped: list[dict[str, str]]) -> dict[int, list[tuple[int, int, str, str, int]]]:
    """video -> [(start, end, word, speaker, line number)] of one words file."""
    _, lines = base.read_delimited(path, ",", [WORD_HEADER], skipped)
    out: dict[int, list[tuple[int, int, str, str, int]]] = {}
    for line in lines:
        video = _int(path, line, "video", WORD_HEADER)
        start = _int(path, line, "startframe", WORD_HEADER)
        end = _int(path, line, "endframe", WORD_HEADER)
        speaker, word = line.fields[1], line.fields[2]
        if not word:
            raise InputError(path, f"line {line.number} (video {video})", "empty word")
        if end < start or start < 0:
            raise InputError(path, f"line {line.number} (video {video})", f"segment {start}-{end} is empty or negative")
        out.setdefault(video, []).append((start, end, word, speaker, line.number))
    return out


def build_rows(dataset: str, ds_cfg: dict[str, Any], config: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    base.reject_cross_validation(dataset, ds_cfg)
    base.reject_translation_tasks(dataset, ds_cfg, "boston104 has glosses but no spoken-language text")
    root = base.require_root(dataset, ds_cfg)
    folder = base.resolve_under(root, ds_cfg.get("annotations"), ".")
    policy = ds_cfg.get("missing_sources", "error")
    fps = float(ds_cfg.get("fps") or DEFAULT_FPS)
    skipped: list[dict[str, str]] = []
    tracks_path = folder / TRACKS
    if not tracks_path.is_file():
        raise InputError(tracks_path, f"dataset {dataset}", "track file does not exist")
    tracks = read_tracks(tracks_path)
    speakers = read_speakers(folder / SPEAKERS, skipped)
    words = {split: read_words(folder / name, split, skipped) for split, name in WORDS.items()}
    both = sorted(set(words["train"]) & set(words["test"]))
    if both:
        raise InputError(folder / WORDS["test"], f"video {both[0]}", f"{len(both)} video(s) are in both train and test")
    rows = []
    dev_videos = set(sorted(words["train"])[DEV_EVERY - 1::DEV_EVERY])
    for split, by_video in words.items():
        path = folder / WORDS[split]
        for video in sorted(by_video):
            segments = sorted(by_video[video])
            sid = sample_id_of(video)
            record = f"{path.name} video {video} (line {segments[0][4]})"
            if video not in speakers:
                raise InputError(folder / SPEAKERS, record, f"video {video} has no speaker")
            other = [s for s in segments if s[3] != speakers[video]]
            if other:
                raise InputError(path, f"line {other[0][4]} (video {video})",
                                 f"speaker {other[0][3]!r} disagrees with speaker.csv ({speakers[video]!r})")
            if video not in tracks:
                base.missing_source(policy, tracks_path, record, "video without tracks", skipped)
                continue
            n_frames = len(tracks[video])
            late = [s for s in segments if s[1] >= n_frames]
            if late:
                raise InputError(path, f"line {late[0][4]} (video {video})",
                                 f"segment ends at frame {late[0][1]}, past the last tracked frame {n_frames - 1}")
            gloss = " ".join(s[2] for s in segments)
            row_split = "dev" if split == "train" and video in dev_videos else split
            rows.append(base.make_row(sid, row_split, speakers[video], gloss, "", str(tracks_path), "skeleton", fps,
                                      n_frames))
    annotated = set(words["train"]) | set(words["test"])
    for video in sorted(set(tracks) - annotated):
        skipped.append(base.skip(f"{TRACKS} video {video}", "tracks without gloss annotation", f"{len(tracks[video])} frames"))
    return rows, skipped
