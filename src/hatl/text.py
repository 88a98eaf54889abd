"""Text and gloss normalisation, shared by the vocabularies, the language model and the metrics.

The same function normalises training text (vocabulary, KenLM) and references at scoring time, so the
model is scored against exactly what it was trained to produce.
"""

from __future__ import annotations

import unicodedata


def strip_punctuation(text: str) -> str:
    """Drop every Unicode punctuation character (category P*), so Arabic '؟' and '،' go as '?' and ',' do.

    Apostrophes inside a word (``it's``) are kept: they are part of English and German words.
    """
    out = []
    for i, ch in enumerate(text):
        if unicodedata.category(ch).startswith("P"):
            inside_word = ch in "'’" and 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()
            if not inside_word:
                out.append(" ")
                continue
        out.append(ch)
    return "".join(out)


def normalise_text(text: str, lowercase: bool = True, strip_punct: bool = True) -> str:
    text = unicodedata.normalize("NFC", text)
    if strip_punct:
        text = strip_punctuation(text)
    if lowercase:
        text = text.lower()
    return " ".join(text.split())


def normalise_gloss(gloss: str) -> str:
    """Glosses keep their case and markers; only whitespace and separator commas are normalised."""
    gloss = unicodedata.normalize("NFC", gloss).replace(",", " ")
    return " ".join(gloss.split())


def tokens(text: str) -> list[str]:
    return text.split()
