"""The manifest stage: one dataset's adapter rows -> ``results/{ds}/manifest.parquet`` (+ ``splits.tsv``).

The manifest is the single list of samples every later stage works from (docs/architecture.md). This module
validates what the adapter returned (columns, types, split names, unique ids), sorts the rows by
(source_kind, split, sample_id) and cuts them into shards that never mix source kinds and hold at most
``preprocess.shard_size`` samples (``auto``: chosen from the dataset size, :func:`resolve_shard_size`), so shard
numbers only change when the data does. The Parquet file carries
schema metadata ``hatl`` (JSON): dataset, adapter, root, annotation_only, skipped items, counts, provenance.

Readers for later stages: :func:`read_manifest`, :func:`manifest_meta`, :func:`shards`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hatl.config import dataset_config, effective_config
from hatl.datasets import get_adapter
from hatl.datasets.base import CV_SPLITS, MANIFEST_COLUMNS, PREDEFINED_SPLITS, ROW_COLUMNS, SOURCE_KINDS, skip_category
from hatl.errors import InputError
from hatl.io import atomic_path
from hatl.provenance import provenance

log = logging.getLogger("hatl.manifest")

META_KEY = b"hatl"

SCHEMA_FIELDS = [
    pa.field("sample_id", pa.string(), nullable=False),
    pa.field("split", pa.string(), nullable=False),
    pa.field("fold", pa.int32(), nullable=False),
    pa.field("signer", pa.string(), nullable=False),
    pa.field("gloss", pa.string(), nullable=False),
    pa.field("text", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("source_kind", pa.string(), nullable=False),
    pa.field("fps", pa.float64(), nullable=False),
    pa.field("n_frames", pa.int32(), nullable=False),
    pa.field("shard", pa.int32(), nullable=False),
]
assert tuple(f.name for f in SCHEMA_FIELDS) == MANIFEST_COLUMNS

_TYPES: dict[str, type | tuple[type, ...]] = {
    "sample_id": str, "split": str, "fold": int, "signer": str, "gloss": str, "text": str, "source": str,
    "source_kind": str, "fps": (int, float), "n_frames": int,
}


@dataclass
class Manifest:
    """A built manifest: the rows (with shards) and the metadata stored beside them."""

    dataset: str
    frame: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------- building


def check_rows(rows: list[dict[str, Any]], where: Path | str | None, adapter: str) -> None:
    """Validate adapter output against the manifest contract.

    A wrong key or type is a bug in the adapter (TypeError/ValueError); a duplicate id is bad input.
    """
    seen: dict[str, int] = {}
    for i, row in enumerate(rows):
        keys = set(row)
        if keys != set(ROW_COLUMNS):
            missing, extra = set(ROW_COLUMNS) - keys, keys - set(ROW_COLUMNS)
            raise ValueError(f"adapter {adapter}: row {i} has missing keys {sorted(missing)} / unexpected keys {sorted(extra)}")
        for key, typ in _TYPES.items():
            if not isinstance(row[key], typ) or isinstance(row[key], bool):
                raise TypeError(f"adapter {adapter}: row {i} ({row['sample_id']!r}) key {key!r} is {type(row[key]).__name__}")
        if row["source_kind"] not in SOURCE_KINDS:
            raise ValueError(f"adapter {adapter}: row {i} has source_kind {row['source_kind']!r}")
        if row["n_frames"] < 0 or row["fps"] < 0:
            raise ValueError(f"adapter {adapter}: row {i} has negative n_frames or fps")
        sid = row["sample_id"]
        if sid in seen:
            raise InputError(where, f"sample {sid}", f"duplicate sample id (adapter rows {seen[sid]} and {i})")
        seen[sid] = i
    splits = {r["split"] for r in rows}
    if not (splits <= set(PREDEFINED_SPLITS) or splits <= set(CV_SPLITS)):
        raise ValueError(f"adapter {adapter}: splits {sorted(splits)} mix or leave the known sets "
                         f"{PREDEFINED_SPLITS} / {CV_SPLITS}")
    for i, row in enumerate(rows):
        cv_fold = row["split"] == "trainval"
        if (row["fold"] < 0) == cv_fold:
            raise ValueError(f"adapter {adapter}: row {i} ({row['sample_id']!r}) split {row['split']} with fold {row['fold']}")


def resolve_shard_size(preprocess: dict[str, Any], n_samples: int) -> int:
    """Samples per shard (one keypoint job each) for a dataset of ``n_samples``.

    An explicit ``preprocess.shard_size`` is used as given. ``auto`` aims at ``preprocess.target_shards``
    shards whatever the dataset's size, so the job count (and with it Snakemake's planning time and the
    number of cluster submissions) stays bounded as data grows: 610,000 clips at a fixed 64 per shard were
    9,532 shards and a five-minute dry run. ``preprocess.min_shard_size`` keeps small datasets from being
    cut into jobs so short that start-up (imports, the MediaPipe graph, scheduling) outweighs the work.
    """
    size = preprocess["shard_size"]
    if size != "auto":
        return int(size)
    return max(int(preprocess["min_shard_size"]), math.ceil(n_samples / int(preprocess["target_shards"])))


def assign_shards(frame: pd.DataFrame, shard_size: int) -> pd.DataFrame:
    """Sort by (source_kind, split, sample_id) and number shards: consecutive chunks of one kind, at most
    ``shard_size`` long. Returns a new frame with the ``shard`` column and a fresh index."""
    out = frame.sort_values(["source_kind", "split", "sample_id"], kind="stable").reset_index(drop=True)
    shard_ids: list[int] = []
    next_shard = 0
    for _, group in out.groupby("source_kind", sort=True):
        n = len(group)
        shard_ids.extend(next_shard + i // shard_size for i in range(n))
        next_shard += (n + shard_size - 1) // shard_size
    # groupby(sort=True) visits kinds in the same order as the sort above, so ids line up with rows
    out["shard"] = shard_ids
    return out[list(MANIFEST_COLUMNS)]


def summarise_skipped(skipped: list[dict[str, str]]) -> dict[str, int]:
    """Skip counts per reason category (the reason text before ': ')."""
    return dict(Counter(skip_category(s["reason"]) for s in skipped).most_common())


def build_manifest(config: dict[str, Any], dataset: str) -> Manifest:
    """Run the dataset's adapter and assemble the manifest (nothing is written)."""
    eff = effective_config(config, dataset)
    ds_cfg = dataset_config(eff, dataset)
    adapter = ds_cfg["adapter"]
    rows, skipped = get_adapter(adapter).build_rows(dataset, ds_cfg, eff)
    root = os.path.abspath(os.path.expanduser(ds_cfg["root"])) if ds_cfg.get("root") else None
    check_rows(rows, root, adapter)
    if not rows:
        reasons = ", ".join(f"{k} x{v}" for k, v in summarise_skipped(skipped).items()) or "the annotations hold none"
        raise InputError(root, f"dataset {dataset}", f"no samples left for the manifest ({len(skipped)} skipped: {reasons})")
    shard_size = resolve_shard_size(eff["preprocess"], len(rows))
    frame = assign_shards(pd.DataFrame(rows, columns=list(ROW_COLUMNS)), shard_size)
    meta = {
        "dataset": dataset,
        "adapter": adapter,
        "root": root,
        # no source could be measured (frames absent; text-only tasks): later stages must not resize/extract
        "annotation_only": bool((frame["n_frames"] == 0).all()),
        "counts": {str(k): int(v) for k, v in frame["split"].value_counts().sort_index().items()},
        "counts_by_kind": {str(k): int(v) for k, v in frame["source_kind"].value_counts().sort_index().items()},
        "shard_size": shard_size,
        "n_shards": int(frame["shard"].nunique()),
        "skipped_count": len(skipped),
        "skipped_reasons": summarise_skipped(skipped),
        "skipped": list(skipped),
        "provenance": provenance(eff),
    }
    return Manifest(dataset, frame, meta)


