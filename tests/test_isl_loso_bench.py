"""bench/isl_loso.py: scoring stream ensembles from the saved held-out softmax, without training again."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import load_bench


@pytest.fixture(scope="module")
def bench():
    return load_bench("isl_loso")


def test_ensembles_average_the_saved_softmax_of_every_stream_subset(bench, tmp_path):
    truth = np.array([0, 1, 1])
    np.save(tmp_path / "ann.truth.npy", truth)
    # joint gets samples 0 and 1 right, motion gets 1 and 2; their mean is sure on 1 and leans right on 0 and 2
    np.save(tmp_path / "ann.joint.npy", np.array([[0.9, 0.1], [0.4, 0.6], [0.6, 0.4]], np.float32))
    np.save(tmp_path / "ann.motion.npy", np.array([[0.4, 0.6], [0.2, 0.8], [0.1, 0.9]], np.float32))
    table = bench.ensemble_accuracies(tmp_path)
    assert table == {"ann": {"joint": pytest.approx(2 / 3), "motion": pytest.approx(2 / 3),
                             "joint+motion": pytest.approx(1.0)}}


def test_ensembles_refuse_an_empty_folder(bench, tmp_path):
    with pytest.raises(SystemExit, match="no saved softmax"):
        bench.print_ensembles(tmp_path)
