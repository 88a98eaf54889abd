"""What every result file records: the resolved config, the code version, library versions, the seed."""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from hatl import __version__

_TRACKED = ("torch", "numpy", "mediapipe", "sacrebleu", "rouge-score", "kenlm", "pyarrow", "snakemake")


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """``<package version>+g<commit>[-dirty]`` when run from a git checkout, else the package version."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", "src"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{commit}{'-dirty' if dirty else ''}"


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _TRACKED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def provenance(config: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A block to embed under ``"provenance"`` in every JSON result (and as Parquet/CSV sidecar metadata)."""
    block: dict[str, Any] = {"code_version": code_version(), "libraries": library_versions()}
    if config is not None:
        block["config"] = config
    block.update(extra)
    return block
