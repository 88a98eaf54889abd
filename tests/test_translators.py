"""Transformer and ADAT translators: masks, causality, the log-sparse index set and the ADAT gate."""

from __future__ import annotations

import math

import pytest
import torch

from hatl.models.adat import (
    ADATEncoder,
    ADATEncoderLayer,
    LogSparseAttention,
    log_sparse_index,
    log_sparse_offsets,
    masked_time_mean,
)
from hatl.models.positional import SinusoidalPositions, sinusoidal_table
from hatl.models.transformer import (
    TextDecoder,
    TransformerEncoder,
    TranslatorConfig,
    causal_mask,
    lengths_to_mask,
    token_embedding,
)

CFG = TranslatorConfig(hidden=16, heads=2, feedforward=32, dropout=0.1, encoder_layers=2, decoder_layers=2)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_config_defaults_are_table4_and_unknown_keys_refused():
    cfg = TranslatorConfig.from_dict({})
    assert (cfg.hidden, cfg.heads, cfg.encoder_layers, cfg.decoder_layers, cfg.dropout) == (512, 8, 3, 1, 0.1)
    with pytest.raises(ValueError, match="unknown"):
        TranslatorConfig.from_dict({"hiden": 64})
    with pytest.raises(ValueError, match="divisible"):
        TranslatorConfig.from_dict({"hidden": 64, "heads": 3})


def test_sinusoidal_table_and_growth():
    table = sinusoidal_table(10, 8)
    assert torch.allclose(table[0, 0::2], torch.zeros(4)) and torch.allclose(table[0, 1::2], torch.ones(4))
    assert table[3, 2].item() == pytest.approx(math.sin(3 / 10000 ** (2 / 8)), abs=1e-6)
    pos = SinusoidalPositions(8, initial_length=4)
    out = pos(torch.zeros(1, 9, 8))  # longer than the initial table: it grows
    assert torch.allclose(out[0], sinusoidal_table(9, 8))


def test_causal_mask_and_lengths_to_mask():
    assert causal_mask(3).tolist() == [[False, True, True], [False, False, True], [False, False, False]]
    assert lengths_to_mask(torch.tensor([2, 0, 3])).tolist() == [
        [True, True, False], [False, False, False], [True, True, True]]


@pytest.mark.parametrize("length", [1, 2, 3, 5, 8, 9, 17, 64, 100])
def test_log_sparse_index_set_is_log_spaced_and_causal(length: int):
    index, valid = log_sparse_index(length)
    offsets = log_sparse_offsets(length).tolist()
    assert offsets == [0] + [2**j for j in range(length.bit_length()) if 2**j <= length - 1]
    assert index.shape == (length, len(offsets)) == valid.shape
    # brute force: position p sees exactly {p} and p - 2^j for every 2^j <= p
    for p in range(length):
        expected = {p} | {p - 2**j for j in range(12) if 2**j <= p}
        assert set(index[p][valid[p]].tolist()) == expected
        assert (index[p] <= p).all()  # causal
    # K = 1 + ceil(log2(T)): the largest power of two below T is still a reachable distance
    if length > 1:
        assert len(offsets) == 1 + (length - 1).bit_length()


