"""Config overlays and precise reruns, as a user meets them through Snakemake: dropping datasets from an
overlay, demo datasets keeping their own backbone, each rule keyed on the config keys its command reads
(hatl.cli.CONFIG_READS), nested values on the command line, the report on what is built."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from hatl.cli import COMMANDS, CONFIG_READS
from hatl.config import (
    FACETS,
    apply_command_line,
    effective_config,
    load_config,
    load_schema,
    read_settings,
    validate_config,
)
from hatl.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RUN = "results/runs/phoenix14t/transformer/sign2text/hatl/main/seed1234"


def _snakemake(work: Path, *args: str) -> subprocess.CompletedProcess:
    exe = BIN / "snakemake" if (BIN / "snakemake").exists() else shutil.which("snakemake")
    if exe is None:
        pytest.fail("snakemake is not installed (scripts/setup.sh installs it)")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run([str(exe), *args], cwd=work, env=env, capture_output=True, text=True, timeout=600)


def _workdir(root: Path) -> Path:
    """A run directory with the workflow linked in and the shipped config copied (results stay in it)."""
    work = root / "wf"
    (work / "config").mkdir(parents=True)
    shutil.copy(REPO / "config" / "config.yaml", work / "config" / "config.yaml")
    for name in ("Snakefile", "rules", "workflow", "envs"):
        (work / name).symlink_to(REPO / name, target_is_directory=(REPO / name).is_dir())
    return work


def _overlay(work: Path, name: str, text: str) -> str:
    (work / name).write_text(text, encoding="utf-8")
    return name


def _jobs(output: str) -> dict[str, str]:
    """rule -> reason of every job a dry run would run (rule names as printed by `snakemake -n`)."""
    jobs: dict[str, str] = {}
    rule = None
    for line in output.splitlines():
        found = re.match(r"^(?:rule|checkpoint) (\w+):", line)
        if found:
            rule = found.group(1)
            jobs.setdefault(rule, "")
        elif rule and line.strip().startswith("reason:"):
            jobs[rule] = line.strip()
    return jobs


def _shipped() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------ declarations
def test_every_command_declares_the_config_keys_it_reads() -> None:
    assert set(CONFIG_READS) == set(COMMANDS)


def test_every_declared_key_exists_in_the_schema() -> None:
    """A typo in a declaration would key a rule on a value that is always None: never rerun."""
    schema = load_schema()

    def has(node: dict, parts: list[str]) -> bool:
        for part in parts:
            props = node.get("properties", {})
            if part in props:
                node = props[part]
            elif part == "*" or (isinstance(node.get("additionalProperties"), dict) and part not in props):
                node = node["additionalProperties"]
            else:
                return False
        return True

    for command, reads in CONFIG_READS.items():
        for read in reads:
            path, _, facet = read.partition(":")
            parts = path.split(".")
            parts = ["datasets", "*", *parts[1:]] if parts[0] == "dataset" else parts
            assert has(schema, parts), f"{command}: {read} is not a config key"
            assert not facet or facet in FACETS, f"{command}: {read} names an unknown facet"


def test_config_readme_lists_each_commands_reads() -> None:
    """config/README.md's "Reruns" table is the declaration, row for row."""
    text = (REPO / "config" / "README.md").read_text(encoding="utf-8")
    for command, reads in CONFIG_READS.items():
        row = re.search(rf"^\| `hatl {re.escape(command)}` \|[^|]*\|(.*)\|$", text, re.M)
        assert row, f"no row for hatl {command}"
        assert re.findall(r"`([^`]+)`", row.group(1)) == list(reads), command


def test_settings_carry_the_values_a_command_reads_and_nothing_else() -> None:
    config = validate_config(_shipped())
    train = read_settings(config, CONFIG_READS["train"], "phoenix14t")
    assert train["evaluation.bleu"] == config["evaluation"]["bleu"]
    assert train["training"]["max_epochs"] == 20  # the demo override, as the job sees it
    stats = read_settings(config, CONFIG_READS["stats"])
    assert stats["datasets.isharah.domain"] == "Multiple"
    manifest = read_settings(config, CONFIG_READS["manifest"], "isharah")
    assert not any(key.startswith(("dataset.domain", "dataset.language", "dataset.tasks")) for key in manifest)
    vocab = read_settings(config, CONFIG_READS["vocab"], "isharah")
    assert vocab["dataset.tasks:needs"] == ["gloss", "text", "video"]
    # adding a task that needs nothing new of the data leaves the vocabulary's settings as they were
    config["datasets"]["isharah"]["tasks"].append("gloss2text")
    assert read_settings(config, CONFIG_READS["vocab"], "isharah") == vocab


