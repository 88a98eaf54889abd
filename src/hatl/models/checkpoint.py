"""Import a pyskl ST-GCN++ checkpoint onto the configured MediaPipe graph (``hatl import-backbone``).

Reads mmcv training files ``{'meta', 'state_dict', 'optimizer'}`` and flat state dicts, keys with or without
the ``backbone.`` prefix (and DistributedDataParallel's ``module.`` in front of it, :data:`WRAPPER_PREFIXES`),
in pyskl's coco (V=17) and nturgb+d (V=25) layouts (detected from the adjacency shape and ``data_bn``). Every
key goes through an explicit map (:data:`PYSKL_TO_HATL`, torchtune style: block/branch numbers abstracted to
``{}``); a key the map does not know is refused, ``cls_head.*`` is ignored with a note, and a shape that does
not fit is an error naming the key. A file that is not a torch checkpoint at all (empty, text, an HTML page,
a Git LFS pointer) is refused by its first bytes, before ``torch.load`` guesses at it; a NaN or infinite
weight is refused too.

The joint-dependent tensors (each block's learned adjacency ``A`` and the input norm ``data_bn``) are rebuilt
from the target graph; joints that exist in both skeletons (:data:`hatl.models.graph.POSE_EQUIVALENTS`) carry
their pretrained entries over, after a check that each such tensor has the shape the source skeleton gives
it. Everything else loads unchanged. The result is a torch file holding the
adapted state dict, the architecture, the graph and layout it was adapted to, and the import report;
:func:`load_backbone` turns it back into an :class:`~hatl.models.stgcnpp.STGCNPP`.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hatl.config import effective_config, load_config
from hatl.errors import ConfigError, InputError
from hatl.io import atomic_path, write_json
from hatl.landmarks import Layout, build_layout
from hatl.models.backbone_source import META_KEY, BackboneSource, from_checkpoint_meta, unknown
from hatl.models.graph import Graph, layout_graph, mediapipe_graph, pyskl_graph, shared_joints
from hatl.models.stgcnpp import STGCNPP, STGCNPPConfig
from hatl.provenance import provenance

log = logging.getLogger(__name__)

FORMAT = "hatl.stgcnpp/1"
DEMO_CHECKPOINT = "results/pretrained/stgcnpp_demo.pth"
IGNORED_PREFIXES = ("cls_head.",)  # the action classifier: the translator replaces it
# Wrappers that prefix every key of the model they wrap; stripped before the key map, with a note.
WRAPPER_PREFIXES: dict[str, str] = {"module.": "saved from a DistributedDataParallel/DataParallel wrapper"}
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since PyTorch 1.6
PICKLE_PROTOCOLS = (2, 3, 4, 5)  # the pre-1.6 format is a pickle stream: b"\x80" + protocol (torch used 2)
MAX_NAMED_KEYS = 5  # keys named in one error; the count says how many more
_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
_CONV = ("weight", "bias")


def _entries(prefix: str, suffixes: tuple[str, ...]) -> dict[str, str]:
    return {f"{prefix}.{s}": f"{prefix}.{s}" for s in suffixes}


# pyskl key template -> hatl key template ("{}" = a block or branch number). Identity on names by design
# (hatl uses pyskl's module names), but explicit: a key outside this table is refused.
PYSKL_TO_HATL: dict[str, str] = {
    **_entries("data_bn", _BN),
    "gcn.{}.gcn.A": "gcn.{}.gcn.A",
    **_entries("gcn.{}.gcn.conv", _CONV),
    **_entries("gcn.{}.gcn.bn", _BN),
    **_entries("gcn.{}.gcn.down.0", _CONV),
    **_entries("gcn.{}.gcn.down.1", _BN),
    **_entries("gcn.{}.tcn.branches.{}.0", _CONV),  # branch entry 1x1 conv
    **_entries("gcn.{}.tcn.branches.{}.1", _BN),
    **_entries("gcn.{}.tcn.branches.{}.3.conv", _CONV),  # dilated temporal conv
    **_entries("gcn.{}.tcn.branches.{}", _CONV),  # the bare 1x1 branch
    **_entries("gcn.{}.tcn.transform.0", _BN),
    **_entries("gcn.{}.tcn.transform.2", _CONV),
    **_entries("gcn.{}.tcn.bn", _BN),
    **_entries("gcn.{}.residual.conv", _CONV),
    **_entries("gcn.{}.residual.bn", _BN),
}
JOINT_KEYS = re.compile(r"^(data_bn\.(weight|bias|running_mean|running_var)|gcn\.\d+\.gcn\.A)$")
# only the block number (gcn.{}) and the branch number (branches.{}) vary; sub-module indices stay literal
_NUMBER = re.compile(r"(?<=^gcn\.)\d+(?=\.)|(?<=\.branches\.)\d+(?=\.)")


def map_key(key: str) -> str | None:
    """hatl name of a pyskl backbone key (prefix already stripped), or None when the map does not know it."""
    numbers = _NUMBER.findall(key)
    template = _NUMBER.sub("{}", key)
    target = PYSKL_TO_HATL.get(template)
    return None if target is None else target.format(*numbers)


@dataclass
class ImportReport:
    """What happened to every key: loaded, adapted (joint carry-over), reinitialised or ignored."""

    source: str
    source_format: str
    source_layout: str
    target_graph: str
    entries: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, key: str, action: str, source_key: str | None = None, shape: tuple[int, ...] | None = None,
            note: str = "") -> None:
        self.entries.append({"key": key, "action": action, "source_key": source_key,
                             "shape": None if shape is None else list(shape), "note": note})

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in self.entries:
            out[e["action"]] = out.get(e["action"], 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "source_format": self.source_format, "source_layout": self.source_layout,
                "target_graph": self.target_graph, "counts": self.counts(), "notes": self.notes, "keys": self.entries}


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _looks_like(head: bytes) -> str:
    """What a file that is not a torch checkpoint seems to be, from its first bytes."""
    text = head.decode("utf-8", errors="ignore")
    if not text or any(not (c.isprintable() or c in "\r\n\t") for c in text):
        return f"it starts with the bytes {head[:16]!r}"
    if text.startswith("version https://git-lfs"):
        return "it is a Git LFS pointer, not the file itself (run `git lfs pull`)"
    if text.lstrip().lower().startswith(("<!doctype html", "<html")):
        return "it is an HTML page (a download that saved a web page instead of the file?)"
    return f"it is a text file starting {text.splitlines()[0][:40]!r}"


def check_container(path: Path) -> None:
    """Refuse a file that is not a torch checkpoint, saying what it is instead.

    ``torch.load`` falls back to unpickling any file that is not a zip archive, and unpickling text or random
    bytes fails with messages that name no reason ('pop from empty list', a bare byte value, or an empty one).
    """
    size = path.stat().st_size
    if size == 0:
        raise InputError(path, None, "checkpoint file is empty (0 bytes): an interrupted download or copy?")
    with open(path, "rb") as fh:
        head = fh.read(64)
    if head.startswith(ZIP_MAGIC) or (len(head) > 1 and head[0] == 0x80 and head[1] in PICKLE_PROTOCOLS):
        return
    raise InputError(path, None, f"not a torch checkpoint: {_looks_like(head)} ({size} bytes); torch.save writes a "
                     "zip archive (starting 'PK'), or before PyTorch 1.6 a pickle stream (starting 0x80)")


def _reason(err: BaseException) -> str:
    """An exception as a one-line reason that is never empty (KeyError(105) or RuntimeError('') say nothing)."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else "no details"
    return f"{type(err).__name__}: {text}"


