"""The Snakemake workflow itself: lint-clean, snakefmt-formatted, and its DAG resolves every paper target."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed (scripts/setup.sh installs it)")
    return found


def _run(args: list[str], cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_snakemake_lint_is_clean() -> None:
    result = _run([_tool("snakemake"), "--lint"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition" in result.stdout + result.stderr


def test_snakefmt_leaves_the_workflow_unchanged() -> None:
    result = _run([_tool("snakefmt"), "--check", "Snakefile", "rules/"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_dry_run_of_every_paper_target_from_scratch(tmp_path: Path) -> None:
    """From an empty results folder the DAG reaches every table and figure through the checkpoint."""
    work = tmp_path / "wf"
    work.mkdir()
    for name in ("Snakefile", "rules", "workflow", "config", "envs"):
        src = REPO / name
        (work / name).symlink_to(src, target_is_directory=src.is_dir())
    result = _run([_tool("snakemake"), "-n", "--quiet", "rules", "--cores", "1"], cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout + result.stderr
    for rule in ("demo_data", "manifest", "stats", "table4"):
        assert rule in out, f"rule {rule} missing from the dry run:\n{out}"


def test_unknown_config_key_is_refused_at_parse_time(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "config" / "config.yaml").read_text() + "\nnot_a_key: 1\n")
    result = _run([_tool("snakemake"), "-n", "--configfile", str(bad), "--cores", "1"])
    assert result.returncode != 0
    assert "not_a_key" in result.stdout + result.stderr


def test_cross_validation_dry_run_builds_text_models_per_run_fold(tmp_path: Path) -> None:
    """Each run fold gets its own vocabulary and KenLM model (from its training rows only), its runs use them,
    and the demo pretraining on a cross-validation source (`backbone.pretrain_demo.source`) reads only its
    first run fold's training rows."""
    import re

    import yaml

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    config["datasets"]["medasl"]["cross_validation"]["run_folds"] = [0, 2]
    # medasl (not the first demo dataset) named as the demo pretraining source
    config["backbone"]["pretrain_demo"]["source"] = "medasl"
    work = tmp_path / "wf"
    (work / "config").mkdir(parents=True)
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    for name in ("Snakefile", "rules", "workflow", "envs"):
        (work / name).symlink_to(REPO / name, target_is_directory=(REPO / name).is_dir())
    result = _run([_tool("snakemake"), "-n", "-p", "--cores", "1"], cwd=work)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    commands = [line.split("Shell command:", 1)[1].strip() for line in out.splitlines() if "Shell command:" in line]

    def jobs(stage: str) -> list[tuple[str, str]]:
        found = [re.search(r"--dataset (\S+) .*--fold (\S+)", c) for c in commands if c.startswith(f"hatl {stage} ")]
        return sorted(m.groups() for m in found if m)

    expected = [("isharah", "main"), ("medasl", "fold0"), ("medasl", "fold2"), ("phoenix14t", "main")]
    assert jobs("vocab") == expected and jobs("lm") == expected
    assert "--out-dir results/medasl/vocab/fold2 > logs/vocab/medasl/fold2.log" in out
    assert "--out-binary results/medasl/lm/fold2/text.4gram.bin > logs/lm/medasl/fold2.4gram.log" in out
    for fold in ("fold0", "fold2"):
        decode = [c for c in commands if c.startswith("hatl decode") and f"/medasl/transformer/sign2text/hatl/{fold}/seed1234 " in c]
        assert len(decode) == 1, commands
        assert f"--vocab-dir results/medasl/vocab/{fold} --lm results/medasl/lm/{fold}/text.4gram.bin" in decode[0]
        train = [c for c in commands if c.startswith("hatl train") and "--dataset medasl" in c and f"--fold {fold} " in c]
        assert train and all(f"--vocab-dir results/medasl/vocab/{fold} " in c for c in train)
    pretrain = [c for c in commands if c.startswith("hatl pretrain-demo")]
    assert len(pretrain) == 1 and "--data results/medasl/normalised/trainval.parquet --fold fold0" in pretrain[0]


