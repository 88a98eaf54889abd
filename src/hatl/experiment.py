"""The experiment's fixed vocabulary: its axes, the special token ids, the paper's names, the run folders.

Every other module (and the Snakemake rules, through rules/common.smk) takes these from here, so adding a
translator or renaming a dataset is one edit.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

# -- axes: a run is dataset × translator × task × strategy × fold ------------------------------------
TRANSLATORS = ("transformer", "adat")
TASKS = ("sign2text", "sign2gloss2text", "gloss2text")
STRATEGIES = ("classical", "full", "hatl")
# What each task reads of a sample: every task ends in spoken-language text; gloss2text starts from glosses, not video.
TASK_NEEDS: dict[str, frozenset[str]] = {
    "sign2gloss2text": frozenset({"video", "gloss", "text"}),
    "sign2text": frozenset({"video", "text"}),
    "gloss2text": frozenset({"gloss", "text"}),
}
TEXT_ONLY_TASKS = tuple(t for t in TASKS if "video" not in TASK_NEEDS[t])  # no keypoints, no backbone
GLOSS_TASKS = tuple(t for t in TASKS if "gloss" in TASK_NEEDS[t])  # glosses as targets or as input


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
TASK_ORDER = ("sign2gloss2text", "sign2text", "gloss2text")  # the order of the paper's tables
TASK_NAMES = {"sign2gloss2text": "Sign2Gloss2Text", "sign2text": "Sign2Text", "gloss2text": "Gloss2Text"}
STRATEGY_NAMES = {"classical": "Classical Fine-tuning", "full": "Full Fine-tuning", "hatl": "HATL"}
TABLE_DATASET = {5: "phoenix14t", 6: "isharah", 7: "medasl"}  # the paper's result table of each dataset
# Figures 2-4 (training time), 5-7 (time against unfrozen layers), 8-10 (unfreezing timelines): one per dataset.
FIGURE_TABLE = {2: 5, 3: 6, 4: 7, 5: 5, 6: 6, 7: 7, 8: 5, 9: 6, 10: 7}

# -- run folders: <runs root>/<dataset>/<model>/<task>/<strategy>/<fold> ---------------------------------
RUNS = "runs"  # the runs root's name under the results folder
RUN_KEYS = ("dataset", "model", "task", "strategy", "fold")


def run_dir(runs_root: str | Path, dataset: str, model: str, task: str, strategy: str, fold: str) -> Path:
    return Path(runs_root, dataset, model, task, strategy, fold)


def run_glob(dataset: str, name: str) -> str:
    """Glob pattern (below the runs root) of file ``name`` in every run folder of ``dataset``."""
    return "/".join([dataset, *["*"] * (len(RUN_KEYS) - 1), name])


def parse_run_dir(path: str | Path) -> dict[str, str] | None:
    """Identity of a run folder ``.../runs/<dataset>/<model>/<task>/<strategy>/<fold>`` (None if not one)."""
    parts = Path(path).resolve().parts
    if RUNS not in parts:
        return None
    i = len(parts) - 1 - parts[::-1].index(RUNS)
    tail = parts[i + 1:]
    if len(tail) < len(RUN_KEYS):
        return None
    return dict(zip(RUN_KEYS, tail[: len(RUN_KEYS)]))
