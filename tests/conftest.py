"""Shared fixtures. Real-data tests read ../shared/data; they skip when it is absent (a user's clone),
but HATL_REQUIRE_REAL_DATA=1 (set by CI) turns that skip into a failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HATL_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def real_data_path(*parts: str) -> Path:
    """Path under ../shared/data, or skip (fail in CI) when it is missing."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        reason = f"real data not found at {path} (../shared/data is absent in a user's clone)"
        if os.environ.get("HATL_REQUIRE_REAL_DATA") == "1":
            pytest.fail(f"HATL_REQUIRE_REAL_DATA=1 but {reason}")
        pytest.skip(reason)
    return path


@pytest.fixture
def shared_data() -> Path:
    return real_data_path()


@pytest.fixture
def one_torch_thread():
    """One torch thread for tests on tiny tensors: thread hand-off costs more than it saves, and CI shares
    its 2 cores with other jobs. Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
