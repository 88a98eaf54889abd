"""The one CI guard in tests/conftest.py: a missing data set or tool skips on a user's machine, fails under CI,
and a test that reads ../shared/data must say so with the real_data marker."""

from __future__ import annotations

import sys

import pytest

import conftest
from hatl import lm


@pytest.fixture
def on_a_users_machine(monkeypatch):
    monkeypatch.delenv("HATL_REQUIRE_REAL_DATA", raising=False)
    monkeypatch.delenv("CI", raising=False)


@pytest.fixture
def without_kenlm_tools(monkeypatch):
    def missing(name):
        raise lm.KenLMNotFoundError(f"KenLM's `{name}` was not found")

    monkeypatch.setattr(lm, "find_tool", missing)


def test_missing_kenlm_module_skips_locally_and_fails_in_ci(monkeypatch, on_a_users_machine):
    monkeypatch.setitem(sys.modules, "kenlm", None)  # `import kenlm` now raises ImportError
    with pytest.raises(pytest.skip.Exception, match="kenlm Python module is not installed"):
        conftest.require_kenlm(tools=False)
    for var, value in (("HATL_REQUIRE_REAL_DATA", "1"), ("CI", "true")):
        monkeypatch.setenv(var, value)
        with pytest.raises(pytest.fail.Exception, match="HATL_REQUIRE_REAL_DATA=1 / CI, but the kenlm Python module"):
            conftest.require_kenlm(tools=False)
        monkeypatch.delenv(var)


def test_missing_kenlm_tools_skip_locally_and_fail_in_ci(monkeypatch, on_a_users_machine, without_kenlm_tools):
    pytest.importorskip("kenlm", reason="the module case is tested above; this one needs the module present")
    assert conftest.require_kenlm(tools=False).__name__ == "kenlm"
    with pytest.raises(pytest.skip.Exception, match="lmplz/build_binary are not installed"):
        conftest.require_kenlm()
    monkeypatch.setenv("HATL_REQUIRE_REAL_DATA", "1")
    with pytest.raises(pytest.fail.Exception, match="lmplz/build_binary are not installed"):
        conftest.require_kenlm()


@pytest.mark.real_data
def test_missing_real_data_skips_locally_and_fails_in_ci(monkeypatch, tmp_path, on_a_users_machine):
    monkeypatch.setattr(conftest, "SHARED_DATA", tmp_path)
    (tmp_path / "here").mkdir()
    assert conftest.real_data_path("here") == tmp_path / "here"
    with pytest.raises(pytest.skip.Exception, match="real data not found"):
        conftest.real_data_path("medasl")
    monkeypatch.setenv("HATL_REQUIRE_REAL_DATA", "1")
    with pytest.raises(pytest.fail.Exception, match="real data not found"):
        conftest.real_data_path("medasl")


def test_reading_real_data_without_the_marker_fails(monkeypatch, tmp_path):
    monkeypatch.setattr(conftest, "SHARED_DATA", tmp_path)
    with pytest.raises(pytest.fail.Exception, match=r"test_reading_real_data_without_the_marker_fails reads "
                                                     r"\.\./shared/data but is not marked @pytest\.mark\.real_data"):
        conftest.real_data_path()
