"""hatl score against values computed by hand: which side is the hypothesis, which output is fused, and the
checks on decoded files. BLEU is cumulative BLEU-n (tokenize none, no smoothing, effective order; the
config's settings), ROUGE-L is the mean of 2·LCS/(|hyp|+|ref|), WER is summed edits / reference words."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from hatl.cli import main
from hatl.config import REPO_ROOT
from hatl.errors import InputError
from hatl.metrics import BleuSettings
from hatl.evaluate.score import read_decoded, score_rows

CONFIG = str(REPO_ROOT / "config" / "config.yaml")
# Two sentences whose fused hypotheses are shorter than their references (so the brevity penalty applies
# to hyps but not to refs: swapping the two changes every BLEU value) and whose no-LM beams differ.
ROWS = [
    {"id": "s1", "ref": "the cat sat on the mat", "hyp": "the cat sat on mat", "hyp_nolm": "a cat sat on the mat",
     "gloss_ref": "CAT SIT MAT HERE", "gloss_hyp": "CAT MAT"},
    {"id": "s2", "ref": "it is raining today", "hyp": "it is raining", "hyp_nolm": "it is raining",
     "gloss_ref": "RAIN TODAY", "gloss_hyp": "RAIN TODAY"},
]


def cumulative_bleu(correct: list[int], total: list[int], sys_len: int, ref_len: int) -> dict[str, float]:
    bp = 1.0 if sys_len >= ref_len else math.exp(1 - ref_len / sys_len)
    out = {}
    for n in range(1, 5):
        log_mean = sum(math.log(c / t) for c, t in zip(correct[:n], total[:n])) / n
        out[f"bleu{n}"] = 100 * bp * math.exp(log_mean)
    return out


# Fused, n-gram matches / n-grams of the hypotheses, counted by hand:
#   s1 "the cat sat on mat" vs "the cat sat on the mat": 1-grams 5/5, 2-grams 3/4 ("on mat" is not in the ref),
#      3-grams 2/3, 4-grams 1/2;  s2 "it is raining" vs "it is raining today": 3/3, 2/2, 1/1, 0/0.
FUSED_BLEU = cumulative_bleu([8, 5, 3, 1], [8, 6, 4, 2], sys_len=8, ref_len=10)
#   LCS 5 of 5+6 words, LCS 3 of 3+4 words
FUSED_ROUGE = 100 * (2 * 5 / 11 + 2 * 3 / 7) / 2
# No LM: s1 "a cat sat on the mat": 1-grams 5/6, 2-grams 4/5, 3-grams 3/4, 4-grams 2/3; s2 as fused.
NOLM_BLEU = cumulative_bleu([8, 6, 4, 2], [9, 7, 5, 3], sys_len=9, ref_len=10)
NOLM_ROUGE = 100 * (2 * 5 / 12 + 2 * 3 / 7) / 2
# Glosses: "CAT MAT" vs "CAT SIT MAT HERE" is 2 deletions; s2 exact: 2 edits / 6 reference glosses.
FUSED_WER = 100 * 2 / 6


def test_hand_computed_values_fix_hypothesis_side_and_fused_output():
    s = score_rows(ROWS, BleuSettings())
    assert s["n"] == 2
    for n in range(1, 5):
        assert s[f"bleu{n}"] == pytest.approx(FUSED_BLEU[f"bleu{n}"], abs=1e-9), n
        assert s["nolm"][f"bleu{n}"] == pytest.approx(NOLM_BLEU[f"bleu{n}"], abs=1e-9), n
    assert (s["sys_len"], s["ref_len"]) == (8, 10)
    assert s["bp"] == pytest.approx(math.exp(1 - 10 / 8))
    assert s["rouge"] == pytest.approx(FUSED_ROUGE)
    assert s["nolm"]["rouge"] == pytest.approx(NOLM_ROUGE)
    assert s["wer"] == pytest.approx(FUSED_WER) and (s["wer_errors"], s["wer_ref_words"]) == (2, 6)
    # what the mistakes this test exists for would give instead: refs scored against hyps (no brevity
    # penalty, clipped by the shorter side) and the no-LM beam scored on the fused output
    swapped = cumulative_bleu([8, 5, 3, 1], [10, 8, 6, 4], sys_len=10, ref_len=8)
    assert swapped["bleu1"] == pytest.approx(80.0) and s["bleu1"] != pytest.approx(swapped["bleu1"], abs=1)
    assert s["nolm"]["bleu4"] != pytest.approx(s["bleu4"], abs=1)


def test_cli_scores_each_split_from_its_file(tmp_path):
    run = tmp_path / "runs" / "ds" / "adat" / "sign2gloss2text" / "hatl" / "main" / "seed7"
    run.mkdir(parents=True)
    (run / "decoded.test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    exact = [{**r, "hyp": r["ref"], "hyp_nolm": r["ref"], "gloss_hyp": r["gloss_ref"]} for r in ROWS]
    (run / "decoded.dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in exact), encoding="utf-8")
    out = run / "scores.json"
    assert main(["score", "--config", CONFIG, "--decoded", str(run / "decoded.dev.jsonl"), str(run / "decoded.test.jsonl"),
                 "--out", str(out)]) == 0
    scores = json.loads(out.read_text(encoding="utf-8"))
    assert scores["run"] == {"dataset": "ds", "model": "adat", "task": "sign2gloss2text", "strategy": "hatl", "fold": "main",
                             "seed": "seed7"}
    test, dev = scores["splits"]["test"], scores["splits"]["dev"]
    assert test["bleu4"] == pytest.approx(FUSED_BLEU["bleu4"]) and test["nolm"]["bleu4"] == pytest.approx(NOLM_BLEU["bleu4"])
    assert dev["bleu4"] == pytest.approx(100.0) and dev["rouge"] == pytest.approx(100.0) and dev["wer"] == 0.0


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_duplicate_id_is_refused_naming_the_line(tmp_path):
    path = write_lines(tmp_path / "decoded.test.jsonl", [
        json.dumps({"id": "a", "ref": "x y", "hyp": "x y"}),
        json.dumps({"id": "b", "ref": "z", "hyp": "z"}),
        json.dumps({"id": "a", "ref": "x y", "hyp": "x"}),  # complete line: only the id is wrong
    ])
    with pytest.raises(InputError, match=r"decoded\.test\.jsonl \[line 3 id=a\]: duplicate sample id"):
        read_decoded(path)
    out = tmp_path / "scores.json"
    assert main(["score", "--config", CONFIG, "--decoded", str(path), "--out", str(out)]) == 2
    assert not out.exists()


@pytest.mark.parametrize(("line", "problem"), [
    ('{"id": "a", "ref": "x"}', "field 'hyp' is missing or not a string"),
    ('{"id": 3, "ref": "x", "hyp": "x"}', "field 'id' is missing or not a string"),
    ('["a", "x", "x"]', "a line must be a JSON object"),
    ('{"id": "a", "ref": "x", "hyp": "x"', "not valid JSON"),
])
def test_malformed_lines_are_refused_naming_the_line(tmp_path, line, problem):
    path = write_lines(tmp_path / "decoded.dev.jsonl", [json.dumps({"id": "ok", "ref": "x", "hyp": "x"}), line])
    with pytest.raises(InputError, match=r"\[line 2\]: " + problem.replace("(", r"\(")):
        read_decoded(path)
