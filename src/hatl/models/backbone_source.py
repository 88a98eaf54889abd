"""Where a backbone's weights come from, carried from pretraining / import to every measured table row.

One of three labels (issue 12; docs/training.md, "Backbone provenance"):

* ``pyskl checkpoint <name>``: a released pyskl ST-GCN++ file (``backbone.checkpoint``);
* ``pretrained on <dataset> (real|synthetic)``: the workflow's own pretraining (``hatl pretrain-demo`` or
  ``hatl pretrain-supervised``), which records its training data in the checkpoint's ``meta['backbone']``;
  a two-stage pretraining (``hatl pretrain-demo --init``) names both stages, the first one first:
  ``pretrained on isl_kinect (real) then phoenix14t windows (synthetic)``; a pretraining that fell back from a
  configured real source it could not find says so after a ``;`` (the note);
* ``none``: no pretrained weights (Gloss2Text has no backbone at all).

``hatl import-backbone`` reads the record from the checkpoint (a file without one is a pyskl checkpoint)
and stores it in the imported backbone; ``hatl train`` copies it into ``summary.json`` and ``best.pt`` and
warns when a real dataset's backbone saw only synthetic data; ``hatl table`` shows it per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

KINDS = ("pyskl", "pretrained", "none", "unknown")
META_KEY = "backbone"  # the key of the record in a pretraining checkpoint's ``meta`` and in the imported file


@dataclass(frozen=True)
class BackboneSource:
    kind: str  # one of KINDS
    name: str = ""  # pyskl: the checkpoint's name; pretrained: the dataset(s), joined by '+'
    synthetic: bool | None = None  # pretrained: True when every pretraining dataset is synthetic (a demo)
    note: str = ""  # unknown: why; pretrained: a fallback from the configured source, said in the label
    init: BackboneSource | None = None  # pretrained: the first stage whose weights this pretraining started from

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown backbone source kind {self.kind!r}; known: {KINDS}")

    @property
    def label(self) -> str:
        if self.kind == "pyskl":
            return f"pyskl checkpoint {self.name}"
        if self.kind == "pretrained":
            data = "unknown data" if self.synthetic is None else "synthetic" if self.synthetic else "real"
            label = (f"pretrained on {self.name} ({data})" if self.init is None
                     else f"{self.init.label} then {self.name} windows ({data})")
            return f"{label}; {self.note}" if self.note else label
        if self.kind == "none":
            return "none"
        return f"unknown ({self.note})" if self.note else "unknown"

    @property
    def synthetic_only(self) -> bool:
        """The backbone saw only synthetic data (a real dataset's rows must say so)."""
        first_stage_synthetic = self.init is None or self.init.synthetic_only
        return self.kind == "pretrained" and self.synthetic is True and first_stage_synthetic

    @property
    def real_data(self) -> bool:
        """Some stage of the pretraining saw real signing (what the default backbone is meant to have)."""
        if self.kind == "pyskl":
            return True
        return self.kind == "pretrained" and (self.synthetic is False or (self.init is not None and self.init.real_data))

    def to_dict(self) -> dict[str, Any]:
        record = {"kind": self.kind, "name": self.name, "synthetic": self.synthetic, "note": self.note,
                  "label": self.label}
        if self.init is not None:
            record["init"] = self.init.to_dict()
        return record

    @classmethod
    def from_dict(cls, record: Mapping[str, Any] | None) -> BackboneSource:
        if not isinstance(record, Mapping) or record.get("kind") not in KINDS:
            return unknown("no backbone source recorded")
        synthetic = record.get("synthetic")
        init = cls.from_dict(record["init"]) if isinstance(record.get("init"), Mapping) else None
        return cls(str(record["kind"]), str(record.get("name") or ""), None if synthetic is None else bool(synthetic),
                   str(record.get("note") or ""), init)


NONE = BackboneSource("none")


def unknown(note: str) -> BackboneSource:
    return BackboneSource("unknown", note=note)


def pyskl(path: str | Path) -> BackboneSource:
    """A released checkpoint, named by its folder and file (pyskl names its files j.pth, b.pth, ... inside a
    folder that says the model, e.g. ``stgcnpp_ntu120_xsub_hrnet/j.pth``)."""
    path = Path(path)
    return BackboneSource("pyskl", f"{path.parent.name}/{path.name}" if path.parent.name else path.name)


def pretrained_on(datasets: Iterable[tuple[str, bool | None]]) -> BackboneSource:
    """Pretraining on these (dataset, synthetic) pairs; synthetic only when every one is, unknown when any is."""
    pairs = sorted(set(datasets))
    if not pairs:
        return unknown("pretraining data not recorded")
    flags = [s for _, s in pairs]
    synthetic = None if any(s is None for s in flags) else all(flags)
    return BackboneSource("pretrained", "+".join(dict.fromkeys(name for name, _ in pairs)), synthetic)


def then(first: BackboneSource, second: BackboneSource) -> BackboneSource:
    """A second pretraining that started from the weights of ``first`` (``hatl pretrain-demo --init``)."""
    if second.kind != "pretrained":
        raise ValueError(f"a second pretraining stage must be a pretraining, got {second.label!r}")
    return BackboneSource(second.kind, second.name, second.synthetic, second.note, first)


def with_note(source: BackboneSource, note: str) -> BackboneSource:
    """The same source with ``note`` said in its label (a fallback from a configured real source)."""
    return BackboneSource(source.kind, source.name, source.synthetic, note, source.init)


def _data_source(path: str | Path) -> tuple[str, bool | None]:
    """(dataset, synthetic) of a hatl keypoint file (normalised split or keypoint shard), from its metadata:
    the dataset it was built for and that dataset's adapter in the config that built it (``demo``: synthetic)."""
    from hatl.keypoint_store import read_meta

    meta = read_meta(path)
    dataset = str(meta.get("dataset") or Path(path).stem)
    config = (meta.get("provenance") or {}).get("config") or {}
    adapter = ((config.get("datasets") or {}).get(dataset) or {}).get("adapter")
    if adapter is None:  # no config recorded: the keypoint extractor still tells the demo apart
        extractor = (meta.get("keypoints") or meta).get("extractor") or {}
        return dataset, (extractor.get("extractor") == "demo") if extractor else None
    return dataset, adapter == "demo"


def pretrained_on_files(paths: Iterable[str | Path]) -> BackboneSource:
    """The record a pretraining command stores (``meta['backbone']``) for the keypoint files it trained on."""
    return pretrained_on(_data_source(p) for p in paths)


def from_checkpoint_meta(meta: Any, path: str | Path) -> BackboneSource:
    """What an imported checkpoint was trained on: the record the workflow's pretraining wrote, else (a file
    hatl did not write) a pyskl checkpoint named after the file."""
    if isinstance(meta, Mapping) and isinstance(meta.get(META_KEY), Mapping):
        return BackboneSource.from_dict(meta[META_KEY])
    if isinstance(meta, Mapping) and "hatl" in meta:  # written by a hatl pretraining that kept no record
        return unknown(f"hatl pretraining output {Path(path).name} without a data record")
    return pyskl(path)


def synthetic_backbone_warning(dataset: str, source: BackboneSource, dataset_is_demo: bool) -> str | None:
    """The warning of a real dataset's run whose backbone saw only synthetic data; None otherwise."""
    if dataset_is_demo or not source.synthetic_only:
        return None
    return (f"dataset '{dataset}' is real data but its backbone was {source.label}: it saw only synthetic data, so its "
            "rows measure the pipeline, not transfer from real signing. Set backbone.checkpoint to a pyskl checkpoint "
            "or pretrain on real data (backbone.pretrain.method: supervised, or backbone.pretrain_demo.source: a real "
            "dataset)")


# ---------------------------------------------------------------------------------------------- default source
REAL_SOURCE_METHODS = ("supervised", "two_stage")  # backbone.pretrain.method values that read a real source
DEFAULT_METHOD = "two_stage"  # backbone.pretrain.method when unset (as config.schema.yaml)


def missing_real_source(config: Mapping[str, Any]) -> str | None:
    """Why the configured real pretraining source cannot be used (its release folder is absent, e.g. a clone
    without ../shared), or None when it can or none is configured. The workflow then falls back to the demo's
    in-domain pretraining, warns, and this text goes into the backbone's provenance label: never silently.
    Relative roots are read from the working directory (as ``hatl pretrain-data`` reads them)."""
    backbone = config.get("backbone") or {}
    pretrain = backbone.get("pretrain") or {}
    method = pretrain.get("method", DEFAULT_METHOD)
    if backbone.get("checkpoint") or method not in REAL_SOURCE_METHODS:
        return None
    source = (pretrain.get("sources") or ["isl_kinect"])[0]
    root = (pretrain.get("roots") or {}).get(source)
    if root and Path(root).is_dir():
        return None
    where = f"at {root}" if root else "(no backbone.pretrain.roots entry)"
    return (f"FALLBACK: backbone.pretrain.method {method} needs the real source {source} {where}, which is missing, "
            "so this backbone saw only the in-domain pretraining windows")


def effective_method(config: Mapping[str, Any]) -> str:
    """``backbone.pretrain.method`` after the fallback of :func:`missing_real_source` (demo when it applies)."""
    method = str(((config.get("backbone") or {}).get("pretrain") or {}).get("method", DEFAULT_METHOD))
    return "demo" if missing_real_source(config) else method
