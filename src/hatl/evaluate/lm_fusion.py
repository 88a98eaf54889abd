"""Word-level KenLM scoring for shallow fusion in beam search.

KenLM returns log10 probabilities; beam search adds model log-probabilities in natural log, so every LM
score is multiplied by ln(10) before ``lm_weight`` is applied. A completed word is scored given its
history through KenLM's state API (``BeginSentenceWrite`` then ``BaseScore`` word by word), and choosing
EOS adds the end-of-sentence score ``</s>``.

With a whitespace vocabulary each token is a word and is scored when it is appended. With a SentencePiece
vocabulary a word is complete only when the next piece starts a new word (leading ``▁``) or at EOS, so the
pending pieces are carried in the state and scored then.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hatl.errors import InputError

LN10 = math.log(10.0)
SP_SPACE = "\u2581"  # SentencePiece's word-start marker


@dataclass(frozen=True)
class LMState:
    kenlm_state: Any
    pending: str = ""  # SentencePiece pieces of a word not yet complete


def load_kenlm(path: str | Path) -> Any:
    """Load an ARPA or KenLM binary file; a missing or unreadable file is an InputError."""
    import kenlm

    path = Path(path)
    if not path.exists():
        raise InputError(path, None, "KenLM model file does not exist")
    try:
        return kenlm.Model(str(path))
    except (OSError, RuntimeError) as err:
        raise InputError(path, None, f"KenLM could not load the model: {err}") from err


class WordLM:
    """Scores decoder tokens with a KenLM model at the word level (natural-log scores)."""

    def __init__(
        self,
        model: Any,
        itos: Sequence[str],
        special_ids: Sequence[int] = (0, 1, 2),
        unk_id: int | None = 3,
        subword: bool = False,
        cache_size: int = 500_000,
    ) -> None:
        import kenlm

        self._kenlm = kenlm
        self.model = model
        self.itos = list(itos)
        self.special_ids = set(special_ids)
        self.unk_id = unk_id
        self.subword = subword
        self.cache_size = cache_size
        # (state, word) -> (next state, ln score): beams share histories, so many calls repeat.
        self._cache: dict[tuple[Any, str], tuple[Any, float]] = {}

    def initial_state(self) -> LMState:
        state = self._kenlm.State()
        self.model.BeginSentenceWrite(state)
        return LMState(state)

    def _score_word(self, state: Any, word: str) -> tuple[Any, float]:
        key = (state, word)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        out = self._kenlm.State()
        score = self.model.BaseScore(state, word, out) * LN10
        if len(self._cache) >= self.cache_size:
            self._cache.clear()
        self._cache[key] = (out, score)
        return out, score

    def _word(self, token_id: int) -> str:
        if token_id == self.unk_id:
            return "<unk>"  # KenLM's own unknown-word entry
        if token_id in self.special_ids or not 0 <= token_id < len(self.itos):
            raise ValueError(f"token id {token_id} is not a word token")
        return self.itos[token_id]

    def extend(self, state: LMState, token_id: int) -> tuple[LMState, float]:
        piece = self._word(token_id)
        if not self.subword:
            new_state, score = self._score_word(state.kenlm_state, piece)
            return LMState(new_state), score
        if piece.startswith(SP_SPACE) and state.pending:
            new_state, score = self._score_word(state.kenlm_state, state.pending)
            return LMState(new_state, piece[len(SP_SPACE):]), score
        pending = state.pending + (piece[len(SP_SPACE):] if piece.startswith(SP_SPACE) else piece)
        return LMState(state.kenlm_state, pending), 0.0

    def finish(self, state: LMState) -> float:
        kstate, total = state.kenlm_state, 0.0
        if state.pending:
            kstate, total = self._score_word(kstate, state.pending)
        return total + self._score_word(kstate, "</s>")[1]

    def sentence_score(self, words: Sequence[str]) -> float:
        """Natural-log score of a whole sentence with <s> and </s> (equals kenlm's ``score`` x ln 10)."""
        state = self.initial_state().kenlm_state
        total = 0.0
        for word in words:
            state, score = self._score_word(state, word)
            total += score
        return total + self._score_word(state, "</s>")[1]
