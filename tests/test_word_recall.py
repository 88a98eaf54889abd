"""Reference words by training count: which of them a translator writes (hatl.evaluate.word_recall)."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import real_data_path
from hatl.evaluate.word_recall import (
    DEFAULT_BANDS,
    BandRecall,
    band_index,
    check_bands,
    format_recall,
    recall_by_frequency,
    training_counts,
)
from hatl.text import normalise_text

BANDS = ((0, 0), (1, 4), (5, None))


def by_label(rows: list[BandRecall]) -> dict[str, BandRecall]:
    return {row.label: row for row in rows}


def test_training_counts_are_whitespace_word_counts():
    assert training_counts(["regen im norden", "regen regen"]) == {"regen": 3, "im": 1, "norden": 1}


def test_a_translator_that_writes_only_frequent_words_has_zero_recall_on_rare_ones():
    counts = training_counts(["es regnet"] * 10 + ["im norden"] * 2 + ["schneefall"])
    refs = ["im norden schneefall", "es regnet im norden", "es graupelt"]
    hyps = ["es regnet", "es regnet es regnet", "es regnet"]
    rows = by_label(recall_by_frequency(hyps, refs, counts, BANDS))
    # "graupelt" was never seen; "im", "norden" twice and "schneefall" once (both in 1-4); "es", "regnet" 10 times
    assert (rows["0"].ref_tokens, rows["0"].matched, rows["0"].hyp_tokens) == (1, 0, 0)
    assert (rows["1-4"].ref_tokens, rows["1-4"].matched, rows["1-4"].hyp_tokens) == (5, 0, 0)
    # "es regnet" in sentence 2's reference and "es" in sentence 3's all matched; sentence 2 writes each twice (clipped)
    assert (rows["5+"].ref_tokens, rows["5+"].matched, rows["5+"].hyp_tokens) == (3, 3, 8)
    assert rows["1-4"].recall == 0.0 and rows["5+"].recall == 1.0


def test_clipping_counts_a_repeated_reference_word_only_as_often_as_the_hypothesis_has_it():
    counts = training_counts(["wind"] * 3)
    [row] = [r for r in recall_by_frequency(["wind"], ["wind wind"], counts, BANDS) if r.ref_tokens]
    assert (row.label, row.ref_tokens, row.matched, row.recall) == ("1-4", 2, 1, 0.5)


def test_an_empty_band_has_no_recall_and_words_above_a_closed_last_band_are_not_counted():
    counts = training_counts(["sonne"] * 9)
    rows = recall_by_frequency(["sonne"], ["sonne"], counts, ((0, 0), (1, 4)))
    assert [r.ref_tokens for r in rows] == [0, 0] and all(r.recall is None for r in rows)
    assert band_index(9, ((0, 0), (1, 4))) is None and band_index(9, DEFAULT_BANDS) == 2


def test_format_names_every_band():
    rows = recall_by_frequency(["a"], ["a b"], training_counts(["a"]), BANDS)
    assert format_recall(rows) == ("seen 0 times: recall 0.000 of 1 reference tokens, 0 written; "
                                   "seen 1-4 times: recall 1.000 of 1 reference tokens, 1 written; "
                                   "seen 5+ times: recall n/a of 0 reference tokens, 0 written")


@pytest.mark.parametrize("bands, message", [
    ((), "no frequency bands"),
    (((1, 4),), "starts at 1, expected 0"),
    (((0, 0), (2, 5)), "starts at 2, expected 1"),
    (((0, None), (1, 4)), "open-ended but is not the last"),
    (((0, 3), (4, 2)), "ends at 2, below its start 4"),
])
def test_bands_must_start_at_zero_and_follow_each_other(bands, message):
    with pytest.raises(ValueError, match=message):
        check_bands(bands)


def test_hypotheses_and_references_must_pair_up():
    with pytest.raises(ValueError, match="2 hypotheses for 1 references"):
        recall_by_frequency(["a", "b"], ["a"], training_counts(["a"]))


@pytest.mark.real_data
def test_real_phoenix_dev_references_by_training_count():
    """The real PHOENIX14T corpus: 6,820 dev reference tokens, 190 of them seen fewer than 5 times in training
    (docs/validation.md, section 1); the references as their own hypotheses recall every band fully."""
    manual = real_data_path("phoenix14t", "manual")

    def texts(split: str) -> list[str]:
        frame = pd.read_csv(manual / f"PHOENIX-2014-T.{split}.corpus.csv", sep="|")
        return [normalise_text(t) for t in frame["translation"]]

    counts = training_counts(texts("train"))
    dev = texts("dev")
    rows = recall_by_frequency(dev, dev, counts)
    assert [(r.label, r.ref_tokens) for r in rows] == [("0", 57), ("1-4", 133), ("5-19", 381), ("20-99", 1124), ("100+", 5125)]
    assert all(r.recall == 1.0 and r.hyp_tokens == r.ref_tokens for r in rows)
