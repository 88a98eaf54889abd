"""The embedded synthetic demo datasets (stand-ins for PHOENIX14T, Isharah and MedASL).

``hatl demo-data`` (:mod:`hatl.demo.cli`) writes a demo folder with :func:`hatl.demo.generator.write_demo`;
the demo adapter (:mod:`hatl.datasets.demo`) lists its samples for the manifest, and the keypoint stage
fetches keypoint samples by id with :func:`read_demo_samples`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pyarrow.parquet as pq

from hatl.errors import InputError
from hatl.keypoint_store import KeypointRecord, read_layout, record_from_row

__all__ = ["read_demo_samples"]


def read_demo_samples(path: str | Path, ids: Iterable[str], splits: Mapping[str, str] | None = None
                      ) -> list[KeypointRecord]:
    """The records of ``ids`` from a demo ``keypoints.parquet``, in the order asked, in the file's layout.

    Only the requested rows are read (a Parquet filter on ``sample_id``). ``splits`` (id -> split) replaces
    the stored split, e.g. with the manifest's cross-validation split. An id not in the file is an
    :class:`InputError` naming the first missing one and how many are missing.
    """
    path = Path(path)
    wanted = [str(i) for i in ids]
    if not wanted:
        return []
    if not path.is_file():
        raise InputError(path, None, "demo keypoint file does not exist (run `hatl demo-data` first)")
    layout = read_layout(path)
    table = pq.read_table(path, filters=[("sample_id", "in", sorted(set(wanted)))],
                          columns=["sample_id", "split", "n_frames", "fps", "width", "height", "landmarks", "mask"])
    found: dict[str, KeypointRecord] = {}
    cols = {name: table.column(name) for name in table.column_names}
    for i in range(table.num_rows):
        record = record_from_row(path, layout, cols, i)
        if splits is not None:
            record.split = splits.get(record.sample_id, record.split)
        found[record.sample_id] = record
    missing = [s for s in wanted if s not in found]
    if missing:
        raise InputError(path, missing[0], f"{len(missing)} requested sample(s) are not in the demo keypoint file")
    return [found[s] for s in wanted]
