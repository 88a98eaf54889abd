"""Sentence grammars of the three demo stand-ins: a gloss sequence and a spoken-language sentence per sample.

Each grammar builds one sentence from a few slots (time, place, verb, object, ...) and realises it twice:
the gloss line in a sign-language order (topic first, verb or question/negation marker last, no articles or
inflection) and the text in the spoken order (verb-second German, SVO Arabic with pronoun drop, English with
auxiliaries and articles). Some text words have no gloss ("es", "am", "do", "سوف") and some glosses have no
word (the pointing sign IX, the Arabic question marker), so translation is not monotone copying.

Lexicons are small on purpose (30-60 glosses, 50-100 words) so tiny demo models learn them in a few epochs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sentence:
    gloss: tuple[str, ...]  # gloss tokens as released (may carry a trailing '?' like MedASL)
    text: str  # spoken-language sentence as released (punctuation kept)
    template: str  # which grammar rule produced it (for the README and tests)


def _pick(rng: np.random.Generator, items: list | tuple):
    return items[int(rng.integers(len(items)))]


def _g(*parts: str) -> list[str]:
    """Gloss tokens from space-separated strings (``"TROCKEN BLEIBEN"`` is two signs)."""
    return [tok for part in parts if part for tok in part.split()]


# ----------------------------------------------------------------------------- phoenix14t: German weather
# (gloss, adverbial in a clause, form after "für" in the opener)
_DE_TIMES = [
    ("HEUTE", "heute", "heute"), ("MORGEN", "morgen", "morgen"), ("HEUTE NACHT", "heute nacht", "heute nacht"),
    ("ABEND", "am abend", "den abend"), ("MONTAG", "am montag", "montag"), ("DIENSTAG", "am dienstag", "dienstag"),
    ("MITTWOCH", "am mittwoch", "mittwoch"), ("DONNERSTAG", "am donnerstag", "donnerstag"),
    ("FREITAG", "am freitag", "freitag"), ("SAMSTAG", "am samstag", "samstag"), ("SONNTAG", "am sonntag", "sonntag"),
    ("WOCHENENDE", "am wochenende", "das wochenende"),
]
_DE_REGIONS = [
    ("NORD", "im norden"), ("SUED", "im süden"), ("WEST", "im westen"), ("OST", "im osten"),
    ("NORDWEST", "im nordwesten"), ("SUEDOST", "im südosten"), ("BERG", "in den bergen"),
    ("KUESTE", "an der küste"), ("MITTE", "in der mitte"), ("ALPEN", "an den alpen"),
]
# (gloss, finite verb-second form, infinitive after the modal "kann")
_DE_WEATHER = [
    ("REGEN", "regnet es", "regnen"), ("SCHNEE", "schneit es", "schneien"),
    ("SONNE", "scheint die sonne", "sonnig werden"),
    ("GEWITTER", "gibt es gewitter", "gewitter geben"), ("NEBEL", "ist es neblig", "neblig werden"),
    ("WOLKE", "ist es bewölkt", "bewölkt sein"), ("TROCKEN BLEIBEN", "bleibt es trocken", "trocken bleiben"),
    ("SCHAUER", "gibt es schauer", "schauer geben"), ("FROST", "gibt es frost", "frost geben"),
]
_DE_INTENSITY = [("STARK", "kräftig"), ("LEICHT", "leicht"), ("VIEL", "viel"), ("WENIG", "wenig")]
_DE_NUMBERS = [
    ("NULL", "null"), ("DREI", "drei"), ("FUENF", "fünf"), ("ACHT", "acht"), ("ZEHN", "zehn"), ("ZWOELF", "zwölf"),
    ("FUENFZEHN", "fünfzehn"), ("ZWANZIG", "zwanzig"), ("MINUS FUENF", "minus fünf"),
]
_DE_WIND = [("STARK", "stark"), ("SCHWACH", "schwach"), ("STURM", "stürmisch")]


def _de_clause(rng: np.random.Generator, allow_time: bool) -> tuple[list[str], list[str], str]:
    time = _pick(rng, _DE_TIMES) if allow_time and rng.random() < 0.5 else None
    region = _pick(rng, _DE_REGIONS)
    ix = ["IX"] if rng.random() < 0.25 else []  # pointing at the map: a sign with no word
    kind = _pick(rng, ["weather", "weather", "modal", "temperature", "wind"])
    tg = _g(time[0]) if time else []
    if kind == "weather":
        w = _pick(rng, _DE_WEATHER)
        inten = _pick(rng, _DE_INTENSITY) if rng.random() < 0.4 else None
        gloss = tg + _g(region[0]) + ix + _g(w[0]) + (_g(inten[0]) if inten else [])
        # verb second: the first constituent is the time if there is one, else the region
        if time:
            text = [time[1], w[1]] + ([inten[1]] if inten else []) + [region[1]]
        else:
            text = [region[1], w[1]] + ([inten[1]] if inten else [])
    elif kind == "modal":
        w = _pick(rng, _DE_WEATHER)
        gloss = tg + _g(region[0]) + ix + _g(w[0], "KOENNEN")  # modal last in the gloss line
        first = time[1] if time else region[1]
        rest = [region[1]] if time else []
        text = [first, "kann es"] + rest + [w[2]]
    elif kind == "temperature":
        low = _pick(rng, _DE_NUMBERS)
        if rng.random() < 0.4:
            high = _pick(rng, [n for n in _DE_NUMBERS if n != low])
            gloss = tg + _g(region[0]) + ix + _g("TEMPERATUR", low[0], "BIS", high[0], "GRAD")
            value = f"zwischen {low[1]} und {high[1]} grad"
        else:
            gloss = tg + _g(region[0]) + ix + _g("TEMPERATUR", low[0], "GRAD")
            value = f"bei {low[1]} grad"
        text = (["die temperaturen liegen"] + ([time[1]] if time else []) + [region[1], value])
    else:
        s = _pick(rng, _DE_WIND)
        gloss = tg + _g(region[0]) + ix + _g("WIND", s[0])
        text = ["der wind weht"] + ([time[1]] if time else []) + [region[1], s[1]]
    return gloss, text, kind


def phoenix_sentence(rng: np.random.Generator) -> Sentence:
    gloss: list[str] = []
    text: list[str] = []
    kinds: list[str] = []
    if rng.random() < 0.15:
        time = _pick(rng, _DE_TIMES)
        gloss += _g("JETZT WETTER", time[0])
        text += ["und nun die wettervorhersage für", time[2]]
        kinds.append("opener")
    n_clauses = 1 if kinds or rng.random() < 0.4 else 2
    for i in range(n_clauses):
        g, t, kind = _de_clause(rng, allow_time=i == 0 and not kinds)
        if i > 0 or kinds:
            text.append("und")  # clause connector: a word with no sign
        gloss += g
        text += t
        kinds.append(kind)
    return Sentence(tuple(gloss), " ".join(text) + " .", "+".join(kinds))


# ------------------------------------------------------------------------------ isharah: Arabic (Saudi)
# pronoun gloss/word and its person index into the verb paradigms below (I, you, he, she, we)
_AR_PRONOUNS = [("انا", 0), ("انت", 1), ("هو", 2), ("هي", 3), ("نحن", 4)]
_AR_VERBS = {
    "ذهاب": ("اذهب", "تذهب", "يذهب", "تذهب", "نذهب"),
    "اكل": ("اكل", "تاكل", "ياكل", "تاكل", "ناكل"),
    "شرب": ("اشرب", "تشرب", "يشرب", "تشرب", "نشرب"),
    "حب": ("احب", "تحب", "يحب", "تحب", "نحب"),
    "عمل": ("اعمل", "تعمل", "يعمل", "تعمل", "نعمل"),
    "دراسه": ("ادرس", "تدرس", "يدرس", "تدرس", "ندرس"),
    "سكن": ("اسكن", "تسكن", "يسكن", "تسكن", "نسكن"),
}
_AR_PLACES = [("مدرسه", "المدرسه"), ("بيت", "البيت"), ("سوق", "السوق"), ("مستشفى", "المستشفى"),
              ("جامعه", "الجامعه"), ("مسجد", "المسجد"), ("مطعم", "المطعم"), ("رياض", "الرياض")]
_AR_FOOD = [("خبز", "الخبز", "اكل"), ("تمر", "التمر", "اكل"), ("ماء", "الماء", "شرب"),
            ("قهوه", "القهوه", "شرب"), ("شاي", "الشاي", "شرب"), ("حليب", "الحليب", "شرب")]
_AR_TIMES = [("غدا", "غدا"), ("اليوم", "اليوم")]


def isharah_sentence(rng: np.random.Generator) -> Sentence:
    pron, person = _pick(rng, _AR_PRONOUNS)
    kind = _pick(rng, ["go", "consume", "stay", "question", "where", "negation"])
    if kind == "go":
        place = _pick(rng, _AR_PLACES)
        time = _pick(rng, _AR_TIMES) if rng.random() < 0.5 else None
        gloss = ([time[0]] if time else []) + [pron, place[0], "ذهاب"]  # time first, verb last
        future = ["سوف"] if time and time[0] == "غدا" else []
        text = [pron] + future + [_AR_VERBS["ذهاب"][person], "الى", place[1]] + ([time[1]] if time else [])
    elif kind == "consume":
        food = _pick(rng, _AR_FOOD)
        verb = "حب" if rng.random() < 0.3 else food[2]
        gloss = [pron, food[0], verb]
        text = [pron, _AR_VERBS[verb][person], food[1]]
    elif kind == "stay":
        place = _pick(rng, _AR_PLACES)
        verb = _pick(rng, ["عمل", "دراسه", "سكن"])
        gloss = [pron, place[0], verb]
        text = [pron, _AR_VERBS[verb][person], "في", place[1]]
    elif kind == "question":  # yes/no question: marker sign first, no pronoun word in the text
        place = _pick(rng, _AR_PLACES)
        gloss = ["استفهام", pron, place[0], "ذهاب"]
        text = ["هل", _AR_VERBS["ذهاب"][person], "الى", place[1], "؟"]
    elif kind == "where":
        verb = _pick(rng, ["عمل", "دراسه", "سكن"])
        gloss = [pron, verb, "اين"]  # question word last in the gloss line, first in the text
        text = ["اين", _AR_VERBS[verb][person], "؟"]
    else:
        food = _pick(rng, _AR_FOOD)
        gloss = [pron, food[0], food[2], "لا"]  # negation last in the gloss line, before the verb in the text
        text = [pron, "لا", _AR_VERBS[food[2]][person], food[1]]
    return Sentence(tuple(gloss), " ".join(text), kind)


# ---------------------------------------------------------------------------------- medasl: English medical
# (gloss, noun phrase after "have", bare noun after "the")
_EN_SYMPTOMS = [
    ("PAIN", "any pain", "pain"), ("FEVER", "a fever", "fever"), ("COUGH", "a cough", "cough"),
    ("HEADACHE", "a headache", "headache"), ("NAUSEA", "any nausea", "nausea"), ("ALLERGY", "any allergies", "allergy"),
    ("DIZZY", "any dizziness", "dizziness"), ("RASH", "a rash", "rash"), ("SWELLING", "any swelling", "swelling"),
]
_EN_BODY = [("HEAD", "head"), ("BACK", "back"), ("CHEST", "chest"), ("STOMACH", "stomach"), ("KNEE", "knee"),
            ("THROAT", "throat"), ("ARM", "arm"), ("EAR", "ear")]
_EN_MEDICINE = [("PILL", "these pills"), ("MEDICINE", "your medicine"), ("ANTIBIOTIC", "the antibiotics"),
                ("INSULIN", "your insulin")]
_EN_FREQUENCY = [("TWICE DAY", "twice a day"), ("MORNING", "every morning"), ("NIGHT", "at night"),
                 ("MEAL AFTER", "after meals"), ("EVERY FOUR HOUR", "every four hours")]
_EN_MEASURE = [("BLOOD PRESSURE", "your blood pressure"), ("TEMPERATURE", "your temperature"),
               ("HEART RATE", "your heart rate"), ("WEIGHT", "your weight"), ("BLOOD SUGAR", "your blood sugar")]
_EN_DURATION = [("TWO DAY", "for two days"), ("ONE WEEK", "for a week"), ("THREE DAY", "for three days")]
_EN_ACTION = [("REST", "rest"), ("DRINK WATER", "drink more water"), ("STAY HOME", "stay at home"),
              ("WALK", "walk every day"), ("SLEEP", "sleep more")]


def _question(tokens: list[str]) -> list[str]:
    """MedASL marks a question on the last gloss (``YOU?``); the sign is the same, the brows differ."""
    return tokens[:-1] + [tokens[-1] + "?"]


def medasl_sentence(rng: np.random.Generator) -> Sentence:
    kind = _pick(rng, ["symptom", "hurt", "medicine", "check", "advice", "onset"])
    if kind == "symptom":
        s = _pick(rng, _EN_SYMPTOMS)
        gloss, text = _question(_g(s[0], "HAVE YOU")), f"do you have {s[1]}?"
    elif kind == "hurt":
        b = _pick(rng, _EN_BODY)
        gloss, text = _question(_g(b[0], "HURT YOU")), f"does your {b[1]} hurt?"
    elif kind == "medicine":
        m, f = _pick(rng, _EN_MEDICINE), _pick(rng, _EN_FREQUENCY)
        gloss, text = _g(m[0], f[0], "TAKE PLEASE"), f"please take {m[1]} {f[1]}"
    elif kind == "check":
        m = _pick(rng, _EN_MEASURE)
        now = rng.random() < 0.5
        gloss = _g("NOW" if now else "", m[0], "CHECK WILL")
        text = f"we will check {m[1]}{' now' if now else ''}"
    elif kind == "advice":
        d, a = _pick(rng, _EN_DURATION), _pick(rng, _EN_ACTION)
        gloss, text = _g(d[0], a[0], "SHOULD YOU"), f"you should {a[1]} {d[1]}"
    else:
        s = _pick(rng, _EN_SYMPTOMS)
        gloss, text = _question(_g(s[0], "START WHEN")), f"when did the {s[2]} start?"
    return Sentence(tuple(gloss), text, kind)


GRAMMARS: dict[str, Callable[[np.random.Generator], Sentence]] = {
    "phoenix14t": phoenix_sentence,
    "isharah": isharah_sentence,
    "medasl": medasl_sentence,
}

GRAMMAR_NOTES: dict[str, str] = {
    "phoenix14t": (
        "German weather forecasts: 1-2 clauses (weather, modal 'kann', temperature, wind) with an optional "
        "opener; glosses put time and region first and the weather sign or modal last (plus the pointing sign IX), "
        "the text is verb-second with 'es', articles and prepositions that have no sign."
    ),
    "isharah": (
        "Short Arabic sentences (go / eat, drink, like / work, study, live / yes-no question / where / negation): "
        "glosses are uninflected and verb-final with question and negation markers at the edges; the text "
        "inflects the verb for person, adds prepositions and 'سوف', and drops the pronoun in questions."
    ),
    "medasl": (
        "English clinical phrases (symptoms, pain, medication, measurements, advice, onset): glosses are topic-first "
        "with the verb/modal and 'YOU' last and '?' on the last gloss of a question; the text adds auxiliaries, "
        "articles and possessives."
    ),
}


def sample_sentence(profile: str, rng: np.random.Generator, max_glosses: int) -> Sentence:
    """One sentence of ``profile`` with at most ``max_glosses`` glosses (longer draws are redrawn, seeded)."""
    grammar = GRAMMARS[profile]
    for _ in range(1000):
        sentence = grammar(rng)
        if len(sentence.gloss) <= max_glosses:
            return sentence
    raise ValueError(f"demo grammar {profile!r} produced no sentence of at most {max_glosses} glosses")


def sign_key(gloss: str) -> str:
    """The lexical sign behind a gloss token: a trailing '?' or ',' is a non-manual marker, not a new sign."""
    return gloss.rstrip("?,") or gloss


def is_question(gloss: str) -> bool:
    return gloss.endswith("?")


def _matches(gloss: str, word: str) -> bool:
    """A rough cross-lingual match between a gloss and a text word (shared stem), independent of the grammar.

    German/English: same first three letters (REGEN~regnet, FEVER~fever). Arabic: the article 'ال' and a
    one-letter person prefix are ignored (قهوه~القهوه, ذهاب~تذهب).
    """
    g, w = sign_key(gloss).lower(), word.lower()
    if len(g) < 2:
        return False
    if w.startswith(g[:3]):
        return True
    if not g.isascii():
        bare = w[2:] if w.startswith("ال") else w
        return bare.startswith(g[:3]) or (len(bare) > 2 and bare[1:].startswith(g[:2]))
    return False


def is_reordered(sentence: Sentence) -> bool:
    """True when the glosses that can be matched to a text word appear in a different order in the text.

    Measures how often translation is not monotone copying (tests and README); each gloss is matched to the
    first text word sharing its stem (:func:`_matches`), unmatched glosses are ignored.
    """
    words = sentence.text.split()
    positions: list[int] = []
    for gloss in sentence.gloss:
        hits = [i for i, w in enumerate(words) if _matches(gloss, w)]
        if hits:
            positions.append(hits[0])
    return positions != sorted(positions)
