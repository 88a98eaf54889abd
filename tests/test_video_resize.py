"""Stage 1 (hatl resize): decoding, natural frame order, the clip-shard format, and every bad input."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from conftest import real_data_path
from hatl.cli import main
from hatl.errors import InputError
from hatl.video.resize import (
    ClipShard,
    ResizeConfig,
    check_clips_match,
    collect,
    iter_shard_samples,
    natural_key,
    open_sample,
    read_shard,
    resize_shard,
)
from helpers import write_generic_config, write_manifest


def write_config(path: Path, resize: dict | None = None) -> Path:
    return write_generic_config(path, resize=resize or {})


def run_resize(tmp_path: Path, manifest: Path, out: Path, shard: int = 0) -> int:
    return main(["resize", "--config", str(write_config(tmp_path / "config.yaml")), "--dataset", "vid",
                 "--manifest", str(manifest), "--shard", str(shard), "--out", str(out)])


def assert_no_output(out: Path) -> None:
    assert not out.exists()
    leftovers = [p.name for p in out.parent.iterdir()] if out.parent.exists() else []
    assert leftovers == [], f"temporary files left behind: {leftovers}"


def write_frames(folder: Path, names: list[str], size=(40, 30)) -> None:
    """Uniform frames whose red channel encodes the frame number (the number in the file name)."""
    folder.mkdir(parents=True)
    for name in names:
        number = int("".join(c for c in Path(name).stem if c.isdigit()))
        bgr = np.zeros((size[1], size[0], 3), np.uint8)
        bgr[..., 2] = number * 10  # red in BGR order
        bgr[..., 0] = 7  # blue: checks the BGR -> RGB conversion
        assert cv2.imwrite(str(folder / name), bgr)


def test_natural_key_orders_numbers_numerically():
    names = ["images10.png", "images2.png", "images1.png", "images100.png", "images09.png"]
    assert sorted(names, key=natural_key) == ["images1.png", "images2.png", "images09.png", "images10.png", "images100.png"]


@pytest.mark.real_data
def test_real_video_resized_to_52x65(tmp_path):
    video = real_data_path("sign_video", "test_video.mp4")
    manifest = write_manifest(tmp_path / "m.parquet", [{"sample_id": "clip", "source": str(video), "source_kind": "video",
                                                        "fps": 0.0, "n_frames": 58}])
    out = tmp_path / "clips" / "shard-0.npz"
    assert run_resize(tmp_path, manifest, out) == 0
    with ClipShard(out) as clips:
        frames = clips.frames("clip")
        entry = clips.samples[0]
        assert clips.meta["resize"] == {"width": 52, "height": 65, "interpolation": "area"}
        assert "provenance" in clips.meta and clips.meta["dataset"] == "vid"
    assert frames.shape == (58, 65, 52, 3) and frames.dtype == np.uint8
    assert entry["n_frames"] == 58 and (entry["source_width"], entry["source_height"]) == (540, 720)
    assert entry["fps"] == pytest.approx(359 / 12, rel=1e-3)
    # exactly cv2.resize(INTER_AREA) of the RGB-converted decoded frame
    cap = cv2.VideoCapture(str(video))
    for _ in range(30):
        ok, bgr = cap.read()
    cap.release()
    expected = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (52, 65), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(frames[29], expected)
    # the file is a plain .npz as well
    with np.load(out) as npz:
        np.testing.assert_array_equal(npz["s00000"], frames)


def test_frame_folder_natural_order_and_rgb(tmp_path):
    names = [f"images{i}.png" for i in (3, 1, 10, 2, 11)] + ["images4.jpg"]
    write_frames(tmp_path / "src" / "a", names)
    (tmp_path / "src" / "a" / "notes.txt").write_text("not a frame")
    write_frames(tmp_path / "src" / "b", ["f1.png", "f2.png"])
    manifest = write_manifest(tmp_path / "m.parquet", [
        {"sample_id": "a", "source": str(tmp_path / "src" / "a"), "source_kind": "frames", "fps": 25.0, "n_frames": 6},
        {"sample_id": "b", "source": str(tmp_path / "src" / "b"), "source_kind": "frames", "fps": 25.0, "n_frames": 2},
    ])
    out = tmp_path / "out" / "shard-0.npz"
    assert run_resize(tmp_path, manifest, out) == 0
    with ClipShard(out) as clips:
        assert clips.sample_ids == ["a", "b"]
        a = clips.frames("a")
        assert clips.samples[0]["fps"] == 25.0 and (clips.samples[0]["source_width"], clips.samples[0]["source_height"]) == (40, 30)
    assert a.shape == (6, 65, 52, 3)
    red = a[:, 30, 20, 0]
    np.testing.assert_array_equal(red[[0, 1, 2, 4, 5]], [10, 20, 30, 100, 110])  # 1,2,3,10,11 in numeric order
    assert abs(int(red[3]) - 40) <= 3  # frame 4 is a JPG (lossy)
    assert (a[:, :, :, 2] <= 10).all() and (a[:, :, :, 2] >= 4).all()  # blue stayed blue after BGR -> RGB


def test_relative_sources_resolve_under_manifest_root(tmp_path):
    write_frames(tmp_path / "root" / "frames" / "x", ["1.png", "2.png"])
    manifest = tmp_path / "m.parquet"
    df = pd.DataFrame([{"sample_id": "x", "split": "train", "fold": -1, "signer": "s", "gloss": "", "text": "",
                        "source": "frames/x", "source_kind": "frames", "fps": 25.0, "n_frames": 2, "shard": 3}])
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata({**table.schema.metadata, b"hatl": json.dumps({"root": str(tmp_path / "root")}).encode()})
    pq.write_table(table, manifest)
    shard = read_shard(manifest, 3)
    assert shard.kind == "frames" and shard.root == tmp_path / "root"
    report = resize_shard(shard, tmp_path / "c.npz", ResizeConfig(), {})
    assert (report.samples, report.frames, report.frame_count_mismatches) == (1, 2, [])


def test_clip_shard_and_on_the_fly_resize_agree_and_native_keeps_size(tmp_path):
    write_frames(tmp_path / "a", ["1.png", "2.png", "3.png"], size=(80, 60))
    manifest = write_manifest(tmp_path / "m.parquet", [{"sample_id": "a", "source": str(tmp_path / "a"),
                                                        "source_kind": "frames", "n_frames": 3}])
    shard = read_shard(manifest, 0)
    resize = ResizeConfig(width=20, height=24, interpolation="linear")
    resize_shard(shard, tmp_path / "c.npz", resize, {})
    stored = [(s.sample_id, np.asarray(s.frames), s.width) for s in iter_shard_samples(shard, tmp_path / "c.npz", resize)]
    fly = [(s.sample_id, collect(s), s.width) for s in iter_shard_samples(shard, None, resize)]
    native = [collect(s) for s in iter_shard_samples(shard, None, None)]
    assert stored[0][0] == fly[0][0] == "a" and stored[0][2] == fly[0][2] == 20
    np.testing.assert_array_equal(stored[0][1], fly[0][1])
    assert stored[0][1].shape == (3, 24, 20, 3) and native[0].shape == (3, 60, 80, 3)
    # a clip shard made with other settings, or for other samples, is refused
    with ClipShard(tmp_path / "c.npz") as clips, pytest.raises(InputError, match="resized with"):
        check_clips_match(clips, shard, ResizeConfig())
    other = read_shard(write_manifest(tmp_path / "m2.parquet", [{"sample_id": "zzz", "source": str(tmp_path / "a"),
                                                                 "source_kind": "frames"}]), 0)
    with ClipShard(tmp_path / "c.npz") as clips, pytest.raises(InputError, match="does not match the manifest shard"):
        check_clips_match(clips, other, resize)


def test_synthetic_video_decodes_with_container_fps(tmp_path):
    _tiny_video(tmp_path / "v.mp4", n=4)
    stream = open_sample(tmp_path / "v.mp4", "video", "v", fps=0.0, resize=ResizeConfig(width=16, height=12))
    assert (stream.fps, stream.source_width, stream.source_height, stream.n_hint) == (25.0, 64, 48, 4)
    frames = collect(stream)
    assert frames.shape == (4, 12, 16, 3)
    assert abs(int(frames[3].mean()) - 120) <= 3 and abs(int(frames[0].mean())) <= 3  # frame order kept


def test_open_sample_grows_past_a_short_hint(tmp_path):
    write_frames(tmp_path / "a", [f"{i}.png" for i in range(1, 6)])
    stream = open_sample(tmp_path / "a", "frames", "a", 25.0, ResizeConfig())
    stream.n_hint = 2
    assert collect(stream).shape == (5, 65, 52, 3)


# ------------------------------------------------------------------------------------------------ bad input
def _zero_frame_video(path: Path) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (52, 65))
    writer.release()
    assert path.exists()


def _tiny_video(path: Path, n: int = 3) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (64, 48))
    for i in range(n):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()


def _bad_cases(tmp_path: Path) -> dict[str, tuple[Path, str, str]]:
    """name -> (source, kind, expected problem); every source is referenced by sample id 'bad'."""
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    zero = tmp_path / "zero.mp4"
    _zero_frame_video(zero)
    empty_folder = tmp_path / "empty_folder"
    empty_folder.mkdir()
    bad_png_folder = tmp_path / "bad_png"
    write_frames(bad_png_folder, ["1.png"])
    (bad_png_folder / "2.png").write_bytes(b"not a png")
    return {
        "corrupt": (corrupt, "video", "cannot open video"),
        "zero": (zero, "video", "cannot open video|zero"),
        "missing_video": (tmp_path / "nope.mp4", "video", "does not exist"),
        "missing_folder": (tmp_path / "no_such_folder", "frames", "frame folder does not exist"),
        "empty_folder": (empty_folder, "frames", "zero frames"),
        "bad_png": (bad_png_folder / "2.png", "frames", "unreadable or corrupt image"),
    }


@pytest.mark.parametrize("case", ["corrupt", "zero", "missing_video", "missing_folder", "empty_folder", "bad_png"])
def test_bad_input_names_file_and_sample_and_writes_nothing(tmp_path, case):
    source, kind, problem = _bad_cases(tmp_path)[case]
    folder = source.parent if case == "bad_png" else source
    good = tmp_path / "good.mp4" if kind == "video" else tmp_path / "good"
    _tiny_video(good) if kind == "video" else write_frames(good, ["1.png"])
    manifest = write_manifest(tmp_path / "m.parquet", [
        {"sample_id": "good", "source": str(good), "source_kind": kind},
        {"sample_id": "bad", "source": str(folder), "source_kind": kind},
    ])
    out = tmp_path / "results" / "clips" / "shard-0.npz"
    with pytest.raises(InputError, match=problem) as err:
        resize_shard(read_shard(manifest, 0), out, ResizeConfig(), {})
    assert err.value.path == str(source) and err.value.record == "bad"
    assert str(source) in str(err.value) and "[bad]" in str(err.value)
    assert_no_output(out)
    assert run_resize(tmp_path, manifest, out) == 2
    assert_no_output(out)


@pytest.mark.real_data
def test_truncated_real_video_is_corrupt(tmp_path):
    data = real_data_path("sign_video", "test_video.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # moov atom is at the start: opens, then stops early
    manifest = write_manifest(tmp_path / "m.parquet", [{"sample_id": "cut", "source": str(cut), "source_kind": "video"}])
    out = tmp_path / "o" / "shard-0.npz"
    with pytest.raises(InputError, match=r"decoding stopped after \d+ of 58 frames") as err:
        resize_shard(read_shard(manifest, 0), out, ResizeConfig(), {})
    assert err.value.record == "cut"
    assert run_resize(tmp_path, manifest, out) == 2
    assert_no_output(out)


def test_bad_shards_are_refused(tmp_path):
    manifest = write_manifest(tmp_path / "m.parquet", [
        {"sample_id": "n", "source": str(tmp_path), "source_kind": "npy", "shard": 0},
        {"sample_id": "v", "source": str(tmp_path / "v.mp4"), "source_kind": "video", "shard": 1},
        {"sample_id": "f", "source": str(tmp_path), "source_kind": "frames", "shard": 1},
    ])
    out = tmp_path / "o" / "shard.npz"
    with pytest.raises(InputError, match="no frames to decode"):
        resize_shard(read_shard(manifest, 0), out, ResizeConfig(), {})
    with pytest.raises(InputError, match="mixes source kinds"):
        read_shard(manifest, 1)
    with pytest.raises(InputError, match=r"no samples in this shard \(shards present: \[0, 1\]\)"):
        read_shard(manifest, 7)
    for shard in (0, 1, 7):
        assert run_resize(tmp_path, manifest, out, shard) == 2
    assert_no_output(out)
    bad_manifest = tmp_path / "bad.parquet"
    pd.DataFrame({"sample_id": ["x"]}).to_parquet(bad_manifest)
    with pytest.raises(InputError, match="lacks column|missing column"):
        read_shard(bad_manifest, 0)
    not_a_shard = tmp_path / "junk.npz"
    not_a_shard.write_bytes(b"junk")
    with pytest.raises(InputError, match="not a readable clip shard"):
        ClipShard(not_a_shard)
    assert not os.path.exists(tmp_path / "o") or list((tmp_path / "o").iterdir()) == []


def test_zero_byte_video_is_called_empty(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.mp4 \[e\]: video file is empty \(0 bytes\)"):
        open_sample(empty, "video", "e")
    manifest = write_manifest(tmp_path / "m.parquet", [{"sample_id": "e", "source": str(empty), "source_kind": "video"}])
    out = tmp_path / "o" / "shard-0.npz"
    assert run_resize(tmp_path, manifest, out) == 2
    assert_no_output(out)


def test_every_bad_source_of_a_shard_is_named_before_decoding(tmp_path):
    good = tmp_path / "good.mp4"
    _tiny_video(good)
    (tmp_path / "empty.mp4").write_bytes(b"")
    manifest = write_manifest(tmp_path / "m.parquet", [
        {"sample_id": "good", "source": str(good), "source_kind": "video"},
        {"sample_id": "e", "source": str(tmp_path / "empty.mp4"), "source_kind": "video"},
        {"sample_id": "m", "source": str(tmp_path / "missing.mp4"), "source_kind": "video"},
    ])
    out = tmp_path / "o" / "shard-0.npz"
    with pytest.raises(InputError) as err:
        resize_shard(read_shard(manifest, 0), out, ResizeConfig(), {})
    assert (err.value.path, err.value.record) == (str(tmp_path / "empty.mp4"), "e")
    assert f"- {tmp_path / 'missing.mp4'} [m]: video file does not exist" in str(err.value)
    assert_no_output(out)
