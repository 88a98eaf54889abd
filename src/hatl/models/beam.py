"""Batched beam search for the text decoder, with optional word-level KenLM shallow fusion.

The model is seen only through ``next_logprobs(rows, prefix) -> (N, V)`` log-probabilities: ``rows`` (N,)
says which sample of the batch each hypothesis belongs to and ``prefix`` (N, S) holds BOS + the tokens so
far. Every alive hypothesis of every sample goes through the model in one call per step.

Scoring. A hypothesis' fused score is ``sum(model log-prob) + lm_weight * sum(LM ln-prob) + lm_word_bonus * |Y|``
(|Y| = output words, EOS not counted; the bonus applies only with fusion, where it offsets the LM's cost per word,
which otherwise favours short outputs: on real PHOENIX14T Gloss2Text, LM weight 0.7 cut the brevity penalty from
0.96 to 0.79 at length penalty 1). Finished
hypotheses are ranked by the fused score divided by the GNMT length penalty
``lp(Y) = ((5 + |Y|) / 6) ** alpha`` (Wu et al. 2016), where |Y| counts the output tokens including EOS;
``alpha = 0`` ranks by the raw sum. We chose GNMT's form because it is what signjoey (the reference SLT
code) uses, so numbers stay comparable.

Search. At each step the 2K best extensions of a sample's K beams are ranked; an EOS extension among the
first K ranks finishes a hypothesis, the best K non-EOS extensions stay alive. A sample is done once K
hypotheses have finished (OpenNMT / signjoey behaviour); at ``max_length`` every alive beam is forced to end.
With K = 1 this is exactly greedy decoding (tested).

LM fusion. Scoring every vocabulary entry with KenLM would cost V Python calls per hypothesis and step, so
only each hypothesis' ``lm_candidates`` best tokens by model score (plus EOS) are rescored with the LM
(the usual pre-selection for shallow fusion); ``lm_weight = 0`` or no LM switches fusion off.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from hatl.experiment import BOS, EOS, PAD

NextLogprobs = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class FusionLM(Protocol):
    """What beam search needs from a language model (see ``hatl.evaluate.lm_fusion.WordLM``)."""

    def initial_state(self) -> Any: ...

    def extend(self, state: Any, token_id: int) -> tuple[Any, float]: ...

    def finish(self, state: Any) -> float: ...


@dataclass(frozen=True)
class BeamConfig:
    """Beam-search settings; mirrors the ``decoding`` config section."""

    beam_width: int = 8
    max_length: int = 60
    min_length: int = 1  # EOS is barred before this many tokens: LM fusion must never prefer an empty output
    length_penalty: float = 1.0
    lm_weight: float = 0.7
    lm_candidates: int = 16
    lm_word_bonus: float = 0.0  # added per output word when the LM is fused (a word insertion bonus)

    def __post_init__(self) -> None:
        if self.beam_width < 1:
            raise ValueError(f"beam_width must be >= 1, got {self.beam_width}")
        if self.max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {self.max_length}")
        if not 0 <= self.min_length <= self.max_length:
            raise ValueError(f"min_length must be in [0, max_length], got {self.min_length}")
        if self.lm_candidates < 1:
            raise ValueError(f"lm_candidates must be >= 1, got {self.lm_candidates}")

    @classmethod
    def from_config(cls, decoding: dict[str, Any]) -> BeamConfig:
        return cls(
            beam_width=decoding.get("beam_width", cls.beam_width),
            max_length=decoding.get("max_length", cls.max_length),
            min_length=decoding.get("min_length", cls.min_length),
            length_penalty=decoding.get("length_penalty", cls.length_penalty),
            lm_weight=decoding.get("lm_weight", cls.lm_weight),
            lm_candidates=decoding.get("lm_candidates", cls.lm_candidates),
            lm_word_bonus=decoding.get("lm_word_bonus", cls.lm_word_bonus),
        )


@dataclass(frozen=True)
class SpecialIds:
    pad: int = PAD
    bos: int = BOS
    eos: int = EOS


@dataclass
class Hypothesis:
    """A finished hypothesis: output tokens (no BOS/EOS) and its score components."""

    tokens: list[int]
    score: float  # fused score / length penalty: what the beam ranks by
    model_logprob: float
    lm_logprob: float = 0.0  # natural-log LM score (before lm_weight)


def length_penalty(length: int, alpha: float) -> float:
    """GNMT length penalty ((5 + length) / 6) ** alpha."""
    return ((5.0 + length) / 6.0) ** alpha if alpha else 1.0


def _lm_candidates(
    logp: torch.Tensor, fused_prev: torch.Tensor, states: list[Any], lm: FusionLM, n_cand: int, eos: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[list[Any]]]:
    """Per row: the ``n_cand`` best tokens by model score plus EOS, with their LM ln-scores and next LM states."""
    rows, vocab = logp.shape
    c = min(n_cand, vocab)
    top = torch.topk(logp, c, dim=1).indices
    # EOS is always rescored: the LM's end-of-sentence term must get a chance to promote or demote it.
    has_eos = (top == eos).any(dim=1, keepdim=True)
    tokens = torch.cat([top, torch.full((rows, 1), eos)], dim=1)
    model_lp = torch.gather(logp, 1, tokens)
    model_lp[:, c:] = torch.where(has_eos, torch.full_like(model_lp[:, c:], -math.inf), model_lp[:, c:])  # no duplicate EOS
    lm_lp = torch.full_like(model_lp, -math.inf)
    cand_states: list[list[Any]] = []
    tok_list, ok = tokens.tolist(), (model_lp > -math.inf) & (fused_prev[:, None] > -math.inf)
    ok_list = ok.tolist()
    for i in range(rows):
        row_states: list[Any] = [None] * len(tok_list[i])
        for j, tok in enumerate(tok_list[i]):
            if not ok_list[i][j]:
                continue  # a dead beam, a token the model rules out (PAD, BOS) or the duplicate EOS
            if tok == eos:
                lm_lp[i, j] = lm.finish(states[i])
            else:
                row_states[j], lm_lp[i, j] = lm.extend(states[i], tok)
        cand_states.append(row_states)
    return tokens, model_lp, lm_lp, cand_states


def beam_search(
    next_logprobs: NextLogprobs,
    batch_size: int,
    cfg: BeamConfig,
    special: SpecialIds = SpecialIds(),
    lm: FusionLM | None = None,
) -> list[Hypothesis]:
    """Best hypothesis per sample (list of length ``batch_size``)."""
    return [hyps[0] for hyps in beam_search_nbest(next_logprobs, batch_size, cfg, special, lm)]


@torch.no_grad()
def beam_search_nbest(
    next_logprobs: NextLogprobs,
    batch_size: int,
    cfg: BeamConfig,
    special: SpecialIds = SpecialIds(),
    lm: FusionLM | None = None,
) -> list[list[Hypothesis]]:
    """Every finished hypothesis per sample (at least ``beam_width`` unless the search ran dry), best score first.

    State is kept as (A, K) tensors for the A samples still searching; a sample leaves the batch (and the
    model calls) as soon as it has K finished hypotheses. Beam 0 starts alone (the others at -inf), so the
    first step expands one hypothesis per sample.
    """
    if cfg.lm_weight == 0:
        lm = None
    k = cfg.beam_width
    weight = cfg.lm_weight if lm is not None else 0.0
    active = torch.arange(batch_size)  # sample id of each active row of the state
    prefix = torch.full((batch_size * k, 1), special.bos, dtype=torch.long)
    fused = torch.full((batch_size, k), -math.inf, dtype=torch.float64)
    fused[:, 0] = 0.0
    model_sum = torch.zeros(batch_size, k, dtype=torch.float64)
    lm_sum = torch.zeros(batch_size, k, dtype=torch.float64)
    states: list[Any] = [lm.initial_state() for _ in range(batch_size * k)] if lm is not None else []
    finished: list[list[Hypothesis]] = [[] for _ in range(batch_size)]
    for step in range(cfg.max_length + 1):
        a = len(active)
        logp = next_logprobs(active.repeat_interleave(k), prefix).to(torch.float64)
        logp[:, special.pad] = -math.inf
        logp[:, special.bos] = -math.inf
        if step < cfg.min_length:
            logp[:, special.eos] = -math.inf
        if step == cfg.max_length:  # out of length: every alive beam must end here
            forced = torch.full_like(logp, -math.inf)
            forced[:, special.eos] = logp[:, special.eos]
            logp = forced
        flat_fused = fused.reshape(-1)
        if lm is None:
            vocab = logp.shape[1]
            cand = flat_fused[:, None] + logp  # (A*K, V)
            cand_model, cand_lm, cand_states = logp, None, None
            tokens_of = None
        else:
            tokens_of, cand_model, cand_lm, cand_states = _lm_candidates(
                logp, flat_fused, states, lm, cfg.lm_candidates, special.eos)
            vocab = tokens_of.shape[1]
            cand = flat_fused[:, None] + cand_model + weight * cand_lm
            if cfg.lm_word_bonus:
                cand = cand + cfg.lm_word_bonus * (tokens_of != special.eos)
        n_take = min(2 * k, k * vocab)
        values, order = torch.topk(cand.view(a, k * vocab), n_take, dim=1)  # (A, 2K), best first
        parent = order // vocab  # beam within the sample
        col = order % vocab
        flat_parent = parent + (torch.arange(a) * k)[:, None]  # row of the (A*K) state
        token = col if tokens_of is None else tokens_of[flat_parent, col]
        is_eos = token == special.eos
        valid = values > -math.inf
        rank = torch.arange(n_take)[None, :]
        finish = is_eos & valid & (rank < k)
        # EOS among the first K ranks ends a hypothesis; the first K non-EOS candidates stay alive.
        keep = ~is_eos & (torch.cumsum((~is_eos).long(), dim=1) <= k)
        lp = length_penalty(step + 1, cfg.length_penalty)
        for i, j in finish.nonzero().tolist():
            r, c = int(flat_parent[i, j]), int(col[i, j])
            finished[int(active[i])].append(Hypothesis(
                tokens=prefix[r, 1:].tolist(),
                score=float(values[i, j]) / lp,
                model_logprob=float(model_sum.view(-1)[r] + cand_model[r, c]),
                lm_logprob=float(lm_sum.view(-1)[r] + cand_lm[r, c]) if cand_lm is not None else 0.0,
            ))
        # K survivors per sample: kept candidates in rank order first. Normally there are K of them (at most
        # one EOS per beam among 2K); if not (dead beams, few LM candidates), the fillers are marked dead.
        sel = torch.argsort(torch.where(keep, rank, rank + n_take), dim=1)[:, :k]
        new_parent = torch.gather(flat_parent, 1, sel)  # (A, K)
        new_col = torch.gather(col, 1, sel)
        new_token = torch.gather(token, 1, sel)
        new_fused = torch.where(torch.gather(keep, 1, sel), torch.gather(values, 1, sel), -math.inf)
        rows_flat = new_parent.reshape(-1)
        step_model = cand_model[rows_flat, new_col.reshape(-1)].view(a, k)
        new_model = model_sum.view(-1)[rows_flat].view(a, k) + step_model
        if cand_lm is not None:
            new_lm = lm_sum.view(-1)[rows_flat].view(a, k) + cand_lm[rows_flat, new_col.reshape(-1)].view(a, k)
            new_states = [cand_states[r][c] for r, c in zip(rows_flat.tolist(), new_col.reshape(-1).tolist())]
        else:
            new_lm, new_states = lm_sum, []
        still = torch.tensor([len(finished[int(s)]) < k for s in active.tolist()], dtype=torch.bool)
        # a sample whose beams are all dead (-inf) cannot improve: stop it too
        still &= (new_fused > -math.inf).any(dim=1)
        if not bool(still.any()):
            break
        prefix = torch.cat([prefix[rows_flat], new_token.reshape(-1, 1)], dim=1)
        if not bool(still.all()):
            keep_rows = still.nonzero().flatten()
            row_mask = still.repeat_interleave(k)
            prefix = prefix[row_mask]
            new_fused, new_model, new_lm = new_fused[keep_rows], new_model[keep_rows], new_lm[keep_rows]
            if new_states:
                new_states = [st for st, m in zip(new_states, row_mask.tolist()) if m]
            active = active[keep_rows]
        fused, model_sum, lm_sum, states = new_fused, new_model, new_lm, new_states
    # a stable sort: of equal scores the one finished first stays first, as max() picked it before
    return [sorted(hyps, key=lambda h: -h.score) for hyps in finished]


@torch.no_grad()
def greedy_search(
    next_logprobs: NextLogprobs,
    batch_size: int,
    max_length: int,
    special: SpecialIds = SpecialIds(),
    min_length: int = 1,
    *,
    forbid_specials: bool = True,
    device: torch.device | str = "cpu",
) -> list[list[int]]:
    """Argmax decoding (no LM): the package's one greedy decoder, and the reference beam width 1 must reproduce.

    ``forbid_specials=False`` lets PAD and BOS compete like any token, PAD ending a hypothesis as EOS does:
    how training's dev evaluation has always decoded (so runs stay reproducible); ``device``: where the
    model runs.
    """
    rows = torch.arange(batch_size)
    prefix = torch.full((batch_size, 1), special.bos, dtype=torch.long, device=device)
    done = torch.zeros(batch_size, dtype=torch.bool)
    outputs: list[list[int]] = [[] for _ in range(batch_size)]
    stops = (special.eos,) if forbid_specials else (special.eos, special.pad)
    for step in range(max_length):  # a row still open after max_length tokens ends there
        logp = next_logprobs(rows, prefix).to(torch.float64)
        if forbid_specials:
            logp[:, special.pad] = -math.inf
            logp[:, special.bos] = -math.inf
        if step < min_length:
            logp[:, special.eos] = -math.inf
        nxt = logp.argmax(dim=1)
        for i, tok in enumerate(nxt.tolist()):
            if done[i]:
                continue
            if tok in stops:
                done[i] = True
            else:
                outputs[i].append(tok)
        if bool(done.all()):
            break
        prefix = torch.cat([prefix, nxt[:, None]], dim=1)
    return outputs


def select_rows(encoded: Any, rows: torch.Tensor, batch_size: int) -> Any:
    """Pick rows of an encoder output (a dataclass, dict or tensor) for the hypotheses in ``rows``.

    Any tensor whose first dimension is the batch is indexed; everything else is passed through. This
    lets beam search repeat ``SLTModel.encode``'s output per hypothesis without knowing its fields.
    """
    if isinstance(encoded, torch.Tensor):
        return encoded.index_select(0, rows.to(encoded.device)) if encoded.dim() and encoded.shape[0] == batch_size else encoded
    if dataclasses.is_dataclass(encoded) and not isinstance(encoded, type):
        changes = {f.name: select_rows(getattr(encoded, f.name), rows, batch_size) for f in dataclasses.fields(encoded)}
        return dataclasses.replace(encoded, **changes)
    if isinstance(encoded, dict):
        return {key: select_rows(value, rows, batch_size) for key, value in encoded.items()}
    if isinstance(encoded, tuple) and hasattr(encoded, "_fields"):  # NamedTuple
        return type(encoded)(*(select_rows(v, rows, batch_size) for v in encoded))
    return encoded


def model_step_fn(model: Any, encoded: Any, batch_size: int) -> NextLogprobs:
    """Adapter from ``SLTModel.next_token_logprobs(encoded, prefix)`` to beam search's ``next_logprobs``."""

    # SLTModel's Encoded has its own index_select; anything else goes through the generic select_rows.
    own = getattr(encoded, "index_select", None) if not isinstance(encoded, torch.Tensor) else None

    def step(rows: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        sub = own(rows) if own is not None else select_rows(encoded, rows, batch_size)
        return model.next_token_logprobs(sub, prefix)

    return step
