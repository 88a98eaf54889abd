"""Minimum Bayes risk selection over the beam's finished hypotheses (hatl.evaluate.mbr) and its use in hatl decode."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch

from hatl.evaluate.mbr import MBRConfig, expected_utilities, mbr_select, posterior, reselect, sentence_utility
from hatl.models.beam import BeamConfig, beam_search, beam_search_nbest

BLEU = sentence_utility("bleu")

# The beam's best is an outlier; the next three agree with each other: MBR should pick one of the agreeing ones.
CONSENSUS = ["heute nacht regen", "morgen im norden sonne und im süden regen", "morgen im norden sonne im süden regen",
             "morgen norden sonne und im süden regen"]
CONSENSUS_SCORES = [-1.0, -1.1, -1.2, -1.3]


def test_posterior_is_a_softmax_of_scores_over_temperature():
    p = posterior([0.0, -math.log(3.0)], 1.0)
    assert p == pytest.approx([0.75, 0.25])
    assert posterior([0.0, -math.log(3.0)], 0.5) == pytest.approx([0.9, 0.1])  # 3 ** 2 = 9 : 1
    assert posterior([-2.0, -math.inf], 1.0) == [1.0, 0.0]
    with pytest.raises(ValueError, match="every candidate has score -inf"):
        posterior([-math.inf], 1.0)


def test_mbr_prefers_the_consensus_over_the_beams_isolated_best():
    chosen = mbr_select(CONSENSUS, CONSENSUS_SCORES, BLEU, temperature=1.0)
    assert chosen == "morgen im norden sonne und im süden regen"  # the one closest to the other two
    # as the temperature goes to 0 the posterior sits on the beam's best, and MBR returns it
    assert mbr_select(CONSENSUS, CONSENSUS_SCORES, BLEU, temperature=0.01) == CONSENSUS[0]


def test_identical_sentences_are_one_outcome_with_their_mass_summed():
    # two token sequences that detokenise to the same sentence (e.g. through UNK) together outweigh the best
    texts, expected = expected_utilities(["a b c", "x y z", "x y z"], [0.0, -0.2, -0.2], BLEU, 1.0)
    assert texts == ["a b c", "x y z"]
    p = posterior([0.0, -0.2, -0.2], 1.0)
    assert expected[1] == pytest.approx(100.0 * (p[1] + p[2]) + p[0] * BLEU("x y z", "a b c"))
    assert mbr_select(["a b c", "x y z", "x y z"], [0.0, -0.2, -0.2], BLEU, 1.0) == "x y z"


def test_a_single_candidate_and_ties_return_the_beams_order():
    assert mbr_select(["nur eins"], [-3.0], BLEU, 1.0) == "nur eins"
    # equal scores, symmetric disagreement: the tie goes to the candidate the beam ranked first
    assert mbr_select(["a b c d", "e f g h"], [-1.0, -1.0], BLEU, 1.0) == "a b c d"


def test_chrf_utility_scores_character_overlap():
    chrf = sentence_utility("chrf")
    assert chrf("sonnig", "sonnig") == pytest.approx(100.0)
    assert 0 < chrf("sonnige", "sonnig") < 100 and chrf("xyz", "sonnig") == pytest.approx(0.0)


@pytest.mark.parametrize(("mbr", "problem"), [
    ({"utility": "meteor"}, "MBR utility must be one of bleu, chrf, got 'meteor'"),
    ({"weights": "probability"}, "MBR weights must be one of score, logprob, got 'probability'"),
    ({"temperature": 0}, "MBR temperature must be > 0, got 0.0"),
])
def test_mbr_config_refuses_what_it_cannot_run(mbr, problem):
    with pytest.raises(ValueError, match=re.escape(problem)):
        MBRConfig.from_config(mbr)


def test_mbr_config_defaults_and_null():
    assert MBRConfig.from_config(None) is None
    assert MBRConfig.from_config({}) == MBRConfig("bleu", 1.0, "score")
    assert MBRConfig.from_config({"utility": "chrf", "temperature": 0.5, "weights": "logprob"}) == MBRConfig("chrf", 0.5, "logprob")


def test_beam_nbest_is_sorted_and_its_first_is_the_beams_choice():
    from tests.test_beam import ToyDecoder, model_step_fn

    model = ToyDecoder(batch=3, seed=4)
    cfg = BeamConfig(beam_width=4, max_length=6, length_penalty=1.0, lm_weight=0.0)
    step = model_step_fn(model, model.encode(), 3)
    lists = beam_search_nbest(step, 3, cfg)
    best = beam_search(step, 3, cfg)
    for hyps, one in zip(lists, best):
        assert len(hyps) >= cfg.beam_width
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        assert hyps[0].tokens == one.tokens and hyps[0].score == one.score


def test_reselect_reads_the_stored_candidates():
    # the log-probs rank the last candidate far first: near temperature 0 the logprob posterior returns it
    logprobs = [-9.0, -9.0, -9.0, -2.0]
    rows = [{"id": "a", "hyp": CONSENSUS[0], "nbest": [[t, s, lp] for t, s, lp in zip(CONSENSUS, CONSENSUS_SCORES, logprobs)]},
            {"id": "b", "hyp": "", "nbest": []}]
    assert reselect(rows, None) == [CONSENSUS[0], ""]
    assert reselect(rows, MBRConfig("bleu", 1.0)) == ["morgen im norden sonne und im süden regen", ""]
    assert reselect(rows, MBRConfig("bleu", 0.01, "logprob")) == [CONSENSUS[3], ""]
    assert reselect(rows, MBRConfig("bleu", 0.01, "score")) == [CONSENSUS[0], ""]
    with pytest.raises(ValueError, match=r"row 0 \('a'\): a candidate has no logprob column"):
        reselect([{"id": "a", "hyp": "h", "nbest": [["h", -1.0]]}], MBRConfig("bleu", 1.0, "logprob"))
    with pytest.raises(ValueError, match=r"row 0 \('x'\) has no 'nbest'"):
        reselect([{"id": "x", "hyp": "h"}], MBRConfig())


def test_decode_with_mbr_writes_the_choice_the_beams_best_and_the_candidates(tmp_path):
    import yaml

    from hatl.cli import main
    from hatl.config import REPO_ROOT
    from tests.test_beam import DECODE_TEXTS, _tiny_run

    torch.manual_seed(0)
    data_dir, vocab_dir, run_dir, _ = _tiny_run(tmp_path)
    config = yaml.safe_load((REPO_ROOT / "config/config.yaml").read_text(encoding="utf-8"))
    config["decoding"].update(max_length=6, lm_weight=0.0, beam_width=4, mbr={"utility": "bleu", "temperature": 1.0})
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    out = tmp_path / "mbr"
    assert main(["decode", "--config", str(config_path), "--run-dir", str(run_dir), "--threads", "1",
                 "--data-dir", str(data_dir), "--vocab-dir", str(vocab_dir), "--out-dir", str(out)]) == 0
    rows = [json.loads(x) for x in (out / "decoded.test.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["ref"] for r in rows] == DECODE_TEXTS
    for r in rows:
        texts = [c[0] for c in r["nbest"]]
        assert len(texts) >= 4 and r["hyp_beam"] == texts[0] and r["hyp"] in texts
        assert all(len(c) == 3 and c[2] <= 0 for c in r["nbest"])  # sentence, beam score, model log-prob
        assert r["hyp"] == r["hyp_nolm"]  # no LM: one beam, one choice
    assert reselect(rows, MBRConfig("bleu", 1.0)) == [r["hyp"] for r in rows]  # the stored list reproduces the choice
    assert reselect(rows, None) == [r["hyp_beam"] for r in rows]
    summary = json.loads((out / "decoded.summary.json").read_text(encoding="utf-8"))
    assert summary["settings"]["mbr"] == {"utility": "bleu", "temperature": 1.0, "weights": "score"}
    # without mbr the rows carry neither field, as before
    config["decoding"]["mbr"] = None
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    plain = tmp_path / "plain"
    assert main(["decode", "--config", str(config_path), "--run-dir", str(run_dir), "--threads", "1",
                 "--data-dir", str(data_dir), "--vocab-dir", str(vocab_dir), "--out-dir", str(plain)]) == 0
    plain_rows = [json.loads(x) for x in (plain / "decoded.test.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["hyp"] for r in plain_rows] == [r["hyp_beam"] for r in rows]
    assert all("nbest" not in r and "hyp_beam" not in r for r in plain_rows)


def test_mbr_sweep_bench_prints_beam_mbr_and_the_floor(tmp_path, capsys):
    import importlib.util

    from hatl.config import REPO_ROOT

    spec = importlib.util.spec_from_file_location("mbr_sweep", REPO_ROOT / "bench" / "mbr_sweep.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    refs = [CONSENSUS[1], "es bleibt kalt"] * 3
    rows = [{"id": f"d{i}", "ref": ref, "hyp": CONSENSUS[0], "hyp_beam": CONSENSUS[0],
             "nbest": [[t, s, 10 * s] for t, s in zip(CONSENSUS, CONSENSUS_SCORES)]} for i, ref in enumerate(refs)]
    path = tmp_path / "decoded.dev.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert bench.main([str(path), str(path), "--utilities", "bleu", "--weights", "score", "--temperatures", "1"]) == 0
    out = capsys.readouterr().out
    beam = next(x for x in out.splitlines() if x.strip().startswith("beam") and "BLEU-1..4" in x)
    mbr = next(x for x in out.splitlines() if x.strip().startswith("mbr bleu score T=1") and "BLEU-1..4" in x)
    assert "distinct 1/2" in beam and float(mbr.split()[8]) == pytest.approx(50.0)  # MBR's pick matches 3 of 6 refs
    assert "floor (constant)" in out and "mean BLEU-4 over 2 files" in out
    # a file decoded without MBR has no candidates: a clear error, exit 2
    path.write_text(json.dumps({"id": "x", "ref": "a", "hyp": "a"}) + "\n", encoding="utf-8")
    assert bench.main([str(path)]) == 2
    assert "has no 'nbest'" in capsys.readouterr().err
