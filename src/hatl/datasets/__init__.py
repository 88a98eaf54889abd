"""Dataset adapters: each turns one dataset's own release layout into manifest rows.

An adapter is a module exposing
``build_rows(dataset, ds_cfg, config) -> (rows, skipped)``; see :mod:`hatl.datasets.base` for the row format
and the error/skip policy, and :mod:`hatl.datasets.manifest` for the stage that writes the manifest.
Adapters are imported lazily: the demo adapter pulls in the synthetic generator, others need nothing heavy.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from hatl.errors import ConfigError

# config ``datasets.<name>.adapter`` -> module implementing build_rows
ADAPTERS: dict[str, str] = {
    "demo": "hatl.datasets.demo",
    "phoenix14t": "hatl.datasets.phoenix14t",
    "isharah": "hatl.datasets.isharah",
    "medasl": "hatl.datasets.medasl",
    "generic": "hatl.datasets.generic",
    "isl_kinect": "hatl.datasets.isl_kinect",
    "boston104": "hatl.datasets.boston104",
}


def get_adapter(name: str) -> ModuleType:
    """The adapter module registered under ``name``."""
    try:
        module_name = ADAPTERS[name]
    except KeyError as err:
        raise ConfigError(f"unknown dataset adapter {name!r}; known: {', '.join(ADAPTERS)}") from err
    module = importlib.import_module(module_name)
    if not callable(getattr(module, "build_rows", None)):
        raise TypeError(f"adapter module {module_name} does not define build_rows(dataset, ds_cfg, config)")
    return module