def read_checkpoint(path: str | Path, sha256: str | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """The backbone state dict of a pyskl checkpoint (``backbone.`` prefix kept if present) and its format."""
    state, fmt, _ = read_checkpoint_meta(path, sha256)
    return state, fmt


def read_checkpoint_meta(path: str | Path, sha256: str | None = None) -> tuple[dict[str, torch.Tensor], str, dict]:
    """:func:`read_checkpoint` plus the mmcv file's ``meta`` dict (empty for a flat state dict).

    Loads with ``weights_only=True``; only a file whose sha256 was verified may fall back to full unpickling
    (mmcv metadata sometimes holds objects the safe loader refuses), since unpickling runs code.
    """
    return parse_checkpoint(load_checkpoint_object(path, sha256), path)


def load_checkpoint_object(path: str | Path, sha256: str | None = None) -> Any:
    """The unpickled checkpoint file, after the container and checksum checks (see :func:`read_checkpoint`)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, None, "checkpoint file does not exist")
    check_container(path)
    if sha256:
        actual = sha256_of(path)
        if actual.lower() != sha256.lower():
            raise InputError(path, None, f"sha256 mismatch: expected {sha256.lower()}, file has {actual}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # the safe loader's refusal (a corrupt zip is a RuntimeError)
        if not sha256:
            raise InputError(path, None, "the safe loader refused this file (it holds pickled objects beyond tensors); "
                             "set backbone.sha256 (or --sha256) to the file's checksum to allow a full load") from err
        log.warning("%s: safe load refused (%s); full unpickling of the sha256-verified file", path, err)
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # zip/pickle corruption: say which file and why
        raise InputError(path, None, f"not a readable torch checkpoint (truncated or corrupt?): {_reason(err)}") from err
    return obj


def parse_checkpoint(obj: Any, path: str | Path) -> tuple[dict[str, torch.Tensor], str, dict]:
    """(state dict, format, mmcv ``meta``) of a loaded checkpoint object: mmcv ``{'state_dict': ...}`` or a flat
    state dict (empty meta)."""
    meta: dict = {}
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        state, fmt = obj["state_dict"], "mmcv"
        meta = obj["meta"] if isinstance(obj.get("meta"), dict) else {}
    elif isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state, fmt = obj, "flat"
    else:
        raise InputError(path, None, "neither an mmcv checkpoint {'state_dict': ...} nor a flat state dict of tensors")
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise InputError(path, bad[0], "state dict entry is not a tensor")
    return dict(state), fmt, meta


def recorded_graph(meta: dict, path: str | Path) -> Graph | None:
    """The skeleton a hatl pretraining recorded in ``meta['hatl']['graph']`` (``hatl pretrain-demo`` on the
    MediaPipe layout writes it: no pyskl layout has those joints), else None (a pyskl checkpoint)."""
    blob = (meta.get("hatl") or {}).get("graph") if isinstance(meta.get("hatl"), dict) else None
    if blob is None:
        return None
    try:
        return Graph.from_dict(blob)
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(path, "meta.hatl.graph", f"recorded graph is malformed: {_reason(err)}") from err


def _named(keys: list[str]) -> str:
    more = len(keys) - MAX_NAMED_KEYS
    return ", ".join(keys[:MAX_NAMED_KEYS]) + (f" and {more} more" if more > 0 else "")


def check_finite(state: dict[str, torch.Tensor], path: str | Path) -> None:
    """Refuse NaN or infinite weights: they would load silently and turn every output into NaN."""
    bad = {k: v for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())}
    if bad:
        counts = {k: (int(torch.isnan(v).sum()), int(torch.isinf(v).sum())) for k, v in bad.items()}
        first = next(iter(counts))
        raise InputError(path, first, f"{len(bad)} tensor(s) hold NaN or infinite values ({first}: "
                         f"{counts[first][0]} NaN, {counts[first][1]} inf): {_named(list(bad))}")


def strip_wrapper(state: dict[str, torch.Tensor], path: str | Path, report: ImportReport) -> dict[str, torch.Tensor]:
    """Remove a wrapper prefix (:data:`WRAPPER_PREFIXES`) that every key carries; a partial one is refused."""
    for prefix, why in WRAPPER_PREFIXES.items():
        wrapped = [k for k in state if k.startswith(prefix)]
        if not wrapped:
            continue
        if len(wrapped) != len(state):
            other = next(k for k in state if not k.startswith(prefix))
            raise InputError(path, other, f"key lacks the '{prefix}' prefix that {len(wrapped)} other keys carry")
        report.notes.append(f"'{prefix}' prefix stripped from every key ({why})")
        return {k[len(prefix):]: v for k, v in state.items()}
    return state


def split_backbone(state: dict[str, torch.Tensor], path: str | Path, report: ImportReport) -> dict[str, torch.Tensor]:
    """Strip ``backbone.`` and set aside ignored keys (recorded in the report)."""
    prefixed = any(k.startswith("backbone.") for k in state)
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith(IGNORED_PREFIXES):
            report.add(key, "ignored", key, tuple(value.shape), "classification head: not part of the backbone")
            continue
        if prefixed:
            if not key.startswith("backbone."):
                raise InputError(path, key, "unknown key: neither backbone.* nor cls_head.*")
            key = key[len("backbone."):]
        out[key] = value
    if any(e["action"] == "ignored" for e in report.entries):
        report.notes.append("cls_head.* ignored: the translator replaces pyskl's action classifier")
    return out


def detect_layout(state: dict[str, torch.Tensor], path: str | Path, recorded: Graph | None = None) -> tuple[str, int, int]:
    """(pyskl layout, V, in_channels) from the adjacency shape and the data_bn size; with a ``recorded`` graph
    (:func:`recorded_graph`) its name, once its joint count matches the adjacency."""
    if "gcn.0.gcn.A" not in state or "data_bn.weight" not in state:
        raise InputError(path, "gcn.0.gcn.A", "not an ST-GCN++ backbone: gcn.0.gcn.A or data_bn.weight is missing")
    A = state["gcn.0.gcn.A"]
    if A.ndim != 3 or A.shape[1] != A.shape[2]:
        raise InputError(path, "gcn.0.gcn.A", f"adjacency must be (K, V, V), got {tuple(A.shape)}")
    v = int(A.shape[1])
    # kinect20 / boston3: backbones hatl trains on the isl_kinect / boston104 skeletons
    layouts = {17: "coco", 25: "nturgb+d", 20: "kinect20", 3: "boston3"}
    if recorded is not None:
        if recorded.num_nodes != v:
            raise InputError(path, "gcn.0.gcn.A", f"{v} joints, but meta.hatl.graph records {recorded.name} with "
                             f"{recorded.num_nodes}")
        layouts = {v: recorded.name}
    elif v not in layouts:
        raise InputError(path, "gcn.0.gcn.A", f"{v} joints: only pyskl's coco (17) and nturgb+d (25) layouts and "
                         "hatl's kinect20 (20) and boston3 (3) are known")
    n_bn = int(state["data_bn.weight"].numel())
    if n_bn % v:
        raise InputError(path, "data_bn.weight", f"size {n_bn} is not a multiple of V={v} (data_bn over V*C expected)")
    return layouts[v], v, n_bn // v


def _carry_adjacency(old: torch.Tensor, source: Graph, target: Graph, pairs: list[tuple[int, int]]) -> torch.Tensor:
    new = torch.as_tensor(target.adjacency(), dtype=old.dtype)
    src = torch.tensor([s for s, _ in pairs], dtype=torch.long)
    dst = torch.tensor([t for _, t in pairs], dtype=torch.long)
    new[:, dst[:, None], dst[None, :]] = old[:, src[:, None], src[None, :]]
    return new


def _carry_data_bn(old: torch.Tensor, fresh: torch.Tensor, channels: int, pairs: list[tuple[int, int]]) -> torch.Tensor:
    new = fresh.clone()
    for s, t in pairs:
        new[t * channels:(t + 1) * channels] = old[s * channels:(s + 1) * channels]
    return new


def check_joint_shape(name: str, value: torch.Tensor, want: torch.Tensor, source: Graph, channels: int,
                      path: str | Path, key: str) -> None:
    """A joint-dependent tensor must have the shape the source skeleton gives it before its joints are carried
    over (otherwise the carry-over indexes the wrong joints, or crashes): the adjacency is (K, V, V) with the
    model's K subsets, each data_bn entry is V*C long."""
    v = source.num_nodes
    if name.endswith(".A"):
        expected, meaning = (int(want.shape[0]), v, v), f"{int(want.shape[0])} subsets of {v}x{v} joints"
    else:
        expected, meaning = (v * channels,), f"{v} joints x {channels} channels"
    if tuple(value.shape) != expected:
        raise InputError(path, key, f"shape {tuple(value.shape)} does not fit the {source.name} skeleton: "
                         f"expected {expected} ({meaning})")


def adapt_state_dict(state: dict[str, torch.Tensor], path: str | Path, model: STGCNPP, source: Graph, target: Graph,
                     channels: int, report: ImportReport) -> dict[str, torch.Tensor]:
    """Map every key onto ``model``'s names and shapes; rebuild joint-dependent tensors for ``target``."""
    expected = model.state_dict()
    pairs = shared_joints(source, target)
    same_graph = source.joint_names == target.joint_names and source.inward == target.inward
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = map_key(key)
        if name is None:
            raise InputError(path, key, "unknown key: not in the pyskl ST-GCN++ key map")
        if name not in expected:
            raise InputError(path, key, f"key maps to '{name}', which this architecture ({model.config}) does not have")
        want = expected[name]
        if JOINT_KEYS.match(name) and not same_graph:
            check_joint_shape(name, value, want, source, channels, path, key)
            if name.endswith(".A"):
                out[name] = _carry_adjacency(value, source, target, pairs)
            else:
                out[name] = _carry_data_bn(value, want, channels, pairs)
            report.add(name, "adapted", key, tuple(want.shape),
                       f"rebuilt for {target.name}; {len(pairs)} shared joints carried over from {source.name}")
            continue
        if tuple(value.shape) != tuple(want.shape):
            raise InputError(path, key, f"shape {tuple(value.shape)} does not fit '{name}' {tuple(want.shape)} "
                             f"(backbone.base_channels={model.config.base_channels}, in_channels={model.config.in_channels})")
        out[name] = value.to(want.dtype)
        report.add(name, "loaded", key, tuple(want.shape))
    for name, want in expected.items():
        if name in out:
            continue
        if name.endswith("num_batches_tracked"):  # absent from checkpoints written before PyTorch 0.4.1
            out[name] = want.clone()
            report.add(name, "reinitialised", None, tuple(want.shape), "absent from the checkpoint (a counter only)")
            continue
        raise InputError(path, f"backbone.{name}", "key missing from the checkpoint (different depth or a non-ST-GCN++ model?)")
    return out


@dataclass(frozen=True)
class ImportResult:
    model: STGCNPP
    graph: Graph
    layout: Layout | None  # None when the checkpoint's own pyskl graph was kept
    report: ImportReport
    source: BackboneSource = field(default_factory=lambda: unknown("not recorded"))  # what the weights saw


def target_layout(config: dict[str, Any]) -> Layout:
    kp = config.get("preprocess", {}).get("keypoints", {})
    return build_layout(tuple(kp.get("groups", ("pose", "face", "iris", "left_hand", "right_hand"))),
                        kp.get("face_subset", "reduced"))


def backbone_config(config: dict[str, Any]) -> STGCNPPConfig:
    bb = config.get("backbone", {})
    return STGCNPPConfig(in_channels=int(bb.get("in_channels", 3)), base_channels=int(bb.get("base_channels", 64)))


def import_checkpoint(path: str | Path, arch: STGCNPPConfig, layout: Layout | None, sha256: str | None = None) -> ImportResult:
    """Read a pyskl checkpoint and adapt it to ``layout``'s MediaPipe graph (``None``: keep its own graph,
    which is how the parity tests compare with pyskl on the checkpoint's skeleton)."""
    state, fmt, meta = read_checkpoint_meta(path, sha256)
    origin = from_checkpoint_meta(meta if fmt == "mmcv" else None, path)  # what the weights saw
    report = ImportReport(str(path), fmt, "?", "?")
    report.notes.append(f"backbone source: {origin.label}")
    state = split_backbone(strip_wrapper(state, path, report), path, report)
    check_finite(state, path)
    recorded = recorded_graph(meta, path)
    layout_name, _, channels = detect_layout(state, path, recorded)
    report.source_layout = layout_name
    if channels != arch.in_channels:
        raise InputError(path, "data_bn.weight", f"checkpoint has {channels} input channels per joint, "
                         f"backbone.in_channels is {arch.in_channels}")
    source = recorded or pyskl_graph(layout_name)
    target = source if layout is None else layout_graph(layout)  # a skeleton dataset keeps its own graph
    report.target_graph = target.name
    torch.manual_seed(0)  # construction draws random weights, all overwritten; keep it deterministic anyway
    model = STGCNPP(target.adjacency(), arch)
    adapted = adapt_state_dict(state, path, model, source, target, channels, report)
    model.load_state_dict(adapted, strict=True)
    if target is not source:
        pairs = shared_joints(source, target)
        report.notes.append(f"joints carried over ({len(pairs)}): "
                            + ", ".join(source.joint_names[s] for s, _ in pairs))
    return ImportResult(model, target, layout, report, origin)


def save_backbone(path: str | Path, result: ImportResult) -> None:
    blob = {"format": FORMAT, "config": result.model.config.to_dict(), "graph": result.graph.to_dict(),
            "layout": None if result.layout is None else result.layout.to_dict(), "state_dict": result.model.state_dict(),
            "report": result.report.to_dict(), META_KEY: result.source.to_dict()}
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


def load_backbone(path: str | Path) -> STGCNPP:
    """The imported backbone (``results/backbone/stgcnpp.pt``) as a ready STGCNPP on its MediaPipe graph."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as err:
        raise InputError(path, None, "backbone file does not exist (run `hatl import-backbone`)") from err
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise InputError(path, None, f"not a {FORMAT} file written by `hatl import-backbone`")
    graph = Graph.from_dict(blob["graph"])
    model = STGCNPP(graph.adjacency(), STGCNPPConfig.from_dict(blob["config"]))
    model.load_state_dict(blob["state_dict"], strict=True)
    model.graph = graph  # type: ignore[attr-defined]  # kept for callers that want the joint names
    return model


def backbone_source_of(path: str | Path) -> BackboneSource:
    """The provenance record of an imported backbone file (``unknown`` for one imported before it was kept)."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as err:
        raise InputError(path, None, "backbone file does not exist (run `hatl import-backbone`)") from err
    if not isinstance(blob, dict) or META_KEY not in blob:
        return unknown(f"{Path(path).name} was imported before backbone provenance was recorded")
    return BackboneSource.from_dict(blob[META_KEY])


def new_backbone(config: dict[str, Any]) -> STGCNPP:
    """A randomly initialised backbone on the configured MediaPipe graph (the no-pretraining baseline)."""
    graph = mediapipe_graph(target_layout(config))
    return STGCNPP(graph.adjacency(), backbone_config(config))


# ---------------------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="pipeline config YAML")
    parser.add_argument("--dataset", default=None, help="dataset whose effective config applies (demo overrides)")
    parser.add_argument("--checkpoint", default=None,
                        help=f"pyskl checkpoint (default: backbone.checkpoint, or {DEMO_CHECKPOINT} when that is null)")
    parser.add_argument("--sha256", default=None, help="expected sha256 of the checkpoint (default: backbone.sha256)")
    parser.add_argument("--out", required=True, help="adapted backbone, e.g. results/backbone/stgcnpp.pt")
    parser.add_argument("--report", required=True, help="import report JSON, e.g. results/backbone/import_report.json")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.dataset:
        config = effective_config(config, args.dataset)
    bb = config.get("backbone", {})
    checkpoint = args.checkpoint or bb.get("checkpoint") or DEMO_CHECKPOINT
    sha = args.sha256 or bb.get("sha256")
    if sha and not re.fullmatch(r"[0-9a-fA-F]{64}", sha):
        raise ConfigError(f"backbone.sha256 / --sha256 must be 64 hex digits, got {sha!r}")
    layout = target_layout(config)
    if args.dataset:  # a skeleton adapter's data (boston104, isl_kinect) is in its own layout, not MediaPipe's
        from hatl.datasets import get_adapter
        from hatl.keypoints.convert import skeleton_layout

        adapter = config["datasets"][args.dataset]["adapter"]
        if getattr(get_adapter(adapter), "SKELETON", None):
            layout = skeleton_layout(adapter)
    result = import_checkpoint(checkpoint, backbone_config(config), layout, sha)
    counts = result.report.counts()
    log.info("imported %s (%s, %s layout) onto %s: %s; source: %s", checkpoint, result.report.source_format,
             result.report.source_layout, result.graph.name, counts, result.source.label)
    save_backbone(args.out, result)
    write_json(args.report, {**result.report.to_dict(), "sha256": sha256_of(checkpoint),
                             META_KEY: result.source.to_dict(), "provenance": provenance(config)})
    return 0
