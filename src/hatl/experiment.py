"""The experiment's fixed vocabulary: its axes, the special token ids, the paper's names, the run folders.

Every other module (and the Snakemake rules, through rules/common.smk) takes these from here, so adding a
translator or renaming a dataset is one edit.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

# -- axes: a run is dataset × translator × task × strategy × fold ------------------------------------
TRANSLATORS = ("transformer", "adat")
# The tasks a dataset may configure (``datasets.<ds>.tasks``). Sign2Gloss2Text is a cascade, as in the paper
# (section 1: it "relies on gloss annotations during translation") and in the released ADAT pipeline: the
# sign model recognises glosses (task ``sign2gloss``), the Gloss2Text translator of the same dataset, model
# and fold translates them. ``sign2text_ctc`` is the joint model (text decoder on the sign encoder plus an
# auxiliary CTC head), kept as an opt-in ablation with rows of its own.
TASKS = ("sign2text", "sign2gloss2text", "gloss2text", "sign2gloss", "sign2text_ctc")
STRATEGIES = ("classical", "full", "hatl")
# The two trained runs a cascade task is made of: (recogniser, translator).
CASCADES: dict[str, tuple[str, str]] = {"sign2gloss2text": ("sign2gloss", "gloss2text")}
TRAINED_TASKS = tuple(t for t in TASKS if t not in CASCADES)  # tasks with a model of their own (hatl train)
# What each task reads of a sample: gloss2text starts from glosses, not video; sign2gloss ends in glosses.
TASK_NEEDS: dict[str, frozenset[str]] = {
    "sign2gloss2text": frozenset({"video", "gloss", "text"}),
    "sign2text": frozenset({"video", "text"}),
    "gloss2text": frozenset({"gloss", "text"}),
    "sign2gloss": frozenset({"video", "gloss"}),
    "sign2text_ctc": frozenset({"video", "gloss", "text"}),
}
TEXT_ONLY_TASKS = tuple(t for t in TASKS if "video" not in TASK_NEEDS[t])  # no keypoints, no backbone
GLOSS_TASKS = tuple(t for t in TASKS if "gloss" in TASK_NEEDS[t])  # glosses as targets or as input
TRANSLATION_TASKS = tuple(t for t in TASKS if "text" in TASK_NEEDS[t])  # end in spoken-language text: BLEU-4
CTC_TASKS = ("sign2gloss", "sign2text_ctc")  # trained models with a CTC gloss head (w_ctc > 0)


def trained_tasks(task: str) -> tuple[str, ...]:
    """The trained runs one configured task needs: a cascade's two, else the task itself."""
    return CASCADES.get(task, (task,))


def task_needs(tasks: Iterable[str]) -> frozenset[str]:
    """Union of what the configured tasks read: a subset of {"video", "gloss", "text"}."""
    out: set[str] = set()
    for task in tasks:
        out |= TASK_NEEDS[task]
    return frozenset(out)


def tasks_needing(field: str, tasks: Iterable[str]) -> list[str]:
    return [t for t in tasks if field in TASK_NEEDS[t]]


# -- special token ids, the same in every vocabulary (docs/architecture.md) -------------------------
PAD, BOS, EOS, UNK = 0, 1, 2, 3
BLANK = 4  # the gloss vocabulary's CTC blank

# -- the paper's names -------------------------------------------------------------------------------
DATASET_NAMES = {"phoenix14t": "PHOENIX14T", "isharah": "Isharah", "medasl": "MedASL"}
TRANSLATOR_NAMES = {"transformer": "Transformer", "adat": "ADAT"}
# the order of the paper's tables, then ours: the joint ablation and the two halves of the cascade
TASK_ORDER = ("sign2gloss2text", "sign2text", "sign2text_ctc", "gloss2text", "sign2gloss")
TASK_NAMES = {"sign2gloss2text": "Sign2Gloss2Text", "sign2text": "Sign2Text", "gloss2text": "Gloss2Text",
              "sign2gloss": "Sign2Gloss", "sign2text_ctc": "Sign2Text + CTC (joint)"}
STRATEGY_NAMES = {"classical": "Classical Fine-tuning", "full": "Full Fine-tuning", "hatl": "HATL"}
TABLE_DATASET = {5: "phoenix14t", 6: "isharah", 7: "medasl"}  # the paper's result table of each dataset
# Figures 2-4 (training time), 5-7 (time against unfrozen layers), 8-10 (unfreezing timelines): one per dataset.
FIGURE_TABLE = {2: 5, 3: 6, 4: 7, 5: 5, 6: 6, 7: 7, 8: 5, 9: 6, 10: 7}

# -- run folders: <runs root>/<dataset>/<model>/<task>/<strategy>/<fold>/<seed> ------------------------
# The one place the layout lives: rules/common.smk, the tables, the figures and the scorer all go through
# run_dir / parse_run_dir / run_glob. A seed folder is "seed<N>" for the training seed N (training.seeds).
RUNS = "runs"  # the runs root's name under the results folder
RUN_KEYS = ("dataset", "model", "task", "strategy", "fold", "seed")
SEED_PREFIX = "seed"


def seed_folder(seed: int) -> str:
    """The run-folder level of training seed ``seed``: ``seed1234``."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"a training seed is a non-negative integer, not {seed!r}")
    return f"{SEED_PREFIX}{seed}"


def seed_of(folder: str) -> int:
    """The training seed of a seed folder name (``seed1234`` -> 1234); ValueError for anything else."""
    digits = folder[len(SEED_PREFIX):] if folder.startswith(SEED_PREFIX) else ""
    if not digits.isdigit():
        raise ValueError(f"{folder!r} is not a seed folder ('{SEED_PREFIX}' followed by the seed, e.g. {SEED_PREFIX}1234)")
    return int(digits)


def run_dir(runs_root: str | Path, dataset: str, model: str, task: str, strategy: str, fold: str, seed: int) -> Path:
    return Path(runs_root, dataset, model, task, strategy, fold, seed_folder(seed))


def run_glob(dataset: str, name: str) -> str:
    """Glob pattern (below the runs root) of file ``name`` in every run folder of ``dataset``."""
    return "/".join([dataset, *["*"] * (len(RUN_KEYS) - 1), name])


def parse_run_dir(path: str | Path) -> dict[str, str] | None:
    """Identity of a run folder ``.../runs/<dataset>/<model>/<task>/<strategy>/<fold>/seed<N>`` (None if not one).

    Values are the folder names (the seed as ``seed<N>``; :func:`seed_of` gives the number).
    """
    parts = Path(path).resolve().parts
    if RUNS not in parts:
        return None
    i = len(parts) - 1 - parts[::-1].index(RUNS)
    tail = parts[i + 1:]
    if len(tail) < len(RUN_KEYS):
        return None
    identity = dict(zip(RUN_KEYS, tail[: len(RUN_KEYS)]))
    try:
        seed_of(identity["seed"])
    except ValueError:
        return None  # the pre-seed layout (.../<fold>/) or another folder: not a run folder
    return identity