# -------------------------------------------------------------------------------------------- writing


def to_table(manifest: Manifest) -> pa.Table:
    schema = pa.schema(SCHEMA_FIELDS, metadata={META_KEY: json.dumps(manifest.meta, ensure_ascii=False, default=str).encode()})
    return pa.Table.from_pandas(manifest.frame, schema=schema, preserve_index=False)


def splits_frame(manifest: Manifest) -> pd.DataFrame:
    return manifest.frame[["sample_id", "split", "fold"]].sort_values("sample_id", kind="stable")


def write_manifest(manifest: Manifest, out: str | Path, splits_out: str | Path | None = None) -> None:
    """Write the Parquet manifest and, if asked, ``splits.tsv`` plus its provenance sidecar
    (``<stem>.provenance.json``). All files appear together or not at all."""
    table = to_table(manifest)
    with contextlib.ExitStack() as stack:
        tmp_manifest = stack.enter_context(atomic_path(out))
        if splits_out is not None:
            splits_out = Path(splits_out)
            tmp_splits = stack.enter_context(atomic_path(splits_out))
            tmp_prov = stack.enter_context(atomic_path(splits_provenance_path(splits_out)))
            splits_frame(manifest).to_csv(tmp_splits, sep="\t", index=False, lineterminator="\n")
            tmp_prov.write_text(
                json.dumps({"dataset": manifest.dataset, "provenance": manifest.meta["provenance"]},
                           indent=2, ensure_ascii=False, default=str) + "\n",
                encoding="utf-8",
            )
        pq.write_table(table, tmp_manifest)


