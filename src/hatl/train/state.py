"""Resume state: everything a killed run needs to finish with exactly the result of an uninterrupted one.

One file, ``state.pt``, written atomically (temporary name, then rename), so a kill at any moment leaves
either the previous complete state or the new one. It holds the model, the optimizer, the warm-up
position, the controller, the RNG states of python/numpy/torch, the position in the epoch's batch order,
the running loss sums of the current epoch, the best checkpoint's weights and the log so far.
A small ``progress.json`` beside it says where the run stands, for people (and tests) to read.

The state carries a fingerprint of everything that defines the run (effective config, dataset, model,
task, strategy, fold, input files); a state with another fingerprint is not resumed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hatl.errors import InputError
from hatl.io import atomic_path, write_json

log = logging.getLogger(__name__)

STATE_FILE = "state.pt"
PROGRESS_FILE = "progress.json"
FORMAT_VERSION = 1
DRILL_PAUSE_ENV = "HATL_DRILL_PAUSE"  # <epoch>:<step>:<folder>, see drill_pause
_drill_paused = False  # a process pauses once per run


def fingerprint(spec: dict[str, Any]) -> str:
    """sha256 of a canonical JSON of the run's defining facts."""
    blob = json.dumps(spec, sort_keys=True, default=str, ensure_ascii=True).encode()
    return hashlib.sha256(blob).hexdigest()


def run_fingerprint(run: dict[str, str], config: dict[str, Any], dataset: str, inputs: list[Path]) -> str:
    """The fingerprint of a run: its identity, its config (of the datasets, only its own; not ``decoding``) and its
    input files."""
    # decoding settings never reach training: a new decoding option (or a changed beam) must not throw away the
    # resume state of a run that was killed halfway
    cfg = {k: v for k, v in config.items() if k not in ("datasets", "decoding")}
    cfg["dataset"] = config.get("datasets", {}).get(dataset)
    return fingerprint({"run": run, "config": cfg, "inputs": [file_identity(p) for p in inputs]})


def file_identity(path: str | Path) -> dict[str, Any]:
    """Size and content hash of an input file (a rebuilt input invalidates the resume state)."""
    path = Path(path)
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return {"name": path.name, "size": path.stat().st_size, "sha256": digest.hexdigest()}


def capture_rng() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (whose generators the resume state captures)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def cpu_state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy (the live tensors keep training; the copy is what gets saved or restored)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def save_state(resume_dir: str | Path, state: dict[str, Any]) -> None:
    resume_dir = Path(resume_dir)
    resume_dir.mkdir(parents=True, exist_ok=True)
    state = {**state, "format_version": FORMAT_VERSION}
    with atomic_path(resume_dir / STATE_FILE) as tmp:
        torch.save(state, tmp)
    write_json(
        resume_dir / PROGRESS_FILE,
        {
            "epoch": state["epoch"],
            "step_in_epoch": state["step_in_epoch"],
            "epoch_done": state["epoch_done"],
            "finished": state.get("finished", False),
            "global_step": state["global_step"],
            "fingerprint": state["fingerprint"],
        },
    )


def load_state(resume_dir: str | Path, expected_fingerprint: str) -> dict[str, Any] | None:
    """The saved state, or None when there is none or it belongs to another run definition."""
    path = Path(resume_dir) / STATE_FILE
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unreadable file is reported the same way
        raise InputError(path, None, f"resume state is unreadable ({err}); delete it to start the run afresh") from err
    if state.get("format_version") != FORMAT_VERSION:
        raise InputError(path, "format_version", f"resume state format {state.get('format_version')} != {FORMAT_VERSION}; delete it to start afresh")
    if state.get("fingerprint") != expected_fingerprint:
        log.warning("%s: resume state belongs to another run definition (config or inputs changed); starting afresh", path)
        return None
    return state


def drill_pause(epoch: int, step_in_epoch: int, epoch_done: bool) -> None:
    """Stop/resume drills: hold every process at a known step boundary until the drill lets it go.

    With ``HATL_DRILL_PAUSE=<epoch>:<step>:<folder>`` a process reaching its first mid-epoch save of epoch
    ``<epoch>`` at step ``<step>`` or later writes ``<folder>/paused.rank<RANK>`` (holding "epoch step") and
    waits until ``<folder>/go`` exists. Under torchrun every rank reaches the same save together (it is a
    collective), so a test can deliver SIGTERM while all ranks are known to sit before the save and have
    it take effect at exactly that step, whatever the machine's load. Unset (every real run), this is one
    environment lookup per save.
    """
    global _drill_paused
    spec = os.environ.get(DRILL_PAUSE_ENV)
    if not spec or epoch_done or _drill_paused:
        return
    want_epoch, want_step, folder = spec.split(":", 2)
    if epoch != int(want_epoch) or step_in_epoch < int(want_step):
        return
    _drill_paused = True
    gate = Path(folder)
    # Written under a temporary name and renamed: the test polls for the file and must never read it half-written.
    marker = gate / f"paused.rank{os.environ.get('RANK', '0')}"
    partial = marker.with_name(marker.name + ".part")
    partial.write_text(f"{epoch} {step_in_epoch}\n")
    partial.replace(marker)
    log.warning("%s: paused before the save at epoch %d, step %d until %s exists", DRILL_PAUSE_ENV, epoch,
                step_in_epoch, gate / "go")
    while not (gate / "go").exists():
        time.sleep(0.02)


@contextlib.contextmanager
def on_sigterm(handler: Callable[..., None]) -> Iterator[None]:
    """``handler`` answers SIGTERM (e.g. a SLURM walltime) inside the block; only the main thread may set it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
