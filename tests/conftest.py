"""Shared fixtures. Real-data tests read ../shared/data and tool tests need KenLM; they skip when those are absent
(a user's clone), but HATL_REQUIRE_REAL_DATA=1 (set by scripts/run_tests.sh when CI=true) turns every such skip
into a failure. :func:`skip_or_fail` is that one guard: every data or tool skip goes through it."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HATL_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
_RUNNING: list[pytest.Item] = []  # the test being run, for the real_data marker check
# The files that take longest (measured 2026-12-05 on 2 cores: 290, 265, 140, 125, 80 s), longest first. Under
# scripts/run_tests.sh's two xdist workers (whole files each) they start first, so the short files fill in beside
# them instead of one long file running alone at the end; test_slurm.py mostly waits on the scheduler.
LONGEST_FILES_FIRST = ("test_slurm.py", "test_failure_drills.py", "test_ddp.py", "test_config_overlays.py",
                       "test_learning_ladder.py")


def nothing_may_skip() -> bool:
    """CI must run every test: data and tools are there, so a skip would hide a failure."""
    return os.environ.get("HATL_REQUIRE_REAL_DATA") == "1" or os.environ.get("CI") == "true"


def skip_or_fail(reason: str) -> NoReturn:
    """Skip with ``reason`` on a user's machine; fail under CI (HATL_REQUIRE_REAL_DATA=1 or CI=true)."""
    if nothing_may_skip():
        pytest.fail(f"HATL_REQUIRE_REAL_DATA=1 / CI, but {reason}")
    pytest.skip(reason)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: position for position, name in enumerate(LONGEST_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: files stay whole and in order


@pytest.fixture(autouse=True)
def _running_test(request: pytest.FixtureRequest):
    _RUNNING.append(request.node)
    yield
    _RUNNING.pop()


def real_data_path(*parts: str) -> Path:
    """Path under ../shared/data, or skip (fail in CI) when it is missing. The calling test must carry
    ``@pytest.mark.real_data`` (so ``-m 'not real_data'`` really leaves out every test that reads it)."""
    node = _RUNNING[-1] if _RUNNING else None  # None inside a module-scoped fixture
    if node is not None and node.get_closest_marker("real_data") is None:
        pytest.fail(f"{node.nodeid} reads ../shared/data but is not marked @pytest.mark.real_data")
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        skip_or_fail(f"real data not found at {path} (../shared/data is absent in a user's clone)")
    return path


def require_kenlm(tools: bool = True) -> ModuleType:
    """The kenlm module and, with ``tools``, KenLM's lmplz/build_binary; scripts/setup.sh installs both."""
    try:
        import kenlm
    except ImportError:
        skip_or_fail("the kenlm Python module is not installed (bash scripts/setup.sh installs it)")
    if tools:
        from hatl.lm import KenLMNotFoundError, find_tool

        try:
            find_tool("lmplz")
            find_tool("build_binary")
        except KenLMNotFoundError as err:
            skip_or_fail(f"KenLM's lmplz/build_binary are not installed: {err}")
    return kenlm


@pytest.fixture
def shared_data() -> Path:
    return real_data_path()


@pytest.fixture
def kenlm_tools() -> ModuleType:
    """KenLM's module and command-line tools (skip locally when absent, fail under CI)."""
    return require_kenlm(tools=True)


@pytest.fixture(scope="session")
def kenlm_module() -> ModuleType:
    """KenLM's Python module alone (enough to load an ARPA file)."""
    return require_kenlm(tools=False)


@pytest.fixture
def one_torch_thread():
    """One torch thread for tests on tiny tensors: thread hand-off costs more than it saves, and CI shares
    its 2 cores with other jobs. Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
