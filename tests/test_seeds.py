"""Training seeds as an experiment axis (issue 17): the config key, the settings a train job reruns on, and the
DAG's one run per seed (a dry run)."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hatl.cli import CONFIG_READS
from hatl.config import load_config, read_settings, training_seeds, validate_config
from hatl.errors import ConfigError
REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config" / "config.yaml"
BIN = Path(sys.executable).parent


def _snakemake() -> str:
    path = BIN / "snakemake"
    found = str(path) if path.exists() else shutil.which("snakemake")
    if not found:
        pytest.fail("snakemake is not installed (scripts/setup.sh installs it)")
    return found


@pytest.fixture(scope="module")
def config() -> dict:
    return load_config(CONFIG)


def test_one_seed_by_default_the_top_level_one(config):
    assert config["training"]["seeds"] is None
    assert training_seeds(config) == [config["seed"]]
    three = copy.deepcopy(config)
    three["training"]["seeds"] = [5, 1, 9]
    assert training_seeds(validate_config(three)) == [5, 1, 9]  # the configured order


@pytest.mark.parametrize("seeds, problem", [([], "should be non-empty"), ([1, 1], "non-unique"), ([-3], "less than the minimum"),
                                            (["a"], "is not of type 'integer'")])
def test_bad_seed_lists_are_refused_by_the_schema(config, seeds, problem):
    bad = copy.deepcopy(config)
    bad["training"]["seeds"] = seeds
    with pytest.raises(ConfigError, match="training.seeds") as err:
        validate_config(bad)
    assert problem in str(err.value)


def test_adding_a_seed_does_not_change_what_existing_train_jobs_depend_on(config):
    """The seed list is an axis (each job's seed is its folder), not a setting: a fourth seed must not rerun
    the first three, while any other training value still does."""
    base = copy.deepcopy(config)
    base["training"]["seeds"] = [1, 2, 3]
    more = copy.deepcopy(base)
    more["training"]["seeds"] = [1, 2, 3, 4]
    ds = next(iter(config["datasets"]))
    assert read_settings(base, CONFIG_READS["train"], ds) == read_settings(more, CONFIG_READS["train"], ds)
    assert "seeds" not in read_settings(base, CONFIG_READS["train"], ds)["training"]
    assert base["training"]["seeds"] == [1, 2, 3]  # the config itself is untouched
    other = copy.deepcopy(base)
    other["training"]["optimizer"]["eps"] *= 2
    assert read_settings(base, CONFIG_READS["train"], ds) != read_settings(other, CONFIG_READS["train"], ds)


def test_dry_run_has_one_train_decode_score_per_seed(tmp_path: Path) -> None:
    """With training.seeds [11, 22, 33] every run of Table 5 (and each cross-validation fold of Table 7) is
    trained once per seed, into .../<fold>/seed<N>, with `hatl train --seed N`; decode and score follow."""
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    config["training"]["seeds"] = [11, 22, 33]
    config["datasets"]["medasl"]["cross_validation"]["run_folds"] = [0, 2]
    work = tmp_path / "wf"
    (work / "config").mkdir(parents=True)
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    for name in ("Snakefile", "rules", "workflow", "envs"):
        (work / name).symlink_to(REPO / name, target_is_directory=(REPO / name).is_dir())
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run([_snakemake(), "-n", "-p", "--cores", "1", "results/table5.csv", "results/table7.csv"],
                            cwd=work, env=env, capture_output=True, text=True, timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    commands = [line.split("Shell command:", 1)[1].strip() for line in out.splitlines() if "Shell command:" in line]
    train = [c for c in commands if c.startswith("hatl train ")]
    runs = {}
    for command in train:
        match = re.search(r"--dataset (\S+) --model (\S+) --task (\S+) --strategy (\S+) --fold (\S+) --seed (\d+) .*"
                          r"--out-dir (\S+) --resume-dir (\S+)", command)
        assert match, command
        ds, model, task, strategy, fold, seed, out_dir, resume = match.groups()
        assert out_dir == f"results/runs/{ds}/{model}/{task}/{strategy}/{fold}/seed{seed}"
        assert resume == f"resume/{ds}/{model}/{task}/{strategy}/{fold}/seed{seed}"
        runs.setdefault((ds, model, task, strategy, fold), []).append(int(seed))
    assert runs and all(sorted(seeds) == [11, 22, 33] for seeds in runs.values()), runs
    assert {key[4] for key in runs if key[0] == "medasl"} == {"fold0", "fold2"}
    decode = [c for c in commands if c.startswith("hatl decode ")]
    score = [c for c in commands if c.startswith("hatl score ")]
    assert len(decode) == len(score) == len(train)
    assert all(re.search(r"--run-dir results/runs/\S+/seed(11|22|33) ", c) for c in decode)
    table5 = next(c for c in commands if c.startswith("hatl table ") and "--table 5" in c)
    assert len(re.findall(r"/seed\d+/scores\.json", table5)) == 3 * sum(1 for k in runs if k[0] == "phoenix14t")


def test_phoenix_bench_runs_each_seed_in_its_run_folder_and_reports_mean_and_sd(tmp_path: Path) -> None:
    from helpers import load_bench

    bench = load_bench("phoenix_gloss2text")
    example = REPO / "config" / "examples" / "phoenix14t_gloss2text.yaml"
    assert bench.chosen_seeds(example, None) == [1234, 1235, 1236]
    assert bench.chosen_seeds(example, 2) == [1234, 1235] and bench.chosen_seeds(example, 4)[-1] == 1237
    train = bench.stage_commands(example, tmp_path, 1, 1235)["train"]
    assert train[train.index("--seed") + 1] == "1235"
    out_dir = Path(train[train.index("--out-dir") + 1])
    assert out_dir == tmp_path / "runs" / "phoenix14t" / "transformer" / "gloss2text" / "full" / "main" / "seed1235"
    assert Path(train[train.index("--resume-dir") + 1]).name == "seed1235"
    block = {"bleu1": 50.0, "bleu2": 40.0, "bleu3": 30.0, "bleu4": 24.0, "rouge": 48.0}
    per_seed = {s: bench.seed_values({"splits": {"dev": block, "test": {**block, "bleu4": b4, "nolm": {**block, "bleu4": b4 + 1}}}})
                for s, b4 in ((1, 24.0), (2, 25.0), (3, 26.0))}
    lines = bench.seeds_table(per_seed)
    no_lm_mean = next(line for line in lines if line.startswith("test, no LM mean (3 seeds)"))
    assert "26.00 ± 1.00" in no_lm_mean  # BLEU-4 25, 26, 27: mean 26, sample sd 1
    assert any(line.startswith("test + KenLM seed 2") and "25.00" in line for line in lines)


def test_hatl_train_seed_is_the_run_seed_repeatable_and_recorded(tmp_path: Path) -> None:
    """`hatl train --seed N` trains with N (not the top-level seed): the same seed twice gives the same weights
    (one machine, one thread), another seed other weights; summary.json and best.pt name the seed folder."""
    import torch

    from hatl.cli import main as hatl_main
    from test_train_data import tiny_run_inputs

    torch.set_num_threads(1)
    inp = tiny_run_inputs(tmp_path, training={"max_epochs": 1})

    def train(seed: int, name: str) -> Path:
        out = tmp_path / name / "runs" / "tiny" / "transformer" / "gloss2text" / "full" / "main" / f"seed{seed}"
        assert hatl_main(["train", "--config", str(inp["config_path"]), "--dataset", "tiny", "--model", "transformer",
                          "--task", "gloss2text", "--strategy", "full", "--data-dir", str(inp["data_dir"]),
                          "--vocab-dir", str(inp["vocab_dir"]), "--out-dir", str(out),
                          "--resume-dir", str(tmp_path / name / "resume"), "--threads", "1", "--seed", str(seed)]) == 0
        return out

    first, again, other = train(7, "a"), train(7, "b"), train(8, "c")
    summary = json.loads((first / "summary.json").read_text(encoding="utf-8"))
    assert summary["seed"] == "seed7" and summary["fold"] == "main"
    weights = {name: torch.load(run / "best.pt", map_location="cpu", weights_only=False) for name, run in
               (("first", first), ("again", again), ("other", other))}
    assert weights["first"]["run"]["seed"] == "seed7" and weights["first"]["config"]["seed"] == 7
    state_a, state_b, state_c = (weights[k]["model_state"] for k in ("first", "again", "other"))
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert any(not torch.equal(state_a[k], state_c[k]) for k in state_a)