def splits_provenance_path(splits_out: Path) -> Path:
    return splits_out.with_name(f"{splits_out.stem}.provenance.json")


# -------------------------------------------------------------------------------------------- reading


def read_manifest(path: str | Path) -> pd.DataFrame:
    """The manifest as a DataFrame (columns in contract order), for every later stage: the file, its columns
    and the uniqueness of ``sample_id`` are checked; a null gloss, text or signer reads as "" (the same absence)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, None, "manifest does not exist (run `hatl manifest` first)")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        raise InputError(path, None, f"not a readable Parquet file: {err}") from err
    missing = [c for c in MANIFEST_COLUMNS if c not in table.column_names]
    if missing:
        raise InputError(path, None, f"not a hatl manifest: missing columns {missing}")
    df = table.to_pandas()[list(MANIFEST_COLUMNS)]
    dup = df["sample_id"][df["sample_id"].duplicated()]
    if len(dup):
        raise InputError(path, str(dup.iloc[0]), f"sample_id is not unique ({len(dup)} duplicate row(s))")
    for col in ("gloss", "text", "signer"):
        df[col] = df[col].fillna("").astype(str)
    return df


def manifest_meta(path: str | Path) -> dict[str, Any]:
    """The ``hatl`` schema metadata of a manifest (dataset, adapter, root, skipped, counts, provenance)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, None, "manifest does not exist (run `hatl manifest` first)")
    meta = pq.read_schema(path).metadata or {}
    if META_KEY not in meta:
        raise InputError(path, None, "not a hatl manifest: no 'hatl' schema metadata")
    return json.loads(meta[META_KEY])


def shards(manifest_df: pd.DataFrame) -> dict[int, str]:
    """shard -> source_kind, in shard order (one kind per shard by construction)."""
    pairs = manifest_df[["shard", "source_kind"]].drop_duplicates().sort_values("shard")
    out: dict[int, str] = {}
    for shard, kind in pairs.itertuples(index=False):
        if int(shard) in out:
            raise ValueError(f"manifest shard {shard} mixes source kinds {out[int(shard)]} and {kind}")
        out[int(shard)] = str(kind)
    return out


def summary_lines(manifest: Manifest) -> list[str]:
    """A readable summary for the log: counts per split, shards, skips grouped by reason."""
    m = manifest.meta
    counts = ", ".join(f"{k} {v}" for k, v in m["counts"].items())
    kinds = ", ".join(f"{k} {v}" for k, v in m["counts_by_kind"].items())
    lines = [
        f"{m['dataset']} ({m['adapter']}): {len(manifest.frame)} samples ({counts}); sources: {kinds}; "
        f"{m['n_shards']} shard(s) of at most {m['shard_size']}"
        + ("; annotation only (no frames/videos)" if m["annotation_only"] else ""),
        f"skipped: {m['skipped_count']}",
    ]
    for reason, n in m["skipped_reasons"].items():
        examples = [s["record"] for s in m["skipped"] if skip_category(s["reason"]) == reason][:3]
        lines.append(f"  {n} x {reason} (e.g. {'; '.join(examples)})")
    return lines
