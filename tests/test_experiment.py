"""hatl.experiment is the one home of the experiment's names: the schema and the Snakefile agree with it,
and the run-folder layout reads back what it writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from hatl.config import load_schema
from hatl.experiment import (
    DATASET_NAMES,
    FIGURE_TABLE,
    STRATEGIES,
    TABLE_DATASET,
    TASK_NAMES,
    TASK_ORDER,
    TASKS,
    TRAINED_TASKS,
    TRANSLATORS,
    CASCADES,
    parse_run_dir,
    run_dir,
    run_glob,
    seed_folder,
    seed_of,
)

REPO = Path(__file__).resolve().parents[1]


def test_the_schema_offers_exactly_the_experiment_axes():
    props = load_schema()["properties"]
    assert props["experiments"]["properties"]["models"]["items"]["enum"] == list(TRANSLATORS)
    assert props["experiments"]["properties"]["strategies"]["items"]["enum"] == list(STRATEGIES)
    tasks = props["datasets"]["additionalProperties"]["properties"]["tasks"]["items"]["enum"]
    assert sorted(tasks) == sorted(TASKS)
    # a selection metric per trained task; a cascade (Sign2Gloss2Text) is made of trained tasks and has none of its own
    assert set(props["training"]["properties"]["metric"]["properties"]) == set(TRAINED_TASKS)
    assert set(TRAINED_TASKS) == set(TASKS) - set(CASCADES)
    assert all(set(parts) <= set(TRAINED_TASKS) for parts in CASCADES.values())


def test_names_cover_every_axis_value_and_table():
    assert set(TASK_NAMES) == set(TASK_ORDER) == set(TASKS)
    assert set(TABLE_DATASET.values()) == set(DATASET_NAMES)
    assert set(FIGURE_TABLE.values()) == set(TABLE_DATASET)
    assert [DATASET_NAMES[TABLE_DATASET[FIGURE_TABLE[n]]] for n in (2, 3, 4)] == ["PHOENIX14T", "Isharah", "MedASL"]


def test_run_folders_read_back_and_are_found_by_their_glob(tmp_path):
    folder = run_dir(tmp_path / "results" / "runs", "medasl", "adat", "sign2text", "hatl", "fold3", 7)
    folder.mkdir(parents=True)
    (folder / "scores.json").write_text("{}")
    assert folder.name == "seed7"
    assert parse_run_dir(folder) == {"dataset": "medasl", "model": "adat", "task": "sign2text", "strategy": "hatl",
                                     "fold": "fold3", "seed": "seed7"}
    assert parse_run_dir(tmp_path / "results" / "runs" / "medasl") is None
    assert parse_run_dir(folder.parent) is None  # the fold folder above the seed level is not a run
    assert parse_run_dir(folder.parent / "notaseed") is None
    assert list((tmp_path / "results" / "runs").glob(run_glob("medasl", "scores.json"))) == [folder / "scores.json"]


def test_seed_folders_name_the_seed_and_refuse_anything_else():
    assert seed_folder(1234) == "seed1234" and seed_of("seed1234") == 1234 and seed_of(seed_folder(0)) == 0
    for bad in ("seed", "seedx", "1234", "seed-1", "fold0"):
        with pytest.raises(ValueError, match="not a seed folder"):
            seed_of(bad)
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(ValueError, match="non-negative integer"):
            seed_folder(bad)
