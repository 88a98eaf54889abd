"""bench/isl_loso.py: scoring stream ensembles from the saved held-out softmax, without training again; and
bench/isl_loso_grid.sh, which runs it for many folds at once."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import real_data_path
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


def test_turned_views_turn_about_the_vertical_only(bench):
    x = np.random.default_rng(0).normal(size=(2, 4, 20, 3)).astype(np.float32)
    assert np.array_equal(bench.turned(x, 0.0), x)
    quarter = bench.turned(x, np.pi / 2)
    np.testing.assert_allclose(quarter[..., 1], x[..., 1], atol=1e-6)  # heights kept
    np.testing.assert_allclose(np.linalg.norm(quarter, axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-5)
    np.testing.assert_allclose(quarter[..., 0], x[..., 2], atol=1e-6)  # a quarter turn brings depth onto x


def _tiny_signs(bench, frames: int = 8):
    rng = np.random.default_rng(1)
    n = 12  # 2 signers x 3 signs x 2 takes; sign k moves joint 11 (the right hand) along axis k
    y = np.tile(np.repeat(np.arange(3), 2), 2)
    x = rng.normal(scale=0.05, size=(n, frames, 20, 3)).astype(np.float32)
    for i, k in enumerate(y):
        x[i, :, 11, k] += np.linspace(0, 1, frames, dtype=np.float32)
    signers = np.repeat(["ann", "bo"], 6)
    return bench.sup.SignSet(x, y, signers, ["a", "b", "c"], [f"s{i}" for i in range(n)])


def test_signing_space_gives_each_signers_median_arm_heights(bench):
    signs = _tiny_signs(bench)
    names = list(bench.kinect20_graph().joint_names)
    wrist = names.index("pose.right_wrist")
    signs.x[:6, :, wrist, 1] = 0.5  # ann holds the right wrist half a shoulder width up, bo lower
    signs.x[6:, :, wrist, 1] = np.linspace(-1.0, -0.2, 6)[:, None]
    table = bench.signing_space(signs, bench.kinect20_graph())
    assert list(table) == ["ann", "bo"] and list(table["ann"]) == list(bench.SPACE_JOINTS)
    assert table["ann"]["pose.right_wrist"] == pytest.approx(0.5)
    assert table["bo"]["pose.right_wrist"] == pytest.approx(-0.6)  # the median of the six samples' means


def test_every_variant_is_saved_per_held_out_signer_and_a_saved_stream_is_not_trained_again(bench, tmp_path,
                                                                                             monkeypatch):
    signs = _tiny_signs(bench)
    cfg = bench.sup.SupervisedConfig(frames=8, epochs=1, batch_size=4, lr=0.01, test_crops=1, streams=("joint",))
    arch = bench.STGCNPPConfig(base_channels=8)
    bench.train_variants(signs, arch, cfg, 0, ["ann"], tmp_path)
    assert (tmp_path / "models" / "ann.joint.pt").exists()
    for variant in bench.VARIANTS:
        probs = np.load(tmp_path / variant / "ann.joint.npy")
        assert probs.shape == (6, 3)
        np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
        assert np.array_equal(np.load(tmp_path / variant / "ann.truth.npy"), signs.y[:6])
    # the adapted BatchNorm statistics come from the held-out signer's samples, so its softmax differs
    assert not np.allclose(np.load(tmp_path / "plain" / "ann.joint.npy"), np.load(tmp_path / "adabn" / "ann.joint.npy"))

    def refuse(*args, **kwargs):
        raise AssertionError("a stream saved under every variant was trained again")
    monkeypatch.setattr(bench.sup, "fit", refuse)
    bench.train_variants(signs, arch, cfg, 0, ["ann"], tmp_path)


def test_averaged_weights_are_kept_with_the_same_runs_last_weights_beside_them(bench, tmp_path):
    signs = _tiny_signs(bench)
    cfg = bench.sup.SupervisedConfig(frames=8, epochs=2, batch_size=4, lr=0.01, test_crops=1, streams=("joint",))
    arch = bench.STGCNPPConfig(base_channels=8)
    bench.train_variants(signs, arch, cfg, 0, ["ann"], tmp_path / "off")
    bench.train_variants(signs, arch, replace(cfg, average_from=0.5), 0, ["ann"], tmp_path / "on")
    last = tmp_path / "on" / bench.LAST_WEIGHTS
    for variant in bench.VARIANTS:  # the last weights are those of the run without averaging: the same softmax
        assert np.array_equal(np.load(last / variant / "ann.joint.npy"),
                              np.load(tmp_path / "off" / variant / "ann.joint.npy"))
    assert (last / "models" / "ann.joint.pt").exists() and (tmp_path / "on" / "models" / "ann.joint.pt").exists()
    assert not np.array_equal(np.load(tmp_path / "on" / "plain" / "ann.joint.npy"),
                              np.load(tmp_path / "off" / "plain" / "ann.joint.npy"))


def test_enrolment_scores_the_kept_models_on_the_samples_outside_the_enrolment_set(bench, tmp_path):
    signs = _tiny_signs(bench)
    cfg = bench.sup.SupervisedConfig(frames=8, epochs=1, batch_size=4, lr=0.01, test_crops=1, streams=("joint", "bone"))
    arch = bench.STGCNPPConfig(base_channels=8)
    bench.train_variants(signs, arch, cfg, 0, ["bo"], tmp_path)
    table = bench.enrolment_accuracies(signs, arch, cfg, tmp_path, 2, 0)
    assert list(table) == ["bo"]  # ann has no kept models, so it is left out
    for value in table["bo"].values():  # accuracies over the 4 samples outside the enrolment set
        assert value in (0.0, 0.25, 0.5, 0.75, 1.0)
    # "plain" is the saved plain ensemble's accuracy on exactly the samples left outside the enrolment set
    rest = np.random.default_rng(0).permutation(np.arange(6, 12))[2:] - 6  # bo's rows in the saved softmax
    saved = np.load(tmp_path / "plain" / "bo.joint.npy") + np.load(tmp_path / "plain" / "bo.bone.npy")
    assert table["bo"]["plain"] == pytest.approx(float((saved[rest].argmax(1) == signs.y[6:][rest]).mean()))
    with pytest.raises(ValueError, match="enrolment size 1"):
        bench.enrolment_accuracies(signs, arch, cfg, tmp_path, 1, 0)


def test_sample_statistics_wrap_every_batchnorm_of_a_copy_and_leave_the_model_as_it_was(bench, tmp_path):
    import torch
    signs = _tiny_signs(bench)
    cfg = bench.sup.SupervisedConfig(frames=8, epochs=1, batch_size=4, lr=0.01, test_crops=1, streams=("joint",))
    arch = bench.STGCNPPConfig(base_channels=8)
    bench.train_variants(signs, arch, cfg, 0, ["ann"], tmp_path)
    model = bench.load_model(tmp_path / "models" / "ann.joint.pt", bench.kinect20_graph(), arch, 3, "joint", cfg)
    wrapped = bench.with_sample_statistics(model, 16.0)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    mixed = [m for m in wrapped.modules() if isinstance(m, bench.sup.SampleMixedNorm)]
    assert len(mixed) == len(norms) > 1 and {m.own_weight for m in mixed} == {1 / 17} and not wrapped.training
    assert not any(isinstance(m, bench.sup.SampleMixedNorm) for m in model.modules())
    # a model trained with sample_statistics comes back as it was trained
    trained_mixed = bench.load_model(tmp_path / "models" / "ann.joint.pt", bench.kinect20_graph(), arch, 3, "joint",
                                     replace(cfg, sample_statistics=0.2))
    assert {m.own_weight for m in trained_mixed.modules() if isinstance(m, bench.sup.SampleMixedNorm)} == {0.2}
    assert bench.sample_norm_accuracies(signs, arch, cfg, tmp_path, [16.0], only=["bo"]) == {}  # no kept models
    table = bench.sample_norm_accuracies(signs, arch, cfg, tmp_path, [16.0])
    assert list(table) == ["ann"] and list(table["ann"]) == ["plain", "sample_norm_N16"]
    probs = np.load(tmp_path / "sample_norm_N16" / "ann.joint.npy")  # kept as a variant of its own for --seeds
    assert table["ann"]["sample_norm_N16"][0] == pytest.approx(float((probs.argmax(1) == signs.y[:6]).mean()))
    saved = np.load(tmp_path / "plain" / "ann.joint.npy")
    assert table["ann"]["plain"] == (pytest.approx(float((saved.argmax(1) == signs.y[:6]).mean())),
                                     len(set(saved.argmax(1).tolist())))


def test_seed_ensembles_average_the_streams_of_every_seed_and_leave_out_incomplete_signers(bench, tmp_path):
    first, second = tmp_path / "seed1", tmp_path / "seed2"
    for folder in (first / "plain", second / "plain"):
        folder.mkdir(parents=True)
        np.save(folder / "ann.truth.npy", np.array([0, 1]))
    np.save(first / "plain" / "bo.truth.npy", np.array([0]))
    np.save(first / "plain" / "bo.joint.npy", np.array([[1.0, 0.0]], np.float32))  # bo has no second seed
    # seed 1 gets sample 0 wrong by a little, seed 2 gets it right by a lot; both get sample 1 right
    np.save(first / "plain" / "ann.joint.npy", np.array([[0.45, 0.55], [0.1, 0.9]], np.float32))
    np.save(second / "plain" / "ann.joint.npy", np.array([[0.9, 0.1], [0.3, 0.7]], np.float32))
    joint = ("joint",)
    assert bench.seed_ensemble_accuracies([(first, joint), (second, joint)], "plain") == {"ann": (1.0, 2)}
    assert bench.seed_ensemble_accuracies([(first, joint)], "plain") == {"ann": (0.5, 1), "bo": (1.0, 1)}
    # a stream not saved yet (a run under way) leaves the signer out rather than scoring fewer streams
    np.save(first / "plain" / "ann.bone.npy", np.array([[0.0, 1.0], [0.0, 1.0]], np.float32))
    both = ("joint", "bone")
    assert bench.seed_ensemble_accuracies([(first, both)], "plain") == {"ann": (0.5, 1)}
    assert bench.seed_ensemble_accuracies([(first, both), (second, both)], "plain") == {}
    # each run may bring its own streams: seed 1's bone beside seed 2's joint
    assert bench.seed_ensemble_accuracies([(first, ("bone",)), (second, joint)], "plain") == {"ann": (0.5, 1)}


def test_saved_ensembles_are_combined_by_the_rule_asked(bench, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    np.save(plain / "ann.truth.npy", np.array([1]))
    # joint is sure of sign 0, bone all but rules it out: only the geometric mean settles on sign 1, the true one
    np.save(plain / "ann.joint.npy", np.array([[0.8, 0.2, 0.0]], np.float32))
    np.save(plain / "ann.bone.npy", np.array([[0.0001, 0.3, 0.6999]], np.float32))
    runs = [(tmp_path, ("joint",)), (tmp_path, ("bone",))]
    assert bench.seed_ensemble_accuracies(runs, "plain") == {"ann": (0.0, 1)}
    assert bench.seed_ensemble_accuracies(runs, "plain", "geometric") == {"ann": (1.0, 1)}
    assert bench.ensemble_accuracies(plain, "geometric")["ann"]["joint+bone"] == 1.0
    assert bench.ensemble_accuracies(plain)["ann"]["joint+bone"] == 0.0


def test_a_run_names_its_own_streams_after_a_colon_and_an_unknown_stream_is_refused(bench):
    assert bench.parse_run("runs/bone", ("joint", "motion")) == (Path("runs/bone"), ("joint", "motion"))
    assert bench.parse_run("runs/bone:bone", ("joint",)) == (Path("runs/bone"), ("bone",))
    assert bench.parse_run("c:/runs/jm:joint,motion+bone", ("joint",)) == (Path("c:/runs/jm"), ("joint", "motion+bone"))
    with pytest.raises(SystemExit, match="runs/x:bones: unknown or repeated input stream in 'bones'"):
        bench.parse_run("runs/x:bones", ("joint",))


def test_seed_table_leaves_out_a_variant_that_not_every_run_saved(bench, tmp_path, capsys):
    first, second = tmp_path / "seed1", tmp_path / "seed2"
    for folder, variant in ((first, "plain"), (second, "plain"), (first, "sample_norm_N16")):
        (folder / variant).mkdir(parents=True, exist_ok=True)
        np.save(folder / variant / "ann.truth.npy", np.array([0, 1]))
        np.save(folder / variant / "ann.joint.npy", np.array([[0.9, 0.1], [0.2, 0.8]], np.float32))
    bench.print_seed_ensembles([(first, ("joint",)), (second, ("joint",))])
    out = capsys.readouterr().out
    assert "not scored (no held-out signer saved in every run): sample_norm_N16" in out
    assert "nan" not in out and "| mean | 1.0000 (1 signers) |" in out


def test_setting_chosen_on_the_other_folds_never_reads_the_held_out_signers_own_score(bench):
    # N4 is best for ann alone; N16 is best on bo and cy. ann must still get N16 (chosen on bo and cy), and so do
    # bo (chosen on ann and cy: mean 0.65 under N4, 0.70 under N16) and cy (0.60 against 0.65)
    tables = {"sample_norm_N4": {"ann": (1.0, 3), "bo": (0.2, 2), "cy": (0.3, 2)},
              "sample_norm_N16": {"ann": (0.5, 2), "bo": (0.8, 3), "cy": (0.9, 3), "dee": (1.0, 1)}}
    picked = bench.chosen_on_other_folds(tables)
    assert picked == {"ann": ("sample_norm_N16", 0.5, 2), "bo": ("sample_norm_N16", 0.8, 3),
                      "cy": ("sample_norm_N16", 0.9, 3)}  # dee is not in every table: left out
    # where the other folds prefer N4, the held-out signer gets N4 even if N16 would score it higher
    tables["sample_norm_N4"]["bo"] = (0.95, 3)
    tables["sample_norm_N4"]["cy"] = (0.95, 3)
    assert bench.chosen_on_other_folds(tables)["ann"] == ("sample_norm_N4", 1.0, 3)
    assert bench.chosen_on_other_folds(tables)["bo"][0] == "sample_norm_N4"


@pytest.mark.real_data
def test_grid_script_trains_each_point_and_signer_and_scores_it_with_prediction_time_batchnorm(tmp_path):
    """bench/isl_loso_grid.sh on the shared 300-file subset: one held-out signer, one width:seed point, a one-epoch
    recipe. The point's --variants folder gets the model, every variant's softmax and the N = 16 softmax; training
    used the other nine signers (270 samples), not only the held-out one's."""
    folder = real_data_path("isl_kinect", "RawDataset")
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run(
        ["bash", str(root / "bench" / "isl_loso_grid.sh"), str(folder), str(tmp_path), "--points", "8:0",
         "--signers", "rajat", "--jobs", "1", "--streams", "joint", "--device", "cpu",
         "--", "--set", "epochs=1", "--set", "frames=8", "--set", "test_crops=1"],
        env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "width 8 seed 0 held out rajat: exit 0" in run.stderr
    point = tmp_path / "w8_s0"
    assert (point / "models" / "rajat.joint.pt").exists()
    for variant in ("plain", "turns", "adabn", "adabn_turns", "sample_norm_N16"):
        probs = np.load(point / variant / "rajat.joint.npy")
        assert probs.shape == (30, 30) and np.allclose(probs.sum(1), 1.0, atol=1e-4)
    log = (tmp_path / "logs" / "8_0_rajat.log").read_text()
    assert "300 samples, 30 signs, 10 signers" in log
    assert not (point / "plain" / "apurve.joint.npy").exists()  # only the signer asked for is held out
    bad = subprocess.run(["bash", str(root / "bench" / "isl_loso_grid.sh"), str(folder), str(tmp_path), "--widht", "8"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown option --widht" in bad.stderr
