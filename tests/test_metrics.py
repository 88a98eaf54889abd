"""Metrics against hand-computed values and against sacrebleu's own command line."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hatl import metrics
from hatl.evaluate.bootstrap import bleu_from_stats, paired_bootstrap, sentence_stats

SACREBLEU = Path(sys.executable).with_name("sacrebleu")

HYPS = [
    "am tag scheint die sonne im süden",
    "morgen regnet es im norden und osten",
    "der wind weht schwach aus west",
    "in der nacht wird es kalt",
    "es gibt gewitter",
]
REFS = [
    "am tag scheint im süden die sonne",
    "morgen regnet es im norden",
    "der wind weht mäßig aus west",
    "in der nacht wird es frostig kalt",
    "örtlich gibt es gewitter",
]


def test_bleu_cumulative_by_hand():
    out = metrics.bleu_scores(["a b c d e"], ["a b c d f"])
    p = [4 / 5, 3 / 4, 2 / 3, 1 / 2]
    for n in range(1, 5):
        expected = 100 * math.exp(sum(math.log(x) for x in p[:n]) / n)
        assert out[f"bleu{n}"] == pytest.approx(expected, abs=1e-9)
    assert out["bp"] == 1.0
    assert out["bleu_signature"]["bleu4"].startswith("nrefs:1|case:mixed|eff:yes|tok:none|smooth:none")


def test_bleu_effective_order_and_brevity():
    # two-word sentence: 3- and 4-gram totals are 0, effective order keeps BLEU-4 at 100
    assert metrics.bleu_scores(["a b"], ["a b"])["bleu4"] == pytest.approx(100.0)
    # brevity penalty exp(1 - 4/2)
    out = metrics.bleu_scores(["a b"], ["a b c d"])
    assert out["bleu1"] == pytest.approx(100 * math.exp(1 - 2), abs=1e-9)


def test_rouge_l_equals_paper_formula_by_hand():
    ref, hyp = "the cat sat on the mat", "the cat on mat"
    lcs = metrics.lcs_length(hyp.split(), ref.split())
    assert lcs == 4
    expected = 2 * lcs / (len(hyp.split()) + len(ref.split()))
    assert expected == pytest.approx(0.8)
    assert metrics.rouge_l([hyp], [ref]) == pytest.approx(100 * expected)


def test_rouge_keeps_umlauts_and_arabic():
    # rouge-score's default tokenizer would reduce these to fragments (or nothing for Arabic)
    de_ref, de_hyp = "über die straße fährt ein bär", "über die brücke fährt ein bär"
    assert metrics.rouge_l([de_hyp], [de_ref]) == pytest.approx(100 * 2 * 5 / 12)
    ar_ref, ar_hyp = "أنا أذهب إلى المستشفى اليوم", "أنا أذهب إلى الطبيب"
    assert metrics.rouge_l([ar_hyp], [ar_ref]) == pytest.approx(100 * 2 * 3 / 9)
    assert metrics.rouge_l(["ذهب"], ["جاء"]) == 0.0
    assert metrics.rouge_l([ar_ref], [ar_ref]) == pytest.approx(100.0)


def test_bleu_arabic_non_ascii():
    out = metrics.bleu_scores(["أنا أذهب إلى المستشفى"], ["أنا أذهب إلى المستشفى"])
    assert out["bleu4"] == pytest.approx(100.0)


def test_wer_by_hand():
    out = metrics.wer(["A X C", "B"], ["A B C D", "B"])
    assert out["wer_errors"] == 2 and out["wer_ref_words"] == 5
    assert out["wer"] == pytest.approx(40.0)
    assert metrics.edit_distance("k i t t e n".split(), "s i t t i n g".split()) == 3
    assert metrics.wer([""], [""])["wer"] == 0.0


def test_chrf_identity():
    assert metrics.chrf(REFS, REFS)["chrf"] == pytest.approx(100.0)


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError):
        metrics.bleu_scores(["a"], ["a", "b"])


def _cli(args: list[str]) -> dict:
    out = subprocess.run([str(SACREBLEU), *args, "--format", "json"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.skipif(not SACREBLEU.exists(), reason="sacrebleu command not installed beside the interpreter")
def test_against_sacrebleu_command_line(tmp_path):
    hyp, ref = tmp_path / "hyp.txt", tmp_path / "ref.txt"
    hyp.write_text("\n".join(HYPS) + "\n", encoding="utf-8")
    ref.write_text("\n".join(REFS) + "\n", encoding="utf-8")
    ours = metrics.bleu_scores(HYPS, REFS)
    cli = _cli([str(ref), "-i", str(hyp), "-m", "bleu", "-tok", "none", "-s", "none"])
    assert ours["bleu4"] == pytest.approx(cli["score"], abs=0.05)  # the CLI rounds to 1 decimal
    # BLEU-1..3 are cumulative: rebuild them from the CLI's precisions and brevity penalty
    verbose = cli["verbose_score"]
    precisions = [float(x) for x in verbose.split()[0].split("/")]
    bp = float(verbose.split("BP = ")[1].split()[0])
    for n in range(1, 5):
        expected = bp * math.exp(sum(math.log(p / 100) for p in precisions[:n]) / n) * 100
        assert ours[f"bleu{n}"] == pytest.approx(expected, abs=0.1)
    cli_chrf = _cli([str(ref), "-i", str(hyp), "-m", "chrf"])
    assert metrics.chrf(HYPS, REFS)["chrf"] == pytest.approx(cli_chrf["score"], abs=0.05)


def test_bootstrap_stats_reproduce_corpus_bleu():
    stats = sentence_stats(HYPS, REFS)
    assert bleu_from_stats(stats.bleu.sum(axis=0)) == pytest.approx(metrics.bleu_scores(HYPS, REFS)["bleu4"])
    assert 100 * stats.rouge.mean() == pytest.approx(metrics.rouge_l(HYPS, REFS))


def test_paired_bootstrap_detects_better_system():
    refs = REFS * 8
    good = sentence_stats(refs, refs)
    bad = sentence_stats(HYPS * 8, refs)
    strong = paired_bootstrap([good], [bad], "bleu4", samples=200, seed=1)
    assert strong["p_value"] == pytest.approx(1 / 201)
    weak = paired_bootstrap([bad], [good], "rouge", samples=200, seed=1)
    assert weak["p_value"] == pytest.approx(1.0)
    same = paired_bootstrap([bad, bad], [bad, bad], "bleu4", samples=50, seed=3)
    assert same["p_value"] == 1.0 and same["delta"] == 0.0
    again = paired_bootstrap([bad], [good], "bleu4", samples=50, seed=3)
    assert again == paired_bootstrap([bad], [good], "bleu4", samples=50, seed=3)
    # the perfect baseline is at least as good in every resample; the observed values are the corpus scores
    assert again["p_value"] == 1.0 and (again["samples"], again["seed"]) == (50, 3)
    assert again["baseline"] == pytest.approx(100.0)
    assert again["hatl"] == pytest.approx(metrics.bleu_scores(HYPS * 8, refs)["bleu4"])
    assert again["delta"] == pytest.approx(again["hatl"] - 100.0) and again["delta"] < -10
    assert json.loads(json.dumps(again)) == again  # plain numbers: written to the table sidecar as they are


@pytest.mark.parametrize("effective_order", [True, False])
def test_vectorised_bleu_matches_sacrebleu(effective_order):
    from hatl.evaluate.bootstrap import bleu_batch
    from hatl.metrics import BleuSettings

    settings = BleuSettings(effective_order=effective_order)
    hyps = HYPS + ["gewitter", "", "xx yy", "es gibt"]
    refs = REFS + ["es gibt gewitter", "leer", "xx yy zz", "es gibt"]
    stats = sentence_stats(hyps, refs, settings)
    rng = np.random.default_rng(0)
    weights = rng.multinomial(len(hyps), np.full(len(hyps), 1 / len(hyps)), size=40)
    weights = np.vstack([weights, np.eye(len(hyps), dtype=np.int64)])  # single sentences hit the edge cases
    summed = weights @ stats.bleu
    expected = [bleu_from_stats(row, settings) for row in summed]
    assert bleu_batch(summed, settings) == pytest.approx(expected, abs=1e-9)


@pytest.mark.real_data
def test_real_phoenix_dev_text_keeps_umlauts():
    """On the real PHOENIX-2014-T dev translations, ROUGE-L must see every German word (rouge-score's
    default tokenizer would split 'überall' into 'berall' and drop 'ß')."""
    import csv

    from conftest import real_data_path
    from rouge_score import tokenize as rouge_tokenize

    from hatl.text import normalise_text

    path = real_data_path("phoenix14t", "manual", "PHOENIX-2014-T.dev.corpus.csv")
    with open(path, encoding="utf-8", newline="") as fh:
        refs = [normalise_text(r["translation"]) for r in csv.DictReader(fh, delimiter="|")]
    assert len(refs) == 519
    umlaut = [r for r in refs if any(ch in r for ch in "äöüß")]
    assert len(umlaut) > 50
    # the default tokenizer loses characters; ours keeps the words intact
    assert any(rouge_tokenize.tokenize(r, None) != r.split() for r in umlaut)
    # drop the last word of each hypothesis: ROUGE-L F1 is then exactly 2(n-1)/(2n-1) per sentence
    hyps = [" ".join(r.split()[:-1]) for r in umlaut]
    expected = sum(2 * (len(r.split()) - 1) / (2 * len(r.split()) - 1) for r in umlaut) / len(umlaut)
    assert metrics.rouge_l(hyps, umlaut) == pytest.approx(100 * expected)
    assert metrics.bleu_scores(umlaut, umlaut)["bleu4"] == pytest.approx(100.0)