def reference_log_sparse(attn: LogSparseAttention, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-position loop, as in the released code but with the weights on the VALUES."""
    q, k = attn.query(x), attn.key(x)
    batch, length, _ = x.shape
    out = torch.zeros_like(x)
    for b in range(batch):
        for p in range(length):
            keys = [p] + [p - 2**j for j in range(12) if 2**j <= p and mask[b, p - 2**j]]
            scores = torch.stack([q[b, p] @ k[b, j] for j in keys]) / math.sqrt(x.shape[-1] * 2 / 4)
            weights = torch.softmax(scores, 0)
            out[b, p] = sum(w * x[b, j] for w, j in zip(weights, keys))
    return attn.out(out)


def test_log_sparse_attention_matches_reference_loop():
    attn = LogSparseAttention(16)
    x = torch.randn(2, 11, 8)
    mask = lengths_to_mask(torch.tensor([11, 7]), 11)
    got, weights = attn(x, mask)
    ref = reference_log_sparse(attn, x, mask)
    assert torch.allclose(got[0], ref[0], atol=1e-5)
    assert torch.allclose(got[1, :7], ref[1, :7], atol=1e-5)
    assert weights.shape == (2, 11, log_sparse_offsets(11).numel())
    assert torch.allclose(weights.sum(-1), torch.ones(2, 11))


def test_log_sparse_attention_is_causal():
    attn = LogSparseAttention(16)
    x = torch.randn(1, 20, 8)
    mask = torch.ones(1, 20, dtype=torch.bool)
    before, _ = attn(x, mask)
    x2 = x.clone()
    x2[:, 12:] = torch.randn(1, 8, 8)
    after, _ = attn(x2, mask)
    assert torch.allclose(before[:, :12], after[:, :12], atol=1e-6)
    assert not torch.allclose(before[:, 12:], after[:, 12:])


def test_adat_gate_in_open_unit_interval_and_shapes():
    layer = ADATEncoderLayer(16, conv_kernel=3, dropout=0.0)
    x = torch.randn(3, 13, 16) * 5
    mask = lengths_to_mask(torch.tensor([13, 6, 1]), 13)
    out = layer(x, mask)
    assert out.shape == (3, 13, 16)
    gate = layer.last_gate
    assert gate is not None and gate.shape == (3, 13, 1)
    assert (gate > 0).all() and (gate < 1).all()
    assert torch.isfinite(out).all()
    assert (out[1, 6:] == 0).all()  # padded steps carry nothing forward


def test_masked_time_mean_ignores_padding():
    x = torch.tensor([[[1.0], [3.0], [100.0]]])
    assert masked_time_mean(x, torch.tensor([[True, True, False]])).item() == 2.0


@pytest.mark.parametrize("encoder_cls", [TransformerEncoder, ADATEncoder])
def test_encoder_ignores_padded_frames(encoder_cls):
    encoder = encoder_cls(CFG).eval()
    x = torch.randn(2, 10, 16)
    mask = lengths_to_mask(torch.tensor([10, 6]), 10)
    before = encoder(x, mask)
    x2 = x.clone()
    x2[1, 6:] = torch.randn(4, 16) * 100
    after = encoder(x2, mask)
    assert torch.allclose(before, after, atol=1e-5)
    assert (after[1, 6:] == 0).all()


def test_adat_encoder_layers_and_gradients():
    encoder = ADATEncoder(CFG)
    assert len(encoder.layers) == 2
    x = torch.randn(2, 9, 16, requires_grad=True)
    encoder(x, torch.ones(2, 9, dtype=torch.bool)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in encoder.parameters())


def test_adat_rejects_even_kernel():
    with pytest.raises(ValueError, match="odd"):
        ADATEncoderLayer(16, conv_kernel=4)


def test_decoder_does_not_peek_at_future_tokens():
    decoder = TextDecoder(CFG, vocab_size=20).eval()
    memory = torch.randn(2, 7, 16)
    memory_mask = lengths_to_mask(torch.tensor([7, 4]), 7)
    tokens = torch.randint(4, 20, (2, 6))
    before = decoder(tokens, memory, memory_mask)
    changed = tokens.clone()
    changed[:, 4:] = (changed[:, 4:] + 3) % 20
    after = decoder(changed, memory, memory_mask)
    assert before.shape == (2, 6, 20)
    assert torch.allclose(before[:, :4], after[:, :4], atol=1e-5)
    assert not torch.allclose(before[:, 4:], after[:, 4:])


def test_decoder_ignores_padded_memory_and_padded_tokens():
    decoder = TextDecoder(CFG, vocab_size=20).eval()
    memory = torch.randn(2, 7, 16)
    memory_mask = lengths_to_mask(torch.tensor([7, 4]), 7)
    tokens = torch.tensor([[1, 5, 6, 7], [1, 8, 0, 0]])
    before = decoder(tokens, memory, memory_mask)
    memory2 = memory.clone()
    memory2[1, 4:] = 50.0
    tokens2 = tokens.clone()
    tokens2[1, 2:] = 9  # what sits in the padding must not matter to the real tokens
    after = decoder(tokens2, memory2, memory_mask)
    assert torch.allclose(before[0], after[0], atol=1e-5)
    assert torch.allclose(before[1, :2], after[1, :2], atol=1e-5)


def test_scaled_token_embeddings_sit_on_the_scale_of_the_positions():
    # Real PHOENIX14T Gloss2Text: with nn.Embedding's N(0, 1) init the sqrt(512)-scaled inputs had std 22.6
    # and the positions (|x| <= 1) were lost; the model dropped half of every sentence.
    embed = token_embedding(3000, 512, pad_id=0)
    scaled = embed.weight.detach()[1:] * math.sqrt(512)
    assert 0.95 < float(scaled.std()) < 1.05
    assert float(sinusoidal_table(64, 512).abs().max()) <= 1.0
    assert torch.count_nonzero(embed.weight[0]) == 0 and embed.padding_idx == 0
    decoder = TextDecoder(CFG, vocab_size=20, pad_id=0)
    assert 0.9 < float(decoder.embed.weight.detach()[1:].std() * math.sqrt(CFG.hidden)) < 1.1


def test_tied_decoder_reads_and_writes_words_with_one_matrix():
    """model.<translator>.tie_embeddings: one shared parameter, fewer weights, and the tie survives a
    state-dict round trip and checkpoint averaging (both keys of the tied matrix hold the same mean)."""
    from hatl.models.slt import SLTModel
    from hatl.train.averaging import average_state_dicts

    sizes = {"hidden": 16, "heads": 2, "feedforward": 32}
    untied = TextDecoder(TranslatorConfig(**sizes), vocab_size=30)
    tied = TextDecoder(TranslatorConfig(**sizes, tie_embeddings=True), vocab_size=30)
    assert tied.output.weight is tied.embed.weight and untied.output.weight is not untied.embed.weight
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731 parameters() dedups shared ones
    assert count(untied) - count(tied) == 30 * 16

    def model():
        return SLTModel("gloss2text", "transformer", None, 20, 30, {"transformer": {**sizes, "tie_embeddings": True}})

    first, second = model(), model()
    loss = first.decoder(torch.tensor([[1, 5, 7]]), torch.randn(1, 4, 16), torch.ones(1, 4, dtype=torch.bool)).sum()
    loss.backward()  # gradients from reading and from writing words land on the one matrix
    assert first.decoder.embed.weight.grad is first.decoder.output.weight.grad
    mean = average_state_dicts([first.state_dict(), second.state_dict()])
    restored = model()
    restored.load_state_dict(mean)
    assert restored.decoder.output.weight is restored.decoder.embed.weight
    expected = (first.decoder.embed.weight + second.decoder.embed.weight) / 2
    assert torch.allclose(restored.decoder.output.weight, expected)


def test_gloss_dropout_replaces_real_glosses_by_unk_in_training_only():
    """model.<translator>.gloss_dropout (gloss2text source word dropout): in training about the configured share
    of real glosses becomes UNK, padding never does, the same seed drops the same glosses, and evaluation reads
    the input untouched."""
    from hatl.experiment import PAD, UNK
    from hatl.models.slt import SLTModel, drop_glosses

    gloss = torch.randint(4, 50, (64, 40))
    gloss[:, 30:] = PAD
    torch.manual_seed(0)
    dropped = drop_glosses(gloss, 0.25)
    share = float((dropped[:, :30] == UNK).float().mean())
    assert 0.22 < share < 0.28
    assert bool((dropped[:, 30:] == PAD).all())
    assert bool(((dropped == gloss) | (dropped == UNK)).all())
    torch.manual_seed(0)
    assert torch.equal(drop_glosses(gloss, 0.25), dropped)

    sizes = {"hidden": 16, "heads": 2, "feedforward": 32, "dropout": 0.0, "gloss_dropout": 0.5}
    model = SLTModel("gloss2text", "transformer", None, 50, 30, {"transformer": sizes})
    batch = {"gloss": gloss[:2, :30], "gloss_lengths": torch.tensor([30, 30])}
    model.eval()
    first, second = model.encode(batch).memory, model.encode(batch).memory
    assert torch.equal(first, second)  # no dropout outside training
    model.train()
    assert not torch.allclose(model.encode(batch).memory, first)
    with pytest.raises(ValueError, match="gloss_dropout"):
        TranslatorConfig.from_dict({**sizes, "gloss_dropout": 1.0})


def test_gloss_word_embeddings_read_glosses_through_the_words_they_spell(tmp_path):
    """model.<translator>.gloss_word_embeddings: a gloss mapped onto a text word enters the encoder as that word's
    decoder embedding (its own embedding starts at zero and learns the difference), an unmapped gloss keeps its own;
    training moves both; best.pt carries the map so `hatl decode` rebuilds the same model."""
    from hatl.experiment import PAD
    from hatl.models.slt import SLTModel
    from hatl.models.trained import load_trained, model_args, save_trained

    sizes = {"hidden": 16, "heads": 2, "feedforward": 32, "dropout": 0.0, "tie_embeddings": True,
             "gloss_word_embeddings": True}
    words = [PAD] * 5 + [7, PAD, 9, 11]  # glosses 5, 7, 8 spell words 7, 9, 11; gloss 6 spells none
    model = SLTModel("gloss2text", "transformer", None, 9, 12, {"transformer": sizes}, gloss_words=words)
    embed, word = model.gloss_embed.weight, model.decoder.embed.weight
    assert torch.count_nonzero(embed[[5, 7, 8]]) == 0 and torch.count_nonzero(embed[6]) > 0
    read = model.gloss_input(torch.tensor([[5, 6, 7, PAD]]))
    assert torch.equal(read[0, 0], word[7]) and torch.equal(read[0, 1], embed[6]) and torch.equal(read[0, 2], word[9])
    assert torch.count_nonzero(read[0, 3]) == 0  # padding reads zeros

    batch = {"gloss": torch.tensor([[5, 6, 7]]), "gloss_lengths": torch.tensor([3]),
             "text_in": torch.tensor([[1, 7, 9]]), "text_out": torch.tensor([[7, 9, 2]])}
    model.losses(batch, model(batch))["total"].backward()
    assert torch.count_nonzero(model.gloss_embed.weight.grad[5]) > 0  # the gloss learns what it adds to the word
    assert torch.count_nonzero(model.decoder.embed.weight.grad[7]) > 0

    assert "gloss_words" not in model.state_dict()  # rebuilt from model_args, so averaging never touches it
    save_trained(tmp_path / "best.pt", model.state_dict(), model_args(model, "gloss2text", "transformer", 9, 12,
                                                                    {"transformer": sizes}))
    restored, _ = load_trained(tmp_path / "best.pt")
    assert restored.gloss_words.tolist() == words
    assert torch.equal(restored.gloss_input(torch.tensor([[5, 6]])), model.gloss_input(torch.tensor([[5, 6]])))

    plain = SLTModel("gloss2text", "transformer", None, 9, 12, {"transformer": {**sizes, "gloss_word_embeddings": False}})
    assert plain.gloss_words is None
    with pytest.raises(ValueError, match="needs the gloss -> word id map"):
        SLTModel("gloss2text", "transformer", None, 9, 12, {"transformer": sizes})
    with pytest.raises(ValueError, match="8 entries for a gloss vocabulary of 9"):
        SLTModel("gloss2text", "transformer", None, 9, 12, {"transformer": sizes}, gloss_words=words[:8])
    with pytest.raises(ValueError, match="outside the text vocabulary"):
        SLTModel("gloss2text", "transformer", None, 9, 12, {"transformer": sizes}, gloss_words=[*words[:8], 12])
    with pytest.raises(ValueError, match="gloss_words is for gloss2text"):
        SLTModel("gloss2text", "transformer", None, 9, 12, {"transformer": {**sizes, "gloss_word_embeddings": False}},
                 gloss_words=words)
