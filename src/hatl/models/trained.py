"""A finished run's ``best.pt`` (format ``hatl.run/1``): written by ``hatl train``, read by ``hatl decode``.

The file alone rebuilds the model: it holds the weights and every argument of ``SLTModel``, including the
backbone's architecture and graph (docs/training.md lists the fields).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hatl.errors import InputError
from hatl.io import atomic_path

BEST_FORMAT = "hatl.run/1"


def model_args(model: nn.Module, task: str, translator: str, gloss_vocab_size: int, text_vocab_size: int,
               model_config: Mapping[str, Any]) -> dict[str, Any]:
    """What ``SLTModel(...)`` needs to be built again, the backbone's architecture and graph included."""
    bb = getattr(model, "backbone", None)
    backbone = None
    if bb is not None:
        graph = getattr(bb, "graph", None)
        backbone = {"config": bb.config.to_dict(), "graph": graph.to_dict() if graph is not None else None,
                    "num_joints": bb.num_joints}
    return {
        "task": task,
        "translator": translator,
        "gloss_vocab_size": gloss_vocab_size,
        "text_vocab_size": text_vocab_size,
        "model_config": model_config,
        "backbone": backbone,
        "gloss_words": model.gloss_words.tolist() if getattr(model, "gloss_words", None) is not None else None,
    }


def save_trained(path: str | Path, model_state: Mapping[str, torch.Tensor], args: Mapping[str, Any], **facts: Any) -> None:
    """Write ``best.pt`` atomically: the weights, ``model_args`` (see :func:`model_args`) and the run's ``facts``
    (vocab paths, run identity, best epoch and metric, config, provenance)."""
    blob = {"format": BEST_FORMAT, "model_state": dict(model_state), "model_args": dict(args), **facts}
    with atomic_path(Path(path)) as tmp:
        torch.save(blob, tmp)


def load_trained(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model of a finished run from its ``best.pt`` (no other file needed) and return (model, blob)."""
    from hatl.models.graph import Graph
    from hatl.models.slt import SLTModel
    from hatl.models.stgcnpp import STGCNPP, STGCNPPConfig

    try:
        blob = torch.load(path, map_location=map_location, weights_only=False)
    except FileNotFoundError as err:
        raise InputError(path, None, "trained checkpoint does not exist") from err
    if not isinstance(blob, dict) or blob.get("format") != BEST_FORMAT:
        raise InputError(path, None, f"not a {BEST_FORMAT} checkpoint written by `hatl train`")
    args = blob["model_args"]
    backbone = None
    if args["backbone"] is not None:
        bb = args["backbone"]
        if bb["graph"] is not None:
            adjacency = Graph.from_dict(bb["graph"]).adjacency()
        else:
            adjacency = np.zeros((3, bb["num_joints"], bb["num_joints"]), dtype=np.float32)  # overwritten by the state dict
        backbone = STGCNPP(adjacency, STGCNPPConfig.from_dict(bb["config"]))
    model = SLTModel(args["task"], args["translator"], backbone, args["gloss_vocab_size"], args["text_vocab_size"], cfg=args["model_config"],
                     gloss_words=args.get("gloss_words"))
    model.load_state_dict(blob["model_state"], strict=True)
    model.eval()
    return model, blob
