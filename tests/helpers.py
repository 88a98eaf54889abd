"""Helpers shared by several test modules (import them: ``from helpers import ...``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def load_bench(script: str) -> ModuleType:
    """A bench script (not a package module) imported by path, e.g. ``load_bench("gpu_check")``."""
    spec = importlib.util.spec_from_file_location(f"{script}_bench", REPO / "bench" / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # registered before running, as a normal import would be
    spec.loader.exec_module(module)
    return module


MANIFEST_COLUMNS = ["sample_id", "split", "fold", "signer", "gloss", "text", "source", "source_kind", "fps", "n_frames", "shard"]


def write_manifest(path: Path, rows: list[dict], **defaults: Any) -> Path:
    """A manifest of ``rows``; columns a row leaves out come from ``defaults``, then from a held-out test clip."""
    base = {"split": "test", "fold": -1, "signer": "s0", "gloss": "", "text": "", "fps": 25.0, "n_frames": 0, "shard": 0, **defaults}
    pd.DataFrame([{**base, **r} for r in rows], columns=MANIFEST_COLUMNS).to_parquet(path)
    return path


def schema_config(**sections: Any) -> dict[str, Any]:
    """A validated config of one demo dataset: every value not in ``sections`` is the schema's default."""
    from hatl.config import validate_config

    return validate_config({"datasets": {"tiny": {"adapter": "demo", "demo_profile": "phoenix14t"}}, **sections})


def schema_train_config(task: str = "sign2text", **training: Any):
    """``TrainConfig`` of the schema's defaults (Table 4), with ``training`` keys replaced."""
    from hatl.train.config import TrainConfig

    return TrainConfig.from_config(schema_config(training=training), task)


def write_generic_config(path: Path, **preprocess: Any) -> Path:
    """A config file with one ``generic`` dataset ``vid`` and the given ``preprocess`` sections."""
    import yaml

    path.write_text(yaml.safe_dump({"datasets": {"vid": {"adapter": "generic"}}, "preprocess": preprocess}))
    return path


class Interrupt(Exception):
    """Stands in for a kill at a chosen training step (deterministic, in-process)."""


def interrupting_model_factory(step: int):
    """A ``model_factory`` for ``train_run`` whose model raises :class:`Interrupt` on its ``step``-th training
    forward pass (counted over the whole run, 1-based): a kill at an exact point, to test resuming."""
    from hatl.train.recipe import default_model_factory

    calls = {"n": 0}

    def factory(trainer: Any) -> Any:
        model = default_model_factory(trainer)
        real = model.forward

        def forward(batch: Any) -> Any:
            if model.training:
                calls["n"] += 1
                if calls["n"] == step:
                    raise Interrupt
            return real(batch)

        model.forward = forward
        return model

    return factory
