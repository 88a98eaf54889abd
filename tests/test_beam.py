"""Beam search, KenLM shallow fusion and CTC decoding on small constructed models."""

from __future__ import annotations

import math

import pytest
import torch

from hatl.models.beam import BeamConfig, beam_search, greedy_search, model_step_fn, select_rows
from hatl.models.ctc_decode import CTCConfig, adjust_logprobs, collapse, ctc_decode_batch, ctc_greedy, ctc_prefix_beam
from hatl.evaluate.lm_fusion import LN10, WordLM

ITOS = ["<pad>", "<s>", "</s>", "<unk>", "the", "cat", "dog", "sat"]
EOS = 2

ARPA = """\\data\\
ngram 1=7
ngram 2=4

\\1-grams:
-1.5\t<unk>\t0
-99\t<s>\t-0.3
-0.7\t</s>\t0
-0.6\tthe\t-0.2
-0.8\tcat\t-0.1
-2.5\tdog\t0
-1.2\tsat\t0

\\2-grams:
-0.2\t<s> the
-0.1\tthe cat
-0.3\tcat sat
-0.2\tsat </s>

\\end\\
"""


@pytest.fixture(scope="module")
def lm_model(tmp_path_factory, kenlm_module):
    """The tiny ARPA model through kenlm (kenlm_module: skips locally without kenlm, fails under CI)."""
    path = tmp_path_factory.mktemp("lm") / "tiny.arpa"
    path.write_text(ARPA, encoding="utf-8")
    return kenlm_module.Model(str(path))