def test_unknown_pretraining_source_is_refused_by_name(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("backbone: {pretrain_demo: {source: no_such_dataset}}\n", encoding="utf-8")
    result = _run([_tool("snakemake"), "-n", "--configfile", str(bad), "--cores", "1", "results/table7.csv"])
    assert result.returncode != 0
    assert "'backbone.pretrain_demo.source': 'no_such_dataset' is not a dataset of this config" in result.stdout + result.stderr


def _clean_workdir(tmp_path: Path) -> Path:
    """A work folder with the workflow linked in and no results/ (a dry run there plans every job)."""
    work = tmp_path / "wf"
    work.mkdir()
    for name in ("Snakefile", "rules", "workflow", "config", "envs"):
        (work / name).symlink_to(REPO / name, target_is_directory=(REPO / name).is_dir())
    return work


def test_supervised_pretraining_feeds_import_backbone(tmp_path: Path) -> None:
    """`backbone.pretrain.method: supervised` puts the isl_kinect stages in front of every import-backbone job."""
    over = tmp_path / "supervised.yaml"
    over.write_text(f"backbone: {{pretrain: {{method: supervised, roots: {{isl_kinect: '{tmp_path}'}}}}}}\n",
                    encoding="utf-8")
    result = _run([_tool("snakemake"), "-n", "-p", "--configfile", str(over), "--cores", "1",
                   "results/phoenix14t/backbone/stgcnpp.pt"], cwd=_clean_workdir(tmp_path))
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    commands = [line[line.index("hatl "):] for line in out.splitlines() if "hatl " in line]
    assert any(c.startswith("hatl pretrain-data") and "--source isl_kinect" in c for c in commands), out
    sup = [c for c in commands if c.startswith("hatl pretrain-supervised")]
    # the checkpoint job only: the leave-one-signer-out evaluation is its own target (pretrain_supervised_loso)
    assert len(sup) == 1 and "--out results/pretrained/stgcnpp_isl_kinect.pth" in sup[0] and "--csv" not in sup[0]
    imp = [c for c in commands if c.startswith("hatl import-backbone")]
    assert imp and "--checkpoint results/pretrained/stgcnpp_isl_kinect.pth" in imp[0]
    assert not any(c.startswith("hatl pretrain-demo") for c in commands)


def test_sign2gloss2text_is_a_cascade_in_the_dag(tmp_path: Path) -> None:
    """Table 5's Sign2Gloss2Text rows come from a cascade decode whose inputs are a sign2gloss run (per strategy)
    and the gloss2text run of the same dataset, model and fold; no sign2gloss2text model is trained."""
    import re

    work = tmp_path / "wf"
    work.mkdir()
    for name in ("Snakefile", "rules", "workflow", "config", "envs"):
        (work / name).symlink_to(REPO / name, target_is_directory=(REPO / name).is_dir())
    result = _run([_tool("snakemake"), "-n", "-p", "--cores", "1", "results/table5.csv"], cwd=work)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    commands = [line.split("Shell command:", 1)[1].strip() for line in out.splitlines() if "Shell command:" in line]
    trains = [c for c in commands if c.startswith("hatl train")]
    assert not any("--task sign2gloss2text" in c for c in trains)
    trained = sorted(re.search(r"--model (\S+) --task (\S+) --strategy (\S+)", c).groups() for c in trains)
    for model in ("transformer", "adat"):
        assert (model, "gloss2text", "full") in trained
        for strategy in ("classical", "full", "hatl"):
            assert (model, "sign2gloss", strategy) in trained and (model, "sign2text", strategy) in trained
            runs = "results/runs/phoenix14t/" + model
            cascade = [c for c in commands if f"--out-dir {runs}/sign2gloss2text/{strategy}/main/seed1234 " in c]
            assert len(cascade) == 1, commands
            assert cascade[0].startswith(f"hatl decode --config results/config/phoenix14t.yaml --run-dir {runs}/sign2gloss/{strategy}/main/seed1234"
                                         f" --translator-run {runs}/gloss2text/full/main/seed1234 --data-dir results/phoenix14t/normalised")
    assert len(trained) == 14  # 2 models x (3 sign2gloss + 3 sign2text + 1 gloss2text)
    # the table reads the cascade's scores, beside Sign2Text and the cascade's Gloss2Text upper bound
    table = next(block for block in out.split("\n\n") if "rule results_table:" in block)
    assert "phoenix14t/adat/sign2gloss2text/hatl/main/seed1234/scores.json" in table
    assert "phoenix14t/adat/gloss2text/full/main/seed1234/scores.json" in table
    inputs = table.split("output:")[0]
    # no sign2gloss scores or decodes; its summary.json is read for the row's backbone provenance
    assert not re.search(r"/sign2gloss/\S*/(scores\.json|decoded)", inputs)
    assert "phoenix14t/adat/sign2gloss/hatl/main/seed1234/summary.json" in inputs


def test_real_medasl_table7_plans_all_five_folds(tmp_path: Path) -> None:
    """`snakemake -n results/table7.csv --configfile config/examples/medasl.yaml` trains every run on each of
    the paper's 5 cross-validation folds (the demo and the CPU overlay keep fold 0 only)."""
    import re

    result = _run([_tool("snakemake"), "-n", "-p", "results/table7.csv", "--cores", "1", "-d", str(tmp_path / "wf"),
                   "--configfile", "config/examples/medasl.yaml"])
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    trains = [m.group(1) for m in re.finditer(r"hatl train .*--fold (\S+)", out)]
    per_fold = {fold: trains.count(fold) for fold in set(trains)}
    assert sorted(per_fold) == [f"fold{k}" for k in range(5)]
    assert len(set(per_fold.values())) == 1 and per_fold["fold0"] >= 12  # 2 translators x (3 sign2gloss + 3 sign2text) at least


def test_masked_pretraining_reads_every_dataset_and_the_sources(tmp_path: Path) -> None:
    commands, _ = _backbone_plan(tmp_path, "backbone: {pretrain: {method: masked}}\n", dataset="isharah")
    [masked] = [c for c in commands if c.startswith("hatl pretrain-masked")]
    assert ("--data results/phoenix14t/normalised/train.parquet results/isharah/normalised/train.parquet "
            "results/medasl/normalised/trainval.parquet --folds main main fold0") in masked
    assert "--sources results/pretraining/isl_kinect/keypoints/*.parquet" in masked
    imp = [c for c in commands if c.startswith("hatl import-backbone")]
    assert imp and "--checkpoint results/pretrained/stgcnpp_masked.pth" in imp[0]


def test_pretraining_table_trains_one_run_per_source(tmp_path: Path) -> None:
    result = _run([_tool("snakemake"), "-n", "-p", "--cores", "1", "results/table_pretraining.csv"],
                  cwd=_clean_workdir(tmp_path))
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    commands = [line[line.index("hatl "):] for line in out.splitlines() if "hatl " in line]
    train = [c for c in commands if c.startswith("hatl train")]
    backbones = sorted(c.split("--backbone ")[1].split()[0] for c in train)
    assert backbones == [f"results/pretraining_runs/{s}/phoenix14t/backbone/stgcnpp.pt"
                         for s in ("demo", "isl_kinect", "masked", "none", "two_stage")]
    assert all("--task sign2gloss --strategy classical" in c for c in train)
    assert sum(c.startswith("hatl random-backbone") for c in commands) == 1
    assert not any(c.startswith("hatl pretrain-supervised") and "--csv" in c for c in commands)  # no LOSO needed
    [table] = [c for c in commands if c.startswith("hatl table-pretraining")]
    assert "none=results/pretraining_runs/none/runs/phoenix14t/transformer/sign2gloss/classical/main/seed1234/scores.json" in table
    # the two-stage row: the demo pretraining started from the supervised isl_kinect checkpoint
    [staged] = [c for c in commands if c.startswith("hatl pretrain-demo") and "--init" in c]
    assert "--init results/pretrained/stgcnpp_isl_kinect.pth --out results/pretrained/stgcnpp_two_stage.pth" in staged


def _backbone_plan(tmp_path: Path, overlay: str | None, dataset: str = "phoenix14t") -> tuple[list[str], str]:
    """The hatl commands (and the whole output) of a dry run of ``dataset``'s imported backbone in a clean folder."""
    args = [_tool("snakemake"), "-n", "-p", "--cores", "1", f"results/{dataset}/backbone/stgcnpp.pt"]
    if overlay is not None:
        over = tmp_path / "overlay.yaml"
        over.write_text(overlay, encoding="utf-8")
        args[2:2] = ["--configfile", str(over)]
    result = _run(args, cwd=_clean_workdir(tmp_path))
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    return [line[line.index("hatl "):] for line in out.splitlines() if "hatl " in line], out


def test_demo_method_is_the_window_pretraining_alone(tmp_path: Path) -> None:
    """method demo: the in-domain window pretraining alone, no real source read, no warning."""
    commands, out = _backbone_plan(tmp_path, "backbone: {pretrain: {method: demo}}\n")
    assert not any(c.startswith(("hatl pretrain-data", "hatl pretrain-supervised")) for c in commands), out
    [demo] = [c for c in commands if c.startswith("hatl pretrain-demo")]
    assert "--init" not in demo and "--fallback-note" not in demo and "WARNING" not in out
    [imp] = [c for c in commands if c.startswith("hatl import-backbone")]
    assert "--checkpoint results/pretrained/stgcnpp_demo.pth" in imp


def test_default_backbone_is_two_stage_from_the_real_source(tmp_path: Path) -> None:
    """The shipped method (two_stage) with the real source present: isl_kinect supervised, then the demo windows
    starting from it."""
    commands, out = _backbone_plan(tmp_path, f"backbone: {{pretrain: {{roots: {{isl_kinect: '{tmp_path}'}}}}}}\n")
    assert any(c.startswith("hatl pretrain-data") and "--source isl_kinect" in c for c in commands), out
    assert any(c.startswith("hatl pretrain-supervised") and "stgcnpp_isl_kinect.pth" in c for c in commands)
    [demo] = [c for c in commands if c.startswith("hatl pretrain-demo")]
    assert "--init results/pretrained/stgcnpp_isl_kinect.pth" in demo and "--fallback-note" not in demo
    [imp] = [c for c in commands if c.startswith("hatl import-backbone")]
    assert "--checkpoint results/pretrained/stgcnpp_two_stage.pth" in imp
    assert "FALLBACK" not in out


def test_default_falls_back_loudly_without_the_real_source(tmp_path: Path) -> None:
    """A clone without ../shared, shipped config: the demo pretraining alone, a warning, and the fallback in the
    provenance."""
    # the default root ../shared/data/isl_kinect is not beside the clean work folder
    commands, out = _backbone_plan(tmp_path, None)
    assert "WARNING (dataset phoenix14t): FALLBACK: backbone.pretrain.method two_stage needs the real source " \
           "isl_kinect at ../shared/data/isl_kinect" in out
    assert not any(c.startswith(("hatl pretrain-data", "hatl pretrain-supervised")) for c in commands)
    [demo] = [c for c in commands if c.startswith("hatl pretrain-demo")]
    assert "--init" not in demo and "--fallback-note 'FALLBACK: backbone.pretrain.method two_stage" in demo
    assert "--out results/pretrained/stgcnpp_demo.pth" in demo
    [imp] = [c for c in commands if c.startswith("hatl import-backbone")]
    assert "--checkpoint results/pretrained/stgcnpp_demo.pth" in imp


def test_two_stage_first_stage_has_the_width_of_the_demo_pretraining(tmp_path: Path) -> None:
    """A real first dataset with its own checkpoint (base 64) beside demo datasets (base 8): the demos' two-stage
    pretraining starts from an isl_kinect checkpoint built with the demo source's config (its width)."""
    overlay = (f"datasets:\n  phoenix14t: {{adapter: phoenix14t, root: '{tmp_path}'}}\n"
               f"backbone: {{checkpoint: /models/j.pth, pretrain: {{method: two_stage, roots: {{isl_kinect: '{tmp_path}'}}}}}}\n")
    commands, _ = _backbone_plan(tmp_path, overlay, dataset="isharah")
    [sup] = [c for c in commands if c.startswith("hatl pretrain-supervised")]
    [demo] = [c for c in commands if c.startswith("hatl pretrain-demo")]
    assert sup.startswith("hatl pretrain-supervised --config results/config/isharah.yaml")
    assert demo.startswith("hatl pretrain-demo --config results/config/isharah.yaml") and "--init" in demo
