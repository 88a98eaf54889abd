"""GPU claiming by lock file: concurrent trainings on one workstation get distinct GPUs (no GPU needed)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from hatl.train.gpu_claim import claim_gpu, should_claim


def test_claim_only_when_several_gpus_and_none_assigned() -> None:
    assert should_claim(2, {})
    assert not should_claim(1, {})
    assert not should_claim(4, {"CUDA_VISIBLE_DEVICES": "1"})
    assert not should_claim(4, {"LOCAL_RANK": "0"})  # torchrun assigns devices itself


def test_concurrent_processes_get_distinct_gpus_and_release_on_exit(tmp_path: Path) -> None:
    holder = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from hatl.train.gpu_claim import claim_gpu
        print(claim_gpu(2, Path({str(tmp_path)!r})), flush=True)
        sys.stdin.readline()
        """
    )
    first = subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "0"
        assert claim_gpu(2, tmp_path) == 1  # GPU 0 is held by the other process
        assert claim_gpu(2, tmp_path) is None  # both held (the second by this process)
    finally:
        first.communicate("\n", timeout=30)
    out = subprocess.run([sys.executable, "-c", holder], input="\n", capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "0"  # released when the first process ended
