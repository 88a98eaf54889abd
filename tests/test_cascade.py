"""Sign2Gloss2Text as a cascade: a sign2gloss run recognises glosses, the gloss2text run translates them.

Tiny runs on the synthetic dataset of test_train_data; the cascade's behaviour is pinned, not its quality.
"""

from __future__ import annotations

import json

import pytest
import torch

from hatl import batches as D
from hatl.cli import main as hatl_main
from hatl.errors import InputError
from hatl.evaluate.decode import DecodeSettings, decode_cascade, load_cascade, recognise_glosses
from hatl.train.recipe import RunSpec, train_run
from test_train_data import tiny_run_inputs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny sign2gloss run and one tiny gloss2text run of the same dataset, translator and fold."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("cascade")
    inp = tiny_run_inputs(root)
    out = {}
    for task in ("sign2gloss", "gloss2text"):
        run = root / "runs" / "tiny" / "transformer" / task / "full" / "main" / "seed1234"
        spec = RunSpec("tiny", "transformer", task, "full", "main", inp["data_dir"], inp["vocab_dir"],
                       inp["backbone"] if task != "gloss2text" else None, run, root / "resume" / task, threads=1)
        train_run(spec, inp["config"])
        out[task] = run
    return inp, out


def _dev_samples(inp):
    gloss_vocab, text_vocab = D.load_vocabularies(inp["vocab_dir"], "main")
    options = D.split_options(inp["config"]["datasets"]["tiny"], "sign2gloss2text")
    dev = D.load_split(D.split_sources(inp["data_dir"], "main")["dev"], gloss_vocab, text_vocab, **options)
    settings = DecodeSettings.from_config({**inp["config"]["decoding"], "lm_weight": 0.0}, blank=gloss_vocab.blank)
    return dev.samples, gloss_vocab, text_vocab, settings


def test_cascade_translates_the_recognised_glosses(runs):
    """The text comes from the glosses the recogniser emits: replacing them changes the translation, and
    feeding the reference glosses gives exactly what the gloss2text run decodes from them."""
    inp, paths = runs
    recogniser, translator, identity = load_cascade(paths["sign2gloss"], paths["gloss2text"])
    assert identity["task"] == "sign2gloss2text" and identity["strategy"] == "full"
    samples, gloss_vocab, text_vocab, settings = _dev_samples(inp)
    recognised = recognise_glosses(recogniser, samples, settings)
    rows, empty = decode_cascade(recogniser, translator, samples, text_vocab, gloss_vocab, settings)
    assert [r["gloss_hyp"] for r in rows] == [gloss_vocab.decode(ids) for ids in recognised]
    assert [r["ref"] for r in rows] == [s.text for s in samples]
    assert [r["gloss_ref"] for r in rows] == [s.gloss for s in samples]
    assert empty == [s.sample_id for s, ids in zip(samples, recognised) if not ids]

    truth = [list(s.gloss_ids) for s in samples]
    oracle, _ = decode_cascade(recogniser, translator, samples, text_vocab, gloss_vocab, settings, recognised=truth)
    assert [r["gloss_hyp"] for r in oracle] == [s.gloss for s in samples]
    # another gloss input, same videos: other texts (the translator reads glosses, not the sign encoder)
    shifted = truth[1:] + truth[:1]
    moved, _ = decode_cascade(recogniser, translator, samples, text_vocab, gloss_vocab, settings, recognised=shifted)
    changed = sum(a["hyp"] != b["hyp"] for a, b in zip(oracle, moved))
    distinct_inputs = sum(a != b for a, b in zip(truth, shifted))
    assert distinct_inputs > 0 and changed > 0
    for a, b, ga, gb in zip(oracle, moved, truth, shifted):
        if ga == gb:
            assert a["hyp"] == b["hyp"]  # same glosses in, same text out, whatever the video


def test_empty_recognition_gets_the_empty_translation(runs):
    inp, paths = runs
    recogniser, translator, _ = load_cascade(paths["sign2gloss"], paths["gloss2text"])
    samples, gloss_vocab, text_vocab, settings = _dev_samples(inp)
    recognised = [list(s.gloss_ids) for s in samples]
    recognised[0] = []
    rows, empty = decode_cascade(recogniser, translator, samples, text_vocab, gloss_vocab, settings, recognised=recognised)
    assert empty == [samples[0].sample_id]
    assert rows[0]["hyp"] == "" and rows[0]["gloss_hyp"] == "" and rows[0]["ref"] == samples[0].text
    assert all(r["hyp"] for r in rows[1:]) or len(rows) == 1


def test_cascade_refuses_stages_in_the_wrong_order(runs):
    _, paths = runs
    with pytest.raises(InputError, match="first stage must be a sign2gloss run"):
        load_cascade(paths["gloss2text"], paths["sign2gloss"])


def test_hatl_decode_cascade_writes_scorable_files(runs, tmp_path):
    """`hatl decode --translator-run` writes the cascade's decoded files; `hatl score` gives BLEU and gloss WER."""
    inp, paths = runs
    out = tmp_path / "runs" / "tiny" / "transformer" / "sign2gloss2text" / "full" / "main" / "seed1234"
    code = hatl_main(["decode", "--config", str(inp["config_path"]), "--run-dir", str(paths["sign2gloss"]),
                      "--translator-run", str(paths["gloss2text"]), "--data-dir", str(inp["data_dir"]),
                      "--vocab-dir", str(inp["vocab_dir"]), "--out-dir", str(out), "--threads", "1"])
    assert code == 0
    summary = json.loads((out / "decoded.summary.json").read_text(encoding="utf-8"))
    assert summary["run"]["task"] == "sign2gloss2text"
    assert summary["run"]["stages"] == {"recognition": str(paths["sign2gloss"]), "translation": str(paths["gloss2text"])}
    assert "empty_recognitions" in summary["splits"]["dev"]
    assert hatl_main(["score", "--config", str(inp["config_path"]), "--decoded", str(out / "decoded.dev.jsonl"),
                      str(out / "decoded.test.jsonl"), "--out", str(out / "scores.json")]) == 0
    scores = json.loads((out / "scores.json").read_text(encoding="utf-8"))
    assert scores["run"]["task"] == "sign2gloss2text"
    for split in ("dev", "test"):
        assert scores["splits"][split]["bleu4"] is not None and scores["splits"][split]["wer"] is not None


def test_sign2gloss_decoded_alone_scores_gloss_wer_only(runs, tmp_path):
    """A recognition run (e.g. boston104, which has no text) decodes to glosses; its scores are WER alone."""
    inp, paths = runs
    out = tmp_path / "s2g"
    assert hatl_main(["decode", "--config", str(inp["config_path"]), "--run-dir", str(paths["sign2gloss"]),
                      "--data-dir", str(inp["data_dir"]), "--vocab-dir", str(inp["vocab_dir"]),
                      "--out-dir", str(out), "--threads", "1"]) == 0
    rows = [json.loads(line) for line in (out / "decoded.test.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows and all(r["hyp"] is None and isinstance(r["gloss_hyp"], str) for r in rows)
    assert hatl_main(["score", "--config", str(inp["config_path"]), "--decoded", str(out / "decoded.test.jsonl"),
                      "--out", str(out / "scores.json")]) == 0
    test = json.loads((out / "scores.json").read_text(encoding="utf-8"))["splits"]["test"]
    assert "bleu4" not in test and 0.0 <= test["wer"]