def test_vocab_checks_the_built_manifest_against_the_tasks(tmp_path: Path) -> None:
    """The manifest is not rebuilt when the tasks change, so the tasks' needs are checked where they are read."""
    import pandas as pd

    from hatl.datasets.base import check_manifest_for_tasks
    from hatl.errors import InputError

    rows = pd.DataFrame({"sample_id": ["a", "b"], "gloss": ["REGEN", ""], "text": ["es regnet", "sonne"],
                         "source": ["a.mp4", ""], "n_frames": [40, 0]})
    with pytest.raises(InputError, match=r"m\.parquet.*b.*empty gloss, needed by task\(s\) sign2gloss2text"):
        check_manifest_for_tasks(rows, ["sign2gloss2text"], tmp_path / "m.parquet")
    with pytest.raises(InputError, match=r"b.*annotation-only row.*sign2text"):
        check_manifest_for_tasks(rows, ["sign2text"], tmp_path / "m.parquet")
    check_manifest_for_tasks(rows.iloc[:1], ["sign2gloss2text", "sign2text", "gloss2text"], tmp_path / "m.parquet")


# ------------------------------------------------------------------------------------------ config resolution
def test_null_dataset_is_removed_and_an_empty_set_refused(tmp_path: Path) -> None:
    config = _shipped()
    config["datasets"].update({"isharah": None, "medasl": None})
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    assert list(load_config(path)["datasets"]) == ["phoenix14t"]
    jsonschema.Draft202012Validator(load_schema()).validate(config)  # the schema itself documents null
    config["datasets"]["phoenix14t"] = None
    with pytest.raises(ConfigError, match="every dataset was removed"):
        validate_config(config)


def _with_real_dataset(**backbone) -> dict:
    config = _shipped()
    config["datasets"]["mine"] = {"adapter": "generic", "root": "/nowhere", "fps": 25}
    config["backbone"].update(backbone)
    return validate_config(config)


def test_demo_datasets_keep_their_own_backbone_source() -> None:
    """A user's pyskl checkpoint (base 64) is for real data; the demos (base 8) import their own pretraining."""
    config = _with_real_dataset(checkpoint="pyskl/j.pth", sha256="a" * 64)
    mine, demo = effective_config(config, "mine"), effective_config(config, "isharah")
    assert (mine["backbone"]["checkpoint"], mine["backbone"]["sha256"], mine["backbone"]["base_channels"]) == \
        ("pyskl/j.pth", "a" * 64, 64)
    assert (demo["backbone"]["checkpoint"], demo["backbone"]["sha256"], demo["backbone"]["base_channels"]) == \
        (None, None, 8)
    # a demo given a checkpoint of its own through demo.overrides uses it
    config["demo"]["overrides"]["backbone"]["checkpoint"] = "small.pth"
    assert effective_config(config, "isharah")["backbone"]["checkpoint"] == "small.pth"


def test_run_config_records_the_pretraining_that_built_its_backbone() -> None:
    """A real dataset without a checkpoint imports the demo pretraining output, built by the first demo
    dataset with the demo overrides (epochs 8, max_windows 2048): its view (hatl train writes it to
    summary.json) records those, not the top-level values no job used."""
    config = _with_real_dataset(pretrain_demo={"epochs": 1, "max_windows": 64})
    used = effective_config(config, "mine")["backbone"]["pretrain_demo"]
    assert (used["epochs"], used["max_windows"]) == (8, 2048)
    assert used == effective_config(config, "phoenix14t")["backbone"]["pretrain_demo"]
    assert config["backbone"]["pretrain_demo"]["epochs"] == 1  # the config itself is left alone
    # with its own checkpoint nothing is pretrained for it: its view stays its own
    config["backbone"]["checkpoint"] = "pyskl/j.pth"
    assert effective_config(config, "mine")["backbone"]["pretrain_demo"]["epochs"] == 1


def test_command_line_mappings_get_yaml_types() -> None:
    """`--config 'training={max_epochs: 2}'` reaches the Snakefile as strings (YAML's BaseLoader)."""
    config = validate_config(_shipped())
    apply_command_line(config, {"training": {"max_epochs": "2", "lr": {"encoder": "1.0e-3"}}, "seed": 7,
                                "datasets": {"isharah": "null"}})
    validate_config(config)
    assert config["training"]["max_epochs"] == 2 and config["training"]["lr"]["encoder"] == 0.001
    assert config["training"]["batch_size"] == 32  # merged, not replaced
    assert "isharah" not in config["datasets"]


@pytest.mark.parametrize("streams, valid", [(["joint", "bone"], True), (["joint+motion", "bone+bone_motion"], True),
                                             (["joint+"], False), (["joint+angle"], False), (["velocity"], False)])
def test_the_schema_takes_single_and_plus_joined_streams_only(streams: list[str], valid: bool) -> None:
    config = _shipped()
    config["backbone"]["pretrain"]["supervised"]["streams"] = streams
    if valid:
        validate_config(config)
    else:
        with pytest.raises(ConfigError, match="streams"):
            validate_config(config)