class ToyDecoder(torch.nn.Module):
    """Next-token log-probs from the last token and a per-sample memory vector (seeded, deterministic)."""

    def __init__(self, batch: int, vocab: int = len(ITOS), dim: int = 8, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.memory = torch.randn(batch, dim, generator=gen)
        self.emb = torch.randn(vocab, dim, generator=gen)
        self.out = torch.randn(dim, vocab, generator=gen) * 2

    def encode(self):
        return {"memory": self.memory, "note": "kept"}

    def next_token_logprobs(self, encoded, prefix):
        h = torch.tanh(encoded["memory"] + self.emb[prefix[:, -1]] + 0.1 * prefix.shape[1])
        return torch.log_softmax(h @ self.out, dim=-1)


def table_model(table: dict[tuple[int, ...], dict[int, float]], vocab: int = len(ITOS)):
    """next_logprobs from an explicit table: prefix (without BOS) -> {token: prob}."""

    def step(rows, prefix):
        out = torch.full((len(rows), vocab), -1e9, dtype=torch.float64)
        for i, pre in enumerate(prefix.tolist()):
            for tok, p in table.get(tuple(pre[1:]), {EOS: 1.0}).items():  # off-table prefixes (already -1e9) just end
                out[i, tok] = math.log(p)
        return out

    return step


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_width_one_equals_greedy(seed):
    model = ToyDecoder(batch=6, seed=seed)
    step = model_step_fn(model, model.encode(), 6)
    greedy = greedy_search(step, 6, max_length=12)
    beam = beam_search(step, 6, BeamConfig(beam_width=1, max_length=12, lm_weight=0.0))
    assert [h.tokens for h in beam] == greedy


def test_wider_beam_never_scores_worse_and_is_batch_independent():
    model = ToyDecoder(batch=5, seed=7)
    step = model_step_fn(model, model.encode(), 5)
    cfg1 = BeamConfig(beam_width=1, max_length=10, lm_weight=0.0, length_penalty=0.0)
    cfg8 = BeamConfig(beam_width=8, max_length=10, lm_weight=0.0, length_penalty=0.0)
    narrow, wide = beam_search(step, 5, cfg1), beam_search(step, 5, cfg8)
    for a, b in zip(narrow, wide):
        assert b.score >= a.score - 1e-9
    # decoding sample 3 alone gives the same result as inside the batch
    single = ToyDecoder(batch=5, seed=7)
    enc = {"memory": single.memory[3:4], "note": "kept"}
    alone = beam_search(model_step_fn(single, enc, 1), 1, cfg8)
    assert alone[0].tokens == wide[3].tokens


def test_beam_finds_better_sequence_than_greedy():
    # greedy takes 'dog' (0.6) then must end weakly; 'cat' (0.4) leads to 'sat' + EOS with certainty
    table = {
        (): {6: 0.6, 5: 0.4},
        (6,): {EOS: 0.3, 7: 0.4, 4: 0.3},
        (5,): {7: 1.0},
        (5, 7): {EOS: 1.0},
        (6, 7): {EOS: 1.0},
        (6, 4): {EOS: 1.0},
    }
    step = table_model(table)
    assert greedy_search(step, 1, 5) == [[6, 7]]
    best = beam_search(step, 1, BeamConfig(beam_width=4, max_length=5, lm_weight=0.0, length_penalty=0.0))[0]
    assert best.tokens == [5, 7]
    assert best.model_logprob == pytest.approx(math.log(0.4))


def test_max_length_forces_end():
    table = {(): {4: 1.0}, (4,): {4: 1.0}, (4, 4): {4: 1.0}, (4, 4, 4): {4: 1.0}}
    out = beam_search(table_model(table), 1, BeamConfig(beam_width=2, max_length=3, lm_weight=0.0))
    assert out[0].tokens == [4, 4, 4]


def test_lm_fusion_reorders_hypotheses(lm_model):
    # the model slightly prefers "the dog", the LM strongly prefers "the cat"
    table = {(): {4: 1.0}, (4,): {6: 0.55, 5: 0.45}, (4, 6): {EOS: 1.0}, (4, 5): {EOS: 1.0}}
    step = table_model(table)
    lm = WordLM(lm_model, ITOS)
    plain = beam_search(step, 1, BeamConfig(beam_width=4, max_length=4, lm_weight=0.0), lm=lm)[0]
    fused = beam_search(step, 1, BeamConfig(beam_width=4, max_length=4, lm_weight=0.7), lm=lm)[0]
    assert plain.tokens == [4, 6]
    assert fused.tokens == [4, 5]
    # the fused hypothesis carries the LM's natural-log score of the whole sentence, </s> included
    assert fused.lm_logprob == pytest.approx(lm_model.score("the cat", bos=True, eos=True) * LN10, abs=1e-4)
    expected = fused.model_logprob + 0.7 * fused.lm_logprob
    assert fused.score == pytest.approx(expected / ((5 + 3) / 6) ** 1.0, abs=1e-6)


def test_word_lm_matches_kenlm_full_score(lm_model):
    lm = WordLM(lm_model, ITOS)
    for sentence in ["the cat sat", "the dog", "cat the sat dog", "the <unk> cat"]:
        ours = lm.sentence_score(sentence.split())
        assert ours == pytest.approx(lm_model.score(sentence, bos=True, eos=True) * LN10, abs=1e-4)
    state = lm.initial_state()
    total = 0.0
    for tok in (4, 5, 7):
        state, s = lm.extend(state, tok)
        total += s
    total += lm.finish(state)
    assert total == pytest.approx(lm_model.score("the cat sat") * LN10, abs=1e-4)


def test_word_lm_subword_pieces_score_whole_words(lm_model):
    pieces = ["<pad>", "<s>", "</s>", "<unk>", "\u2581the", "\u2581c", "at", "\u2581sat"]
    lm = WordLM(lm_model, pieces, subword=True)
    state, total = lm.initial_state(), 0.0
    for tok in (4, 5, 6, 7):  # ▁the ▁c at ▁sat = "the cat sat"
        state, s = lm.extend(state, tok)
        total += s
    total += lm.finish(state)
    assert total == pytest.approx(lm_model.score("the cat sat") * LN10, abs=1e-4)


def test_select_rows_handles_dataclass_and_dict():
    from dataclasses import dataclass

    @dataclass
    class Enc:
        memory: torch.Tensor
        mask: torch.Tensor
        name: str

    enc = Enc(torch.arange(6).view(3, 2), torch.tensor([True, False, True]), "x")
    out = select_rows(enc, torch.tensor([2, 2, 0]), 3)
    assert out.memory.tolist() == [[4, 5], [4, 5], [0, 1]]
    assert out.mask.tolist() == [True, True, True] and out.name == "x"


# --- CTC ---------------------------------------------------------------------------------------


def test_ctc_collapse_and_greedy():
    assert collapse([4, 5, 5, 4, 5, 6, 6, 4, 6], blank=4) == [5, 5, 6, 6]
    lp = torch.log(torch.tensor([[0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0.8, 0.1, 0.1], [0.1, 0.1, 0.8]]))
    assert ctc_greedy(lp, blank=0) == [1, 2]


def test_blank_bias_sign_and_temperature():
    logits = torch.tensor([[2.0, 1.0, 0.0]])
    adj = adjust_logprobs(logits, blank=0, bias=0.4, temperature=0.9)
    ref = torch.log_softmax(logits / 0.9, dim=-1)
    assert adj[0, 0].item() == pytest.approx(ref[0, 0].item() - 0.4)
    assert adj[0, 1:].tolist() == pytest.approx(ref[0, 1:].tolist())
    # a blank that wins narrowly loses once penalised: more glosses are emitted
    close = torch.log(torch.tensor([[0.5, 0.45, 0.05]]))
    assert ctc_greedy(adjust_logprobs(close, 0, 0.0, 1.0), 0) == []
    assert ctc_greedy(adjust_logprobs(close, 0, 0.4, 1.0), 0) == [1]


def test_prefix_beam_sums_alignments_where_best_path_does_not():
    # best path is blank-blank (empty output, p=0.36), but "1" has total probability 0.64
    lp = torch.log(torch.tensor([[0.6, 0.4], [0.6, 0.4]]))
    assert ctc_greedy(lp, blank=0) == []
    assert ctc_prefix_beam(lp, blank=0, beam_width=4) == [1]


def test_prefix_beam_repeats_need_blank():
    # frames: 1, blank, 1 -> "1 1"; frames 1, 1 -> "1"
    sharp = torch.log(torch.tensor([[0.01, 0.98, 0.01], [0.98, 0.01, 0.01], [0.01, 0.98, 0.01]]))
    assert ctc_prefix_beam(sharp, blank=0, beam_width=4) == [1, 1]
    merged = torch.log(torch.tensor([[0.01, 0.98, 0.01], [0.01, 0.98, 0.01]]))
    assert ctc_prefix_beam(merged, blank=0, beam_width=4) == [1]


def test_ctc_batch_respects_lengths():
    torch.manual_seed(0)
    scores = torch.randn(3, 20, 9)
    cfg = CTCConfig(blank=4, beam_width=8)
    out = ctc_decode_batch(scores, [20, 5, 0], cfg)
    assert out[2] == []
    assert out[1] == ctc_decode_batch(scores[1:2, :5], [5], cfg)[0]
    greedy = ctc_decode_batch(scores, [20, 5, 0], CTCConfig(blank=4, method="greedy"))
    assert all(4 not in seq for seq in greedy)


# --- hatl decode end to end on a tiny gloss2text run ----------------------------------------------

DECODE_TEXTS = ["morgen regnet es im süden", "im norden scheint die sonne", "es bleibt kalt", "die sonne scheint"]
DECODE_GLOSSES = ["MORGEN REGEN SUED", "NORD SONNE", "KALT BLEIBEN", "SONNE"]


def _tiny_run(tmp_path):
    import numpy as np

    from hatl.keypoint_store import KeypointRecord, write_keypoints
    from hatl.landmarks import build_layout
    from hatl.models.slt import SLTModel
    from hatl.models.trained import BEST_FORMAT
    from hatl.vocab import TextNormalisation, VocabConfig, build_gloss_vocab, build_text_vocab

    layout = build_layout(["pose"], "reduced")
    data_dir, vocab_dir, run_dir = tmp_path / "normalised", tmp_path / "vocab", tmp_path / "runs/demo/transformer/gloss2text/full/main/seed1234"
    for split in ("dev", "test"):
        records = []
        for i, (text, gloss) in enumerate(zip(DECODE_TEXTS, DECODE_GLOSSES)):
            n = 6 + i
            records.append(KeypointRecord(
                sample_id=f"{split}-{i}", split=split,
                landmarks=np.random.default_rng(i).random((n, layout.num_joints, 3), dtype=np.float32),
                mask=np.ones((n, len(layout.groups)), dtype=bool), fps=25.0,
                extra={"gloss": gloss, "text": text, "signer": "s1", "fold": -1},
            ))
        write_keypoints(data_dir / f"{split}.parquet", records, layout, {"stage": "normalised"})
    text_vocab = build_text_vocab(DECODE_TEXTS, TextNormalisation(), VocabConfig())
    gloss_vocab = build_gloss_vocab(DECODE_GLOSSES)
    text_vocab.save(vocab_dir / "text.json")
    gloss_vocab.save(vocab_dir / "gloss.json")
    cfg = {"transformer": {"hidden": 16, "heads": 2, "feedforward": 32, "encoder_layers": 1, "decoder_layers": 1}}
    torch.manual_seed(0)
    model = SLTModel("gloss2text", "transformer", None, len(gloss_vocab), len(text_vocab), cfg=cfg)
    run_dir.mkdir(parents=True)
    torch.save({"format": BEST_FORMAT, "model_state": model.state_dict(),
                "model_args": {"task": "gloss2text", "translator": "transformer", "gloss_vocab_size": len(gloss_vocab),
                               "text_vocab_size": len(text_vocab), "model_config": cfg, "backbone": None},
                "run": {"dataset": "phoenix14t", "model": "transformer", "task": "gloss2text", "strategy": "full", "fold": "main"}},
               run_dir / "best.pt")
    words = sorted({w for t in DECODE_TEXTS for w in t.split()})
    arpa = tmp_path / "lm.arpa"
    arpa.write_text("\\data\\\nngram 1=%d\nngram 2=1\n\n\\1-grams:\n-1.0\t<unk>\t0\n-99\t<s>\t-0.1\n-0.8\t</s>\t0\n%s\n"
                    "\n\\2-grams:\n-0.3\t<s> es\n\n\\end\\\n"
                    % (len(words) + 3, "\n".join(f"-1.2\t{w}\t0" for w in words)), encoding="utf-8")
    return data_dir, vocab_dir, run_dir, arpa


def test_decode_cli_on_tiny_gloss2text_run(tmp_path, kenlm_module):
    import json

    from hatl.cli import main
    from hatl.config import REPO_ROOT

    import yaml

    data_dir, vocab_dir, run_dir, arpa = _tiny_run(tmp_path)
    config = yaml.safe_load((REPO_ROOT / "config/config.yaml").read_text(encoding="utf-8"))
    config["decoding"]["max_length"] = 6  # a random model rarely ends early: keep the test short
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    assert main(["decode", "--config", str(config_path), "--run-dir", str(run_dir), "--threads", "1",
                 "--data-dir", str(data_dir), "--vocab-dir", str(vocab_dir), "--lm", str(arpa),
                 "--out-dir", str(run_dir)]) == 0
    for split in ("dev", "test"):
        rows = [json.loads(line) for line in (run_dir / f"decoded.{split}.jsonl").read_text(encoding="utf-8").splitlines()]
        assert [r["id"] for r in rows] == [f"{split}-{i}" for i in range(4)]
        assert [r["ref"] for r in rows] == DECODE_TEXTS
        for r in rows:
            assert isinstance(r["hyp"], str) and isinstance(r["hyp_nolm"], str)
            assert r["gloss_hyp"] is None  # gloss2text has no CTC head
    summary = json.loads((run_dir / "decoded.summary.json").read_text())
    assert summary["splits"]["test"]["decoded"] == 4 and summary["settings"]["beam"]["beam_width"] == 8
    assert all(len(r["hyp"].split()) <= 6 for r in rows)
    assert "provenance" in summary
    # a missing LM file is an input error and leaves no output behind
    out = tmp_path / "out"
    assert main(["decode", "--config", str(config_path), "--run-dir", str(run_dir),
                 "--data-dir", str(data_dir), "--vocab-dir", str(vocab_dir), "--lm", str(tmp_path / "nope.bin"),
                 "--out-dir", str(out)]) == 2
    assert not out.exists()


def test_min_length_bars_an_immediate_eos() -> None:
    """A model that prefers EOS at once still emits one token when min_length is 1 (LM fusion's empty-output trap)."""
    import math

    import torch

    from hatl.models.beam import BeamConfig, beam_search, greedy_search

    vocab = 6

    def eos_first(rows: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        logits = torch.full((len(rows), vocab), -5.0)
        logits[:, 2] = 0.0  # EOS
        logits[:, 5] = -1.0
        return torch.log_softmax(logits, dim=1)

    assert greedy_search(eos_first, 1, max_length=5, min_length=0) == [[]]
    assert greedy_search(eos_first, 1, max_length=5, min_length=1) == [[5]]
    [best] = beam_search(eos_first, 1, BeamConfig(beam_width=3, max_length=5, min_length=1, lm_weight=0.0))
    assert best.tokens == [5]
    assert math.isfinite(best.score)


def test_lm_word_bonus_offsets_the_lms_cost_per_word(lm_model):
    # the model slightly prefers "the cat dog"; the LM finds "dog" after "cat" very unlikely and so prefers
    # stopping at "the cat": fusion shortens the output unless each word earns a bonus
    table = {(): {4: 1.0}, (4,): {5: 1.0}, (4, 5): {6: 0.55, EOS: 0.45}, (4, 5, 6): {EOS: 1.0}}
    lm = WordLM(lm_model, ITOS)
    fused = beam_search(table_model(table), 1, BeamConfig(beam_width=4, max_length=5, lm_weight=0.7), lm=lm)[0]
    assert fused.tokens == [4, 5]
    cfg = BeamConfig(beam_width=4, max_length=5, lm_weight=0.7, lm_word_bonus=5.0)
    bonus = beam_search(table_model(table), 1, cfg, lm=lm)[0]
    assert bonus.tokens == [4, 5, 6]
    expected = bonus.model_logprob + 0.7 * bonus.lm_logprob + 5.0 * 3  # three words; EOS earns nothing
    assert bonus.score == pytest.approx(expected / ((5 + 4) / 6) ** 1.0, abs=1e-6)
    # without fusion the bonus does nothing (it only offsets the LM)
    plain = BeamConfig(beam_width=4, max_length=5, lm_weight=0.0, lm_word_bonus=5.0)
    assert beam_search(table_model(table), 1, plain, lm=lm)[0].score == pytest.approx(
        beam_search(table_model(table), 1, BeamConfig(beam_width=4, max_length=5, lm_weight=0.0), lm=lm)[0].score)
    assert BeamConfig.from_config({"lm_word_bonus": 1.5}).lm_word_bonus == 1.5


@pytest.mark.parametrize(("decoding", "problem"), [
    ({"beam_width": 0}, "beam_width must be >= 1, got 0"),
    ({"max_length": 0, "min_length": 0}, "max_length must be >= 1, got 0"),
    ({"max_length": 6, "min_length": 7}, "min_length must be in [0, max_length], got 7"),
    ({"min_length": -1}, "min_length must be in [0, max_length], got -1"),
    ({"lm_candidates": 0}, "lm_candidates must be >= 1, got 0"),
])
def test_beam_config_refuses_settings_the_search_cannot_run(decoding, problem):
    import re

    with pytest.raises(ValueError, match=re.escape(problem)):
        BeamConfig.from_config(decoding)


def test_beam_config_reads_every_decoding_key():
    cfg = BeamConfig.from_config({"beam_width": 3, "max_length": 9, "min_length": 2, "length_penalty": 0.5,
                                  "lm_weight": 0.2, "lm_candidates": 5, "lm_word_bonus": 1.5})
    assert cfg == BeamConfig(3, 9, 2, 0.5, 0.2, 5, 1.5)
    assert BeamConfig.from_config({}) == BeamConfig()  # Table 4: beam 8, LM weight 0.7
    assert (BeamConfig().beam_width, BeamConfig().lm_weight) == (8, 0.7)


@pytest.mark.parametrize(("ctc", "problem"), [
    ({"method": "viterbi"}, "CTC method must be 'beam' or 'greedy', got 'viterbi'"),
    ({"temperature": 0}, "CTC temperature must be > 0, got 0"),
    ({"beam_width": 0}, "CTC beam_width must be >= 1, got 0"),
    ({"prune_top_k": 0}, "CTC prune_top_k must be >= 1, got 0"),
])
def test_ctc_config_refuses_settings_the_search_cannot_run(ctc, problem):
    import re

    with pytest.raises(ValueError, match=re.escape(problem)):
        CTCConfig.from_config({"ctc": ctc})
