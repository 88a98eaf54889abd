# Input functions and helpers shared by all rule files. Nothing here computes results; it only maps
# wildcards to paths and config sections.
import functools
import json
import os
import shlex
import sys
from pathlib import Path

import pandas as pd
import yaml

from hatl.cli import CONFIG_READS
from hatl.config import (
    effective_config,
    pretraining_source,
    read_settings,
    training_seeds,
    validate_config,
)
from hatl.errors import ConfigError
from hatl.experiment import (
    CASCADES,
    FIGURE_TABLE,
    RUNS,
    TABLE_DATASET,
    TEXT_ONLY_TASKS,
    TRAINED_TASKS,
    TRANSLATION_TASKS,
    trained_tasks,
)
from hatl.experiment import run_dir as run_folder
from hatl.folds import run_folds
from hatl.models.backbone_source import missing_real_source
from hatl.experiment import seed_folder, seed_of

RESULTS = "results"
DATASETS = list(config["datasets"])
for _dataset in DATASETS:
    # a mistyped key in demo.overrides is refused here, not deep inside a job
    try:
        validate_config(effective_config(config, _dataset))
    except ConfigError as err:
        raise WorkflowError(f"dataset {_dataset}: {err}") from None


def _write_if_changed(path, text):
    """Resolved configs are written at parse time, but only when their content changes, so their
    modification time never makes Snakemake rerun anything by itself."""
    path = Path(path)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return str(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return str(path)


@functools.lru_cache(
    maxsize=None
)  # one YAML dump per dataset, not one per job: the config is fixed once parsed
def resolved_config(dataset=None):
    """Path of the validated config as `dataset` sees it (demo datasets: demo.overrides merged in)."""
    view = config if dataset is None else eff(dataset)
    name = "all" if dataset is None else dataset
    text = yaml.safe_dump(
        json.loads(json.dumps(view)), sort_keys=True, allow_unicode=True
    )
    return _write_if_changed(f"{RESULTS}/config/{name}.yaml", text)


@functools.lru_cache(maxsize=None)
def eff(dataset):
    return effective_config(config, dataset)


@functools.lru_cache(maxsize=None)
def settings_read_by(command, dataset=None):
    """The `settings` param of each job running `hatl <command>`: the values of the config keys that
    command declares it reads (hatl.cli.CONFIG_READS) as its dataset sees them, as canonical JSON.
    Snakemake reruns a job whose params changed, so a changed value reruns exactly the jobs that read it.
    """
    values = read_settings(config, CONFIG_READS[command], dataset)
    return json.dumps(values, sort_keys=True, ensure_ascii=False)


def ds_cfg(dataset):
    return config["datasets"][dataset]


def is_demo(dataset):
    return ds_cfg(dataset)["adapter"] == "demo"


def uses_cv(dataset):
    return ds_cfg(dataset).get("cross_validation") is not None


def splits_of(dataset):
    return ["trainval", "test"] if uses_cv(dataset) else ["train", "dev", "test"]


def folds_of(dataset):
    """`main`, or the trained cross-validation folds (real data: all; demo: `demo.run_folds`)."""
    return run_folds(config, dataset)


def tasks_of(dataset):
    return ds_cfg(dataset)["tasks"]


def needs_keypoints(dataset):
    return any(task not in TEXT_ONLY_TASKS for task in tasks_of(dataset))


def seeds_of(dataset):
    """The training seeds of a dataset's runs (training.seeds, else the top-level seed): one run each."""
    return training_seeds(eff(dataset))


def run_dir(dataset, model, task, strategy, fold, seed):
    return str(
        run_folder(f"{RESULTS}/{RUNS}", dataset, model, task, strategy, fold, seed)
    )


def strategies_for(task):
    # Gloss2Text has no backbone: its one run is the text-only upper bound, trained as 'full'.
    return ["full"] if task in TEXT_ONLY_TASKS else config["experiments"]["strategies"]


def runs_of(dataset, tasks=None):
    """Every (model, task, strategy, fold, seed) run directory of a dataset's configured tasks: the folders
    whose decoded files and scores fill the tables (a Sign2Gloss2Text folder holds its cascade's decode).
    """
    tasks = tasks_of(dataset) if tasks is None else tasks
    return [
        run_dir(dataset, model, task, strategy, fold, seed)
        for model in config["experiments"]["models"]
        for task in tasks
        for strategy in strategies_for(task)
        for fold in folds_of(dataset)
        for seed in seeds_of(dataset)
    ]


def trained_runs_of(dataset):
    """Every trained run folder (best.pt, log.jsonl, summary.json) the configured tasks need: Sign2Gloss2Text
    trains its sign2gloss runs per strategy and one gloss2text run per model and fold (shared with a
    configured gloss2text task)."""
    tasks = []
    for task in tasks_of(dataset):
        tasks += [t for t in trained_tasks(task) if t not in tasks]
    return runs_of(dataset, tasks)


def scored_runs_of(dataset):
    """The run folders with text to score: the configured translation tasks, plus the translator a cascade
    trains anyway (its Gloss2Text row on ground-truth glosses is the cascade's upper bound); a lone
    sign2gloss has gloss WER only."""
    tasks = [t for t in tasks_of(dataset) if t in TRANSLATION_TASKS]
    for task in tasks_of(dataset):
        tasks += [t for t in CASCADES.get(task, ())[1:] if t not in tasks]
    return runs_of(dataset, tasks)


def lm_stem(dataset, fold):
    """The KenLM model of one run fold (built from that fold's training rows only)."""
    return f"{RESULTS}/{dataset}/lm/{fold}/text.{eff(dataset)['lm']['order']}gram"


def vocab_json(dataset, fold):
    """The text vocabulary of one run fold; gloss.json lies beside it."""
    return f"{RESULTS}/{dataset}/vocab/{fold}/text.json"


# --- sharding (the manifest is a checkpoint: its shard column decides the keypoint jobs) ---


@functools.lru_cache(maxsize=None)
def manifest_of(dataset):
    """The manifest path once the checkpoint is done; raises (and caches nothing) until then. Snakemake only ever
    adds to a checkpoint's finished outputs, so a path once returned stays valid (the lookup is ~1 ms, and
    every keypoint job asks for it several times)."""
    return checkpoints.manifest.get(dataset=dataset).output.manifest


def shard_kinds(dataset):
    """shard -> source kind of a dataset's manifest. Every keypoint job's input function asks, and Snakemake
    re-runs them after each checkpoint: read once per manifest version, not once per call (re-reading the
    Parquet per job was the dry run's hot spot, 20 ms x shards x checkpoints)."""
    return {shard: kind for shard, (kind, _) in _shard_table(dataset).items()}


def shard_samples(dataset, shard):
    return _shard_table(dataset)[int(shard)][1]


def _shard_table(dataset):
    path = manifest_of(dataset)
    stat = os.stat(path)
    return _read_shard_table(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=None)
def _read_shard_table(path, mtime_ns, size):
    """shard -> (source kind, samples), read once per manifest version."""
    frame = pd.read_parquet(path, columns=["shard", "source_kind"])
    sizes = frame.groupby("shard").size()
    kinds = frame.drop_duplicates("shard").set_index("shard")["source_kind"]
    return {int(s): (str(kinds[s]), int(sizes[s])) for s in sizes.index}


def keypoint_runtime(wildcards, attempt):
    """Minutes for a keypoint job: 60 per 64 samples (the old fixed shard size, ~5x the measured MediaPipe time
    of 124-frame clips), so a large automatic shard (610 samples at 610k) is not killed at a 60-minute walltime.
    """
    blocks = -(-shard_samples(wildcards.dataset, wildcards.shard) // 64)
    return attempt_scaled(60 * max(1, blocks), attempt)


def keypoint_shards(wildcards):
    return [
        f"{RESULTS}/{wildcards.dataset}/keypoints/shard-{shard}.parquet"
        for shard in sorted(shard_kinds(wildcards.dataset))
    ]


def reads_clip_shard(dataset, kind):
    """Whether a shard's keypoint job reads a clip shard written by a separate `resize` job. By default
    (`preprocess.keep_clips: false`) one job resizes on the fly and extracts: no clip file, half the jobs.
    """
    preprocess = eff(dataset)["preprocess"]
    return (
        kind in ("video", "frames")
        and preprocess["keep_clips"]
        and preprocess["keypoints"]["input_resolution"] == "resized"
    )


def keypoint_inputs(wildcards):
    inputs = {"manifest": manifest_of(wildcards.dataset)}
    kind = shard_kinds(wildcards.dataset)[int(wildcards.shard)]
    if reads_clip_shard(wildcards.dataset, kind):
        inputs["clips"] = (
            f"{RESULTS}/{wildcards.dataset}/clips/shard-{wildcards.shard}.npz"
        )
    return inputs


def manifest_inputs(wildcards):
    if is_demo(wildcards.dataset):
        return {"demo": f"{RESULTS}/{wildcards.dataset}/demo"}
    return {}


# --- backbone ---


@functools.lru_cache(maxsize=None)
def real_source_fallback(dataset):
    """Why `dataset`'s configured real pretraining source is unusable (None when it is usable), warned once."""
    note = missing_real_source(eff(dataset))
    if note:
        print(
            f"\n{'!' * 100}\nWARNING (dataset {dataset}): {note}.\n"
            "Every row it fills says so in its backbone label. Bring the source (docs/backbone.md) or set "
            f"backbone.pretrain.method: demo to silence this.\n{'!' * 100}\n",
            file=sys.stderr,
        )
    return note


def backbone_checkpoint(wildcards):
    """`backbone.checkpoint`, else the configured pretraining's output (`backbone.pretrain.method`; the demo
    pretraining, with a warning, when that method's real source is missing)."""
    backbone = eff(wildcards.dataset)["backbone"]
    if backbone.get("checkpoint"):
        return backbone["checkpoint"]
    pretrain = backbone.get("pretrain", {})
    method = (
        "demo" if real_source_fallback(wildcards.dataset) else pretrain.get("method")
    )
    if method == "supervised":
        return f"{RESULTS}/pretrained/stgcnpp_{pretrain['sources'][0]}.pth"
    if method == "masked":
        return f"{RESULTS}/pretrained/stgcnpp_masked.pth"
    if method == "two_stage":
        return f"{RESULTS}/pretrained/stgcnpp_two_stage.pth"
    return f"{RESULTS}/pretrained/stgcnpp_demo.pth"


def real_pretrain_source():
    """The real source the supervised and two-stage pretrainings read (`backbone.pretrain.sources[0]`)."""
    return eff(pretrain_arch_dataset())["backbone"]["pretrain"]["sources"][0]


def demo_fallback_note():
    """`--fallback-note ...` of the demo pretraining when it stands in for a missing real source."""
    notes = sorted({n for n in map(real_source_fallback, DATASETS) if n})
    return " ".join(f"--fallback-note {shlex.quote(n)}" for n in notes[:1])


def pretrain_arch_dataset():
    """The dataset whose effective `backbone` sizes the pretraining source's network: the first dataset
    (a checkpoint imports only into a backbone of its own width; demo datasets override the width).
    """
    return DATASETS[0]


def supervised_arch_dataset():
    """The dataset whose width the supervised checkpoint gets: under `two_stage` the demo pretraining starts
    from it, so the demo pretraining source's (a real first dataset may be wider than the demos); else the first.
    """
    if config["backbone"].get("pretrain", {}).get("method") == "two_stage":
        return demo_pretrain_source()
    return pretrain_arch_dataset()


def masked_pretrain_data():
    """The training Parquet and run fold of every configured dataset (the first run fold, as pretrain_demo)."""
    return [
        (f"{RESULTS}/{ds}/normalised/{splits_of(ds)[0]}.parquet", folds_of(ds)[0])
        for ds in DATASETS
    ]


def masked_pretrain_sources():
    return eff(pretrain_arch_dataset())["backbone"]["pretrain"]["sources"]


PRETRAIN_RUNS = f"{RESULTS}/pretraining_runs"
PRETRAIN_RUN = f"{PRETRAIN_RUNS}/{{backbone_source}}/runs/{{dataset}}/{{model}}/{{task}}/{{strategy}}/{{fold}}/{{seed}}"


def pretraining_table():
    return eff(pretrain_arch_dataset())["backbone"]["pretrain"]["table"]


def source_checkpoint(source, dataset):
    """The pyskl-format checkpoint a backbone source imports (each is built once, shared by every row)."""
    if source == "pyskl":
        configured = eff(dataset)["backbone"].get("checkpoint")
        if not configured:
            raise WorkflowError(
                "backbone.pretrain.table.sources lists pyskl, but backbone.checkpoint is null"
            )
        return configured
    return f"{RESULTS}/pretrained/stgcnpp_{source}.pth"


def source_report(source, dataset):
    """What the source's own pretraining measured (its report, or the checkpoint's embedded summary)."""
    if source == "none":
        return f"{PRETRAIN_RUNS}/none/{dataset}/backbone/import_report.json"
    if source == "masked":
        return f"{RESULTS}/pretraining/masked.json"
    # the checkpoint's meta.hatl summary (the LOSO evaluation is a separate target)
    return source_checkpoint(source, dataset)


def pretraining_table_run(source):
    table = pretraining_table()
    dataset = table.get("dataset") or DATASETS[0]
    run = (
        dataset,
        table["model"],
        table["task"],
        table["strategy"],
        folds_of(dataset)[0],
        seed_folder(seeds_of(dataset)[0]),
    )
    return str(Path(PRETRAIN_RUNS, source, "runs", *run))


def demo_pretrain_source():
    """The dataset whose training keypoints the demo pretraining reads: `backbone.pretrain_demo.source`,
    else the first demo dataset, else the first dataset."""
    return pretraining_source(config)


def demo_pretrain_inputs(wildcards):
    """The demo pretraining's keypoints, plus the real source's supervised checkpoint it starts from (`two_stage`)."""
    inputs = {"data": f"{RESULTS}/{demo_pretrain_source()}/normalised"}
    if wildcards.start == "two_stage":
        inputs["init"] = f"{RESULTS}/pretrained/stgcnpp_{real_pretrain_source()}.pth"
    return inputs


def demo_pretrain_start_args(wildcards, input):
    """`--init <checkpoint>` for the two-stage start; from random weights, the fallback note (if any)."""
    if wildcards.start == "two_stage":
        return f"--init {shlex.quote(input.init)}"
    return demo_fallback_note()


def demo_pretrain_fold():
    """The run fold whose training rows the demo pretraining reads: `main`, or the source's first run fold."""
    # Under cross-validation all of trainval would show that fold's dev rows to the backbone it fine-tunes.
    return folds_of(demo_pretrain_source())[0]


# --- training / evaluation ---


def train_inputs(wildcards):
    ds = wildcards.dataset
    inputs = {"vocab": vocab_json(ds, wildcards.fold)}
    if wildcards.task in TEXT_ONLY_TASKS:
        inputs["manifest"] = f"{RESULTS}/{ds}/manifest.parquet"
    else:
        inputs["data"] = f"{RESULTS}/{ds}/normalised"
        inputs["backbone"] = f"{RESULTS}/{ds}/backbone/stgcnpp.pt"
    return inputs


def cascade_inputs(wildcards):
    """The two trained runs a Sign2Gloss2Text decode chains: the sign2gloss run of this strategy and the
    gloss2text run (trained on ground-truth glosses, strategy full) of the same dataset, model, fold and seed.
    """
    recognition, translation = CASCADES["sign2gloss2text"]
    keys = (wildcards.dataset, wildcards.model)
    seed = seed_of(wildcards.seed)
    return {
        "recogniser": f"{run_dir(*keys, recognition, wildcards.strategy, wildcards.fold, seed)}/best.pt",
        "translator": f"{run_dir(*keys, translation, strategies_for(translation)[0], wildcards.fold, seed)}/best.pt",
    }


def decode_lm(wildcards):
    """The KenLM model a decode fuses: none for a recognition run (glosses only, no text beam)."""
    if wildcards.task not in TRANSLATION_TASKS:
        return []
    return f"{lm_stem(wildcards.dataset, wildcards.fold)}.bin"


def decode_source(wildcards):
    """Gloss2Text reads glosses and references from the manifest; the sign tasks from normalised keypoints."""
    if wildcards.task in TEXT_ONLY_TASKS:
        return f"{RESULTS}/{wildcards.dataset}/manifest.parquet"
    return f"{RESULTS}/{wildcards.dataset}/normalised"


def attempt_scaled(base, attempt):
    """Memory and runtime grow with the attempt number, so a job killed for either gets more next time."""
    return int(base * (1 + 0.5 * (attempt - 1)))


def dataset_for_table(number):
    """Which configured dataset a paper table (5, 6, 7) is computed from."""
    wanted = TABLE_DATASET[number]
    for ds in DATASETS:
        cfg = ds_cfg(ds)
        if (
            ds == wanted
            or cfg["adapter"] == wanted
            or cfg.get("demo_profile") == wanted
        ):
            return ds
    raise ValueError(f"table {number} needs a dataset for {wanted}; none is configured")


def table4_dataset():
    """Table 4 lists the hyperparameters as PHOENIX14T's runs (Table 5) see them; without a PHOENIX14T
    dataset, as the first dataset's do (an overlay may leave only the user's own data).
    """
    try:
        return dataset_for_table(5)
    except ValueError:
        return DATASETS[0]


def table_targets():
    targets = [f"{RESULTS}/table3.csv", f"{RESULTS}/table4.csv"]
    for number in (5, 6, 7):
        try:
            dataset_for_table(number)
        except ValueError:
            continue
        targets.append(f"{RESULTS}/table{number}.csv")
    return targets


def figure_dataset(wildcards):
    """Figures 2-4, 5-7 and 8-10 each cover PHOENIX14T, Isharah and MedASL in turn."""
    return dataset_for_table(FIGURE_TABLE[int(wildcards.number)])


def decoded_tests_for(dataset):
    return [f"{d}/decoded.test.jsonl" for d in scored_runs_of(dataset)]


def logs_for(dataset):
    return [f"{d}/log.jsonl" for d in trained_runs_of(dataset)]


def figure_targets():
    figures = []
    for first in (
        2,
        5,
        8,
    ):  # 2-4 training time, 5-7 time vs unfrozen layers, 8-10 unfreezing timelines
        for offset, table in enumerate((5, 6, 7)):
            try:
                dataset_for_table(table)
            except ValueError:
                continue
            figures.append(f"{RESULTS}/figures/figure{first + offset}.png")
    return figures


def all_targets():
    curves = [f"{RESULTS}/figures/learning_curves_{ds}.png" for ds in DATASETS]
    quality = [f"{RESULTS}/figures/keypoint_quality.png"]
    return table_targets() + figure_targets() + curves + quality


# --- paper artefacts ---


def table_dataset(wildcards):
    return dataset_for_table(int(wildcards.number))


def paper_inputs(wildcards, files_of, table_of=None):
    """Input function for a paper table (or, with ``table_of=FIGURE_TABLE``, a figure): the files
    ``files_of(dataset)`` of the dataset it reports. Without such a dataset in the config, the one input is a
    file no rule makes whose name says why, so Snakemake stops on a one-line MissingInputException instead
    of a traceback from inside an input function.
    """
    number = int(wildcards.number)
    table = table_of[number] if table_of else number
    try:
        dataset = dataset_for_table(table)
    except ValueError:
        return [
            f"{RESULTS}/NOT-CONFIGURED: table {table} reports {TABLE_DATASET[table]}, which has no dataset in the config"
        ]
    return files_of(dataset)


def scores_for(dataset):
    return [f"{d}/scores.json" for d in scored_runs_of(dataset)]


def summaries_for(dataset):
    return [f"{d}/summary.json" for d in trained_runs_of(dataset)]
