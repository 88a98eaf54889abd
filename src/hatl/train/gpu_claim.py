"""One GPU per training process on a multi-GPU workstation.

Snakemake counts GPUs (``--resources gpu=N`` runs N trainings at once) but never tells a job which GPU to use,
so without this every concurrent training would land on ``cuda:0``. A process that sees several GPUs and was
given none (``CUDA_VISIBLE_DEVICES`` unset, not launched by torchrun) claims the first GPU whose lock file it
can lock; the lock is held by the open file and released by the kernel when the process ends, also on SIGKILL.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

_held: list[IO[bytes]] = []  # open lock files: closing one would release its GPU


def lock_dir() -> Path:
    return Path(os.environ.get("HATL_GPU_LOCK_DIR", Path(tempfile.gettempdir()) / "hatl-gpu-locks"))


def should_claim(device_count: int, environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    given = "CUDA_VISIBLE_DEVICES" in env or "LOCAL_RANK" in env
    return device_count > 1 and not given


def claim_gpu(device_count: int, directory: Path | None = None) -> int | None:
    """Index of a GPU no other hatl process holds, locked until this process exits; None if all are taken."""
    directory = lock_dir() if directory is None else directory
    directory.mkdir(parents=True, exist_ok=True)
    for index in range(device_count):
        handle = open(directory / f"gpu{index}.lock", "ab")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _held.append(handle)
        log.info("claimed GPU %d (lock %s)", index, handle.name)
        return index
    log.warning("all %d GPUs are claimed by other hatl processes; sharing GPU 0", device_count)
    return None
