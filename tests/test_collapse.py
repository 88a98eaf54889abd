"""Output collapse: distinct-output counts, the constant-output floor and the collapse flag in tables 5-7."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from hatl.cli import main
from hatl.config import REPO_ROOT
from hatl.evaluate.collapse import (
    best_constant_sentence,
    collapse_warning,
    constant_floor,
    distinct_outputs,
    log_fields,
    score_constant,
)
from hatl.evaluate.tables import FLOOR_NAME, FLOOR_SOURCE

CONFIG = str(REPO_ROOT / "config" / "config.yaml")


def test_distinct_outputs_counts_against_distinct_references():
    refs = ["a b", "c d", "e f", "a b"]  # 3 distinct references
    varied = distinct_outputs(["a b", "c x", "e f", "a b"], refs)
    assert (varied.n, varied.outputs, varied.references) == (4, 3, 3)
    assert varied.ratio == 1.0 and not varied.collapsed and varied.text() == "3/3"
    constant = distinct_outputs(["a b"] * 4, refs)
    assert constant.outputs == 1 and constant.ratio == pytest.approx(1 / 3) and constant.collapsed
    # more variety than the references is capped at 1; whitespace differences are not new sentences
    assert distinct_outputs(["x", "y", "z", "w"], ["r"] * 4).ratio == 1.0
    assert distinct_outputs(["a  b", "a b"], ["p", "q"]).outputs == 1
    assert log_fields(["a", "a", "b"], ["a", "b", "c"]) == {"distinct_outputs": 2, "distinct_refs": 3}
    with pytest.raises(ValueError):
        distinct_outputs(["a"], ["a", "b"])


def test_constant_floor_by_hand():
    # "a b c d" repeated for the 3 dev refs: n-gram precisions 8/12, 6/9, 4/6, 2/3, equal lengths (BP 1)
    # -> BLEU-4 = 2/3; "x y z w" gets 1/3 in every order -> 1/3. The first wins.
    dev = ["x y z w", "a b c d", "a b c d"]
    sentence, dev_bleu4 = best_constant_sentence(dev)
    assert sentence == "a b c d" and dev_bleu4 == pytest.approx(200 / 3)
    # on test, one reference equal to it and one with nothing in common: every precision 1/2 -> 50;
    # ROUGE-L is the mean of sentence F1s 1 and 0 -> 50
    floor = constant_floor(dev, {"dev": dev, "test": ["a b c d", "p q r s"]})
    assert floor.sentence == "a b c d"
    assert floor.scores["dev"]["bleu4"] == pytest.approx(200 / 3)
    assert floor.scores["dev"]["bleu1"] == pytest.approx(200 / 3)
    assert floor.scores["test"] == pytest.approx({"bleu1": 50.0, "bleu2": 50.0, "bleu3": 50.0, "bleu4": 50.0,
                                                  "rouge": 50.0})
    # a shorter constant is penalised by the brevity penalty: BLEU-1 of "a b" against "a b c d" = exp(1 - 4/2)
    assert score_constant("a b", ["a b c d"])["bleu1"] == pytest.approx(100 * math.exp(-1))
    # ties go to the lexicographically first sentence, whatever the input order
    assert best_constant_sentence(["q r", "m n"])[0] == best_constant_sentence(["m n", "q r"])[0] == "m n"


def test_collapse_warning_reads_the_best_epoch():
    collapsed = {"best_epoch": 7, "best_dev": {"distinct_outputs": 2, "distinct_refs": 60}}
    assert "2 distinct dev sentences for 60" in collapse_warning(collapsed)
    assert collapse_warning({"best_epoch": 7, "best_dev": {"distinct_outputs": 45, "distinct_refs": 60}}) is None
    assert collapse_warning({"best_epoch": 1, "best_dev": {"bleu4": 3.0}}) is None  # older logs: nothing to say


# ------------------------------------------------------------------------------------------ tables
DEV_REFS = ["es regnet im norden", "es schneit im süden", "die sonne scheint im westen", "es regnet im osten",
            "morgen wird es warm", "der wind weht stark"]
TEST_REFS = ["es regnet im süden", "es schneit im norden", "die sonne scheint im osten", "der wind weht schwach",
             "morgen wird es kalt", "heute regnet es"]


def _write_run(root: Path, strategy: str, hyps: dict[str, list[str]]) -> Path:
    run = root / "runs" / "phoenix14t" / "transformer" / "sign2text" / strategy / "main" / "seed1234"
    run.mkdir(parents=True)
    for split, refs in (("dev", DEV_REFS), ("test", TEST_REFS)):
        with open(run / f"decoded.{split}.jsonl", "w", encoding="utf-8") as fh:
            for i, (ref, hyp) in enumerate(zip(refs, hyps[split])):
                fh.write(json.dumps({"id": f"{split}{i}", "ref": ref, "hyp": hyp, "hyp_nolm": hyp}, ensure_ascii=False) + "\n")
    return run


@pytest.fixture(scope="module")
def config():
    from hatl.config import load_config

    return load_config(CONFIG)


def test_table_flags_a_collapsed_run_and_adds_the_floor(tmp_path, config):
    from hatl.evaluate.score import score_files
    from hatl.io import write_json

    varied = {"dev": [r.replace("im", "in") for r in DEV_REFS], "test": [r.replace("es ", "") for r in TEST_REFS]}
    stuck = {"dev": ["es regnet im norden"] * 6, "test": ["es regnet im norden"] * 5 + ["es schneit"]}
    scores = []
    for strategy, hyps in (("hatl", varied), ("full", stuck)):
        run = _write_run(tmp_path, strategy, hyps)
        write_json(run / "scores.json", score_files([run / "decoded.dev.jsonl", run / "decoded.test.jsonl"], config))
        scores.append(run / "scores.json")
    out = tmp_path / "table5.csv"
    assert main(["table", "--config", CONFIG, "--table", "5", "--dataset", "phoenix14t",
                 "--scores", *map(str, scores), "--out", str(out)]) == 0
    frame = pd.read_csv(out)
    measured = frame[frame.source == "measured"].set_index("strategy")
    assert measured.loc["full", "test_distinct"] == 2 and measured.loc["full", "test_distinct_refs"] == 6
    assert bool(measured.loc["full", "collapsed"]) and not bool(measured.loc["hatl", "collapsed"])
    assert measured.loc["hatl", "test_distinct"] == 6
    # the floor row: one per task group, measured on the same references, placed before the measured rows
    floor = frame[frame.source == FLOOR_SOURCE]
    assert list(floor.name) == [FLOOR_NAME] and floor.task.item() == "sign2text"
    sentence, _ = best_constant_sentence(DEV_REFS)
    expected = score_constant(sentence, TEST_REFS)
    assert floor.test_bleu4.item() == pytest.approx(expected["bleu4"], abs=1e-4)
    assert floor.test_rouge.item() == pytest.approx(expected["rouge"], abs=1e-4)
    assert floor.dev_bleu1.item() == pytest.approx(score_constant(sentence, DEV_REFS)["bleu1"], abs=1e-4)
    s2t = frame[frame.task == "sign2text"].reset_index(drop=True)
    assert s2t.index[s2t.source == FLOOR_SOURCE][0] < s2t.index[s2t.source == "measured"].min()
    md = out.with_suffix(".md").read_text(encoding="utf-8")
    ours = [line for line in md.splitlines() if "| measured |" in line]
    stuck_line = next(line for line in ours if "Full" in line)
    assert "⚠ collapsed" in stuck_line and "2/6 ⚠" in stuck_line
    hatl_line = next(line for line in ours if "HATL" in line)
    assert "collapsed" not in hatl_line and "6/6" in hatl_line
    assert "COLLAPSED: 1 of 2 measured runs" in md and FLOOR_NAME in md
    side = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert side["constant_output"]["sign2text"]["main"]["sentence"] == sentence
    assert len(side["collapsed"]) == 1 and "[Sign2Text]" in side["collapsed"][0]


def test_table_without_collapse_says_so(tmp_path, config):
    from hatl.evaluate.score import score_files
    from hatl.io import write_json

    run = _write_run(tmp_path, "hatl", {"dev": DEV_REFS, "test": TEST_REFS})
    write_json(run / "scores.json", score_files([run / "decoded.dev.jsonl", run / "decoded.test.jsonl"], config))
    out = tmp_path / "table5.csv"
    assert main(["table", "--config", CONFIG, "--table", "5", "--dataset", "phoenix14t",
                 "--scores", str(run / "scores.json"), "--out", str(out)]) == 0
    md = out.with_suffix(".md").read_text(encoding="utf-8")
    assert "No measured run is collapsed" in md and "⚠ collapsed" not in md