def test_unknown_key_message_names_it_without_dumping_the_schema() -> None:
    config = _shipped()
    config["trainnig"] = {"max_epochs": 2}
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    message = str(err.value)
    assert "'trainnig'" in message and "\n" not in message and len(message) < 400


# ------------------------------------------------------------------------------------------ dry runs
@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One demo dataset whose outputs all exist and are recorded by Snakemake (`--touch`), so dry runs
    show what a config change reruns. The manifest is a checkpoint whose shard column decides the jobs."""
    import pandas as pd

    work = _workdir(tmp_path_factory.mktemp("built"))
    _overlay(work, "one.yaml", "datasets: {isharah: null, medasl: null}\n"
                               "experiments: {models: [transformer], strategies: [hatl]}\n")
    ds = work / "results" / "phoenix14t"
    for folder in ("demo", "normalised"):
        (ds / folder).mkdir(parents=True)
    ds.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"shard": [0], "source_kind": ["demo"]}).to_parquet(ds / "manifest.parquet")
    files = ["splits.tsv", "keypoints/shard-0.parquet", "vocab/main/gloss.json", "vocab/main/text.json",
             "lm/main/text.4gram.arpa", "lm/main/text.4gram.bin", "backbone/stgcnpp.pt", "backbone/import_report.json"]
    paths = [ds / f for f in files] + [work / RUN / f for f in (
        "best.pt", "log.jsonl", "summary.json", "decoded.dev.jsonl", "decoded.test.jsonl", "decoded.summary.json",
        "scores.json")] + [work / "results" / f for f in (
        "pretrained/stgcnpp_demo.pth", "table3.csv", "table3.md", "quality/keypoint_quality.csv",
        "figures/keypoint_quality.png")]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("", encoding="utf-8")
    # --forceall: every job of the DAG is "run" (touched) and so recorded with its params
    result = _snakemake(work, "--configfile", "one.yaml", "--touch", "--forceall", "--cores", "1", *TARGETS)
    assert result.returncode == 0, result.stdout + result.stderr
    result = _snakemake(work, "--configfile", "one.yaml", "-n", "--cores", "1", *TARGETS)
    out = result.stdout + result.stderr
    assert "Nothing to be done" in out and "missing provenance" not in out, out
    return work


TARGETS = ("results/table3.csv", f"{RUN}/scores.json")


def _dry_run(work: Path, overlay: str) -> dict[str, str]:
    _overlay(work, "change.yaml", overlay)
    result = _snakemake(work, "--configfile", "one.yaml", "change.yaml", "-n", "--cores", "1", *TARGETS)
    assert result.returncode == 0, result.stdout + result.stderr
    return _jobs(result.stdout + result.stderr)


def test_changed_domain_reruns_only_table3_stats(built: Path) -> None:
    jobs = _dry_run(built, "datasets: {phoenix14t: {domain: Weather forecasts}}\n")
    assert list(jobs) == ["stats"]
    assert "Params have changed" in jobs["stats"] and "Weather forecasts" in jobs["stats"]


def test_added_task_and_bootstrap_settings_rerun_no_data_or_scoring_job(built: Path) -> None:
    """gloss2text needs nothing of the data that sign2gloss2text does not (glosses, text); bootstrap settings
    are read by tables 5-7 only (score reads evaluation.bleu)."""
    jobs = _dry_run(built, "datasets: {phoenix14t: {tasks: [sign2gloss2text, sign2text, gloss2text]}}\n"
                           "evaluation: {bootstrap: {samples: 50}}\n")
    assert jobs == {}


def test_dropped_gloss_task_rebuilds_no_data(built: Path) -> None:
    """Without a gloss task the data need no glosses: the vocabulary job re-checks the manifest (and what it
    feeds reruns), but the manifest, resize, keypoints and normalisation stay."""
    jobs = _dry_run(built, "datasets: {phoenix14t: {tasks: [sign2text]}}\n")
    assert "Params have changed" in jobs["vocab"] and '"dataset.tasks:needs": ["text", "video"]' in jobs["vocab"]
    assert set(jobs) <= {"vocab", "train", "decode", "score"}


def test_changed_evaluation_bleu_reruns_training(built: Path) -> None:
    """Dev BLEU during training (early stopping, HATL releases, best.pt) is scored with evaluation.bleu."""
    jobs = _dry_run(built, "evaluation: {bleu: {lowercase: true}}\n")
    assert set(jobs) == {"train", "decode", "score"}
    assert "Params have changed" in jobs["train"]
    assert "import_backbone" not in jobs and "vocab" not in jobs


def test_overlay_with_null_datasets_builds_only_the_users(tmp_path: Path) -> None:
    """The embedded demos dropped from an overlay: no demo job, Table 3 over the user's dataset only, and the
    default target (Table 4 included, which falls back to the first dataset without PHOENIX14T) resolves."""
    work = _workdir(tmp_path)
    _overlay(work, "mine.yaml", "datasets: {phoenix14t: null, isharah: null, medasl: null,"
                                " mine: {adapter: generic, root: own, fps: 25}}\n")
    result = _snakemake(work, "--configfile", "mine.yaml", "-n", "-p", "--cores", "1")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "hatl demo-data" not in out
    assert re.search(r"hatl stats .*--datasets mine --manifests results/mine/manifest.parquet --", out)
    assert re.search(r"hatl table --config results/config/mine.yaml --table 4 --dataset mine ", out)
    for dropped in ("phoenix14t", "isharah", "medasl"):
        assert f"results/{dropped}/" not in out


def test_table_without_its_dataset_stops_with_the_reason_and_no_traceback(tmp_path: Path) -> None:
    """Table 6 (and its figures) asked for when the overlay dropped Isharah: one missing input names why."""
    work = _workdir(tmp_path)
    _overlay(work, "mine.yaml", "datasets: {isharah: null}\n")
    for target in ("results/table6.csv", "results/figures/figure3.png"):
        result = _snakemake(work, "--configfile", "mine.yaml", "-n", "--cores", "1", target)
        out = result.stdout + result.stderr
        assert result.returncode != 0
        assert "MissingInputException" in out and "Traceback" not in out and "InputFunctionException" not in out, out
        assert "NOT-CONFIGURED: table 6 reports isharah, which has no dataset in the config" in out, out


def test_user_checkpoint_leaves_the_demo_backbone_alone(tmp_path: Path) -> None:
    work = _workdir(tmp_path)
    (work / "pyskl.pth").write_bytes(b"")
    _overlay(work, "mine.yaml", "backbone: {checkpoint: pyskl.pth}\n"
                                "datasets: {medasl: null, mine: {adapter: generic, root: own, fps: 25}}\n")
    result = _snakemake(work, "--configfile", "mine.yaml", "-n", "-p", "--cores", "1",
                        "results/mine/backbone/stgcnpp.pt", "results/isharah/backbone/stgcnpp.pt")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    imports = dict(re.findall(r"hatl import-backbone --config results/config/(\w+)\.yaml --checkpoint (\S+)", out))
    assert imports == {"mine": "pyskl.pth", "isharah": "results/pretrained/stgcnpp_demo.pth"}
    demo_view = yaml.safe_load((work / "results" / "config" / "isharah.yaml").read_text(encoding="utf-8"))
    assert demo_view["backbone"]["checkpoint"] is None and demo_view["backbone"]["base_channels"] == 8


def test_nested_value_from_the_command_line(tmp_path: Path) -> None:
    work = _workdir(tmp_path)
    result = _snakemake(work, "-n", "--cores", "1", "results/table4.csv",
                        "--config", "training={max_epochs: 2, lr: {encoder: 1.0e-3}}")
    assert result.returncode == 0, result.stdout + result.stderr
    view = yaml.safe_load((work / "results" / "config" / "all.yaml").read_text(encoding="utf-8"))
    assert view["training"]["max_epochs"] == 2 and view["training"]["lr"]["encoder"] == 0.001
    assert view["training"]["batch_size"] == 32
    bad = _snakemake(work, "-n", "--cores", "1", "results/table4.csv", "--config", "training=2")
    tail = (bad.stdout + bad.stderr).strip().splitlines()[-3:]
    assert bad.returncode != 0 and any("config key 'training'" in line and "--configfile" in line for line in tail)


def test_unknown_top_level_key_is_named_in_the_last_lines(tmp_path: Path) -> None:
    work = _workdir(tmp_path)
    _overlay(work, "bad.yaml", "not_a_key: 1\n")
    result = _snakemake(work, "-n", "--configfile", "bad.yaml", "--cores", "1")
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode != 0
    assert len(lines) < 10, "\n".join(lines)
    assert any("config key '<top level>'" in line and "'not_a_key' was unexpected" in line
               for line in lines[-2:]), "\n".join(lines)


def test_report_of_what_is_built(tmp_path: Path) -> None:
    """`make report` gives `snakemake --report` the built paper targets (Table 4 needs no data); with nothing
    built it says so."""
    work = _workdir(tmp_path)
    (work / "Makefile").symlink_to(REPO / "Makefile")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    empty = subprocess.run(["make", "report"], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert empty.returncode != 0 and "nothing built yet" in empty.stderr
    result = _snakemake(work, "--cores", "1", "results/table4.csv")
    assert result.returncode == 0, result.stdout + result.stderr
    result = subprocess.run(["make", "report"], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--report report.html results/table4.csv" in result.stdout
    html = (work / "report.html").read_text(encoding="utf-8", errors="replace")
    assert "table4.csv" in html
