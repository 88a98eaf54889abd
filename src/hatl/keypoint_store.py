"""The keypoint Parquet contract: one row per sample, written by the keypoint stage and read by all later ones.

Columns
    sample_id  string   unique within a dataset
    split      string   train / dev / test (MedASL: trainval / test)
    n_frames   int32    T
    fps        float32
    width      int32    width of the frames the landmarks were computed on (0 when unknown)
    height     int32    height of the same frames (0 when unknown)
    landmarks  list<float32>  T*V*3 values, row-major (T, V, C=x,y,z); V is the layout's joint count
    mask       list<bool>     T*G values, row-major (T, G): group g detected in frame t
    (extra columns, e.g. gloss/text/signer in normalised files, are allowed and kept)

File metadata key ``hatl`` (JSON): ``layout`` (groups, face subset, joint list), ``channels``, ``stage``
(keypoints / normalised) and stage-specific facts (extractor settings, input resolution, normalisation).

Variable-length lists rather than Arrow's fixed-shape tensor type because T differs per sample; the
shape is recovered from n_frames and the layout.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hatl.errors import InputError
from hatl.io import atomic_path
from hatl.landmarks import CHANNELS, Layout, layout_from_dict

META_KEY = b"hatl"
ROW_GROUP_SIZE = 32

BASE_FIELDS = [
    pa.field("sample_id", pa.string(), nullable=False),
    pa.field("split", pa.string(), nullable=False),
    pa.field("n_frames", pa.int32(), nullable=False),
    pa.field("fps", pa.float32(), nullable=False),
    pa.field("width", pa.int32(), nullable=False),
    pa.field("height", pa.int32(), nullable=False),
    pa.field("landmarks", pa.list_(pa.float32()), nullable=False),
    pa.field("mask", pa.list_(pa.bool_()), nullable=False),
]
BASE_NAMES = [f.name for f in BASE_FIELDS]


@dataclass
class KeypointRecord:
    sample_id: str
    split: str
    landmarks: np.ndarray  # (T, V, 3) float32
    mask: np.ndarray  # (T, G) bool
    fps: float
    width: int = 0
    height: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return int(self.landmarks.shape[0])


def _check_record(rec: KeypointRecord, layout: Layout) -> None:
    t = rec.landmarks.shape[0]
    if rec.landmarks.shape != (t, layout.num_joints, len(CHANNELS)):
        raise ValueError(
            f"sample {rec.sample_id}: landmarks shape {rec.landmarks.shape} != (T, {layout.num_joints}, {len(CHANNELS)})"
        )
    if rec.mask.shape != (t, len(layout.groups)):
        raise ValueError(f"sample {rec.sample_id}: mask shape {rec.mask.shape} != ({t}, {len(layout.groups)})")


def schema(layout: Layout, meta: dict[str, Any], extra_fields: Iterable[pa.Field] = ()) -> pa.Schema:
    full_meta = {"layout": layout.to_dict(), "channels": list(CHANNELS), **meta}
    return pa.schema([*BASE_FIELDS, *extra_fields], metadata={META_KEY: json.dumps(full_meta).encode()})


def records_to_table(records: list[KeypointRecord], layout: Layout, meta: dict[str, Any]) -> pa.Table:
    extra_names = sorted({k for r in records for k in r.extra})
    for rec in records:
        _check_record(rec, layout)
    columns: dict[str, list[Any]] = {
        "sample_id": [r.sample_id for r in records],
        "split": [r.split for r in records],
        "n_frames": [r.n_frames for r in records],
        "fps": [float(r.fps) for r in records],
        "width": [int(r.width) for r in records],
        "height": [int(r.height) for r in records],
        "landmarks": [np.ascontiguousarray(r.landmarks, dtype=np.float32).ravel() for r in records],
        "mask": [np.ascontiguousarray(r.mask, dtype=bool).ravel() for r in records],
    }
    extra_fields = []
    for name in extra_names:
        values = [r.extra.get(name) for r in records]
        columns[name] = values
        extra_fields.append(pa.field(name, pa.array(values).type))
    sch = schema(layout, meta, extra_fields)
    arrays = [pa.array(columns[f.name], type=f.type) for f in sch]
    return pa.Table.from_arrays(arrays, schema=sch)


def write_keypoints(path: str | Path, records: list[KeypointRecord], layout: Layout, meta: dict[str, Any]) -> None:
    """Write records atomically (temporary name, then rename)."""
    table = records_to_table(records, layout, meta)
    with atomic_path(path) as tmp:
        # Small row groups keep readers' memory bounded by ROW_GROUP_SIZE samples, not by the shard.
        pq.write_table(table, tmp, compression="zstd", row_group_size=ROW_GROUP_SIZE)


def read_meta(path: str | Path) -> dict[str, Any]:
    md = pq.read_schema(path).metadata or {}
    if META_KEY not in md:
        raise InputError(path, None, "not a hatl keypoint file (no 'hatl' schema metadata)")
    return json.loads(md[META_KEY])


def read_layout(path: str | Path) -> Layout:
    return layout_from_dict(read_meta(path)["layout"])


def record_from_row(
    path: str | Path, layout: Layout, cols: dict[str, Any], i: int, extra: Iterable[str] = ()
) -> KeypointRecord:
    """Row ``i`` of Arrow columns in this schema as a record, its sizes checked against the layout."""
    v, g, c = layout.num_joints, len(layout.groups), len(CHANNELS)
    sid = cols["sample_id"][i].as_py()
    t = cols["n_frames"][i].as_py()
    lm = cols["landmarks"][i].values.to_numpy(zero_copy_only=False)
    mk = cols["mask"][i].values.to_numpy(zero_copy_only=False)
    if lm.size != t * v * c or mk.size != t * g:
        raise InputError(path, sid, f"landmark/mask sizes {lm.size}/{mk.size} do not match T={t}, V={v}, G={g}")
    return KeypointRecord(
        sample_id=sid,
        split=cols["split"][i].as_py(),
        landmarks=lm.reshape(t, v, c).astype(np.float32, copy=False),
        mask=mk.reshape(t, g).astype(bool, copy=False),
        fps=float(cols["fps"][i].as_py()),
        width=int(cols["width"][i].as_py()),
        height=int(cols["height"][i].as_py()),
        extra={name: cols[name][i].as_py() for name in extra},
    )


def iter_keypoints(path: str | Path, columns_extra: Iterable[str] | None = None) -> Iterator[KeypointRecord]:
    """Yield records one row group at a time (bounded memory on large shards)."""
    layout = read_layout(path)
    pf = pq.ParquetFile(path)
    extra = [n for n in pf.schema_arrow.names if n not in BASE_NAMES]
    if columns_extra is not None:
        extra = [n for n in extra if n in set(columns_extra)]
    for batch in pf.iter_batches(batch_size=ROW_GROUP_SIZE):
        cols = {name: batch.column(name) for name in batch.schema.names}
        for i in range(batch.num_rows):
            yield record_from_row(path, layout, cols, i, extra)


def read_keypoints(path: str | Path) -> list[KeypointRecord]:
    return list(iter_keypoints(path))
