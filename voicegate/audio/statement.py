"""Consent statements and liveness challenges, checked against an ASR transcript by word error rate.

Pure text, no Django, no audio: `render_statement` makes the sentence the owner reads aloud,
`normalize_words` turns both that sentence and the recognizer's transcript into one canonical word list,
`check_statement` / `check_challenge` compare the two and say whether the recording says what it must.

Canonical form (applied to both sides, so spelling choices of the recognizer do not count as errors):
- Unicode NFKC, lower case, apostrophes dropped ("don't" -> "dont"), other punctuation and hyphens -> spaces;
- a few written abbreviations spelled out ("ltd" -> "limited", "&" -> "and");
- every number, written with digits ("31st", "2026") or in words ("thirty-first", "twenty twenty-six",
  "two thousand and twenty six", "seven three one four"), becomes one token per digit: "3 1", "2 0 2 6".
  One digit per token makes a wrong year cost one error per wrong digit, and makes "7314" and
  "seven three one four" the same four tokens;
- British date order "the 31st of December" becomes "december 3 1", the order the statement is written in.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

# From the distributions bench/asr_consent.py measured; see docs/consent-verification.md. A statement with
# one field changed is only 2-4 words off (WER 0.04-0.15), inside the spread of true statements, so the
# statement check also requires the date and the purposes word for word (`check_consent_statement`).
DEFAULT_STATEMENT_THRESHOLD = 0.10
# Another challenge phrase shares no words (WER >= 0.89 measured); true ones scored <= 0.67 (espeak-ng).
DEFAULT_CHALLENGE_THRESHOLD = 0.50

MONTHS = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip

_UNITS = {
    "zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9,
}  # fmt: skip
_TEENS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14,
    "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18, "nineteenth": 19,
    "twentieth": 20, "thirtieth": 30, "fortieth": 40, "fiftieth": 50, "sixtieth": 60, "seventieth": 70,
    "eightieth": 80, "ninetieth": 90,
}  # fmt: skip
_MULTIPLIERS = {"hundred": 100, "thousand": 1000, "hundredth": 100, "thousandth": 1000}
_ABBREVIATIONS = {
    "ltd": "limited", "inc": "incorporated", "corp": "corporation", "mr": "mister", "dr": "doctor",
    "okay": "ok", "vs": "versus",
}  # fmt: skip
_NUMBER_WORDS = set(_UNITS) | set(_TEENS) | set(_TENS) | set(_ORDINALS) | set(_MULTIPLIERS)

# Challenge words: common, concrete, two or three syllables, one spelling in US and UK English, no
# homophone of another word or of a digit ("four"/"for", "eight"/"ate"), and no number word.
CHALLENGE_WORDS = (
    "apple", "basket", "blanket", "butter", "camel", "candle", "castle", "cherry", "coffee", "cotton",
    "desert", "dolphin", "dragon", "engine", "forest", "garden", "giraffe", "guitar", "hammer", "island",
    "jacket", "kitchen", "kitten", "ladder", "lemon", "letter", "lion", "magnet", "market", "meadow",
    "mirror", "monkey", "morning", "mountain", "napkin", "ocean", "orange", "panda", "paper", "parrot",
    "pencil", "pepper", "picnic", "pillow", "planet", "pocket", "potato", "puzzle", "rabbit", "river",
    "rocket", "saddle", "salad", "silver", "spider", "sugar", "summer", "sunset", "table", "tiger",
    "tomato", "tunnel", "turtle", "valley", "velvet", "village", "violin", "wagon", "walnut", "window",
    "winter", "yellow", "zebra",
)  # fmt: skip
_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@dataclass(frozen=True)
class ConsentStatement:
    """What the owner consents to; `render_statement` turns it into the sentence they read aloud."""

    name: str
    organization: str
    purposes: tuple[str, ...]
    until: dt.date


@dataclass(frozen=True)
class StatementCheck:
    """Result of comparing a transcript with the expected text (both normalized).

    missing_words: expected words the transcript lacks (deleted or replaced), in statement order.
    extra_words: transcript words the statement lacks (inserted or replacing), in transcript order.
    missing_required: the required phrases (e.g. the date) not said word for word; any fails the check.
    """

    wer: float
    threshold: float
    passed: bool
    missing_words: tuple[str, ...]
    extra_words: tuple[str, ...]
    missing_required: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChallengePhrase:
    """A liveness phrase: random words, then a 4-digit number read digit by digit."""

    words: tuple[str, ...]
    digits: str

    @property
    def text(self) -> str:
        """The phrase as shown to the speaker, digits spelled out so they are read one by one."""
        spoken = " ".join(_DIGIT_WORDS[int(d)] for d in self.digits)
        return f"{' '.join(self.words)}, {spoken}"


# ---------------------------------------------------------------- rendering


def render_statement(statement: ConsentStatement) -> str:
    """The sentence the owner reads: "I, <name>, consent to <org> creating ... for <purposes>, until <date>."

    The date is written "December 31, 2026": the way it is most often read aloud in English, and the
    order the recognizer writes it back in, so no reordering is needed to match it.
    """
    name = _clean_field("name", statement.name)
    organization = _clean_field("organization", statement.organization)
    purposes = [_clean_field("purpose", p) for p in statement.purposes]
    if not purposes:
        raise ValueError("a consent statement needs at least one purpose")
    return (
        f"I, {name}, consent to {organization} creating a synthetic version of my voice "
        f"for {_join_list(purposes)}, until {render_date(statement.until)}."
    )


def render_date(day: dt.date) -> str:
    """`December 31, 2026`: month name, day number, year."""
    return f"{MONTHS[day.month - 1].capitalize()} {day.day}, {day.year}"


def spoken_date(day: dt.date) -> str:
    """The date as words, e.g. "December thirty-first, twenty twenty-six" (a reading hint; normalizes
    to the same tokens as `render_date`)."""
    return f"{MONTHS[day.month - 1].capitalize()} {_ordinal_words(day.day)}, {_year_words(day.year)}"


def _clean_field(label: str, value: str) -> str:
    text = " ".join(str(value).split())
    if not text:
        raise ValueError(f"consent statement {label} is empty")
    if not normalize_words(text):
        raise ValueError(f"consent statement {label} has no speakable words: {value!r}")
    return text


def _join_list(items: Sequence[str]) -> str:
    if len(items) == 1:
        return items[0]
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _cardinal_words(n: int) -> str:
    """0..99 as words ("twenty-six")."""
    if n < 10:
        return _DIGIT_WORDS[n]
    if n < 20:
        return next(w for w, v in _TEENS.items() if v == n)
    tens = next(w for w, v in _TENS.items() if v == n - n % 10)
    return tens if n % 10 == 0 else f"{tens}-{_DIGIT_WORDS[n % 10]}"


def _ordinal_words(n: int) -> str:
    """1..31 as an ordinal ("thirty-first")."""
    by_value = {v: w for w, v in _ORDINALS.items()}
    if n in by_value:
        return by_value[n]
    return f"{_cardinal_words(n - n % 10)}-{by_value[n % 10]}"


def _year_words(year: int) -> str:
    """2026 -> "twenty twenty-six", 2005 -> "two thousand five", 1999 -> "nineteen ninety-nine"."""
    high, low = divmod(year, 100)
    if 2000 <= year < 2010:
        return "two thousand" + (f" {_DIGIT_WORDS[low]}" if low else "")
    if low == 0:
        return f"{_cardinal_words(high)} hundred"
    return f"{_cardinal_words(high)} {_cardinal_words(low) if low >= 10 else 'oh ' + _DIGIT_WORDS[low]}"


# ---------------------------------------------------------------- normalization


def normalize_words(text: str) -> list[str]:
    """Canonical word list for comparison (see the module docstring for the rules)."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 10,000 -> 10000
    text = text.replace("&", " and ").replace("%", " percent ")
    text = re.sub(r"['\u2019\u2018`]", "", text)
    text = re.sub(r"(\d+)(st|nd|rd|th)\b", r"\1", text)
    text = re.sub(r"(\d)", r" \1 ", text)
    words: list[str] = []
    for token in re.findall(r"[^\W_]+", text):
        words.extend(_ABBREVIATIONS.get(token, token).split())
    return _reorder_dates(_numbers_to_digits(words))


def _numbers_to_digits(words: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(words):
        if words[i] in _NUMBER_WORDS and (words[i] != "oh" or _in_number(out)):
            value, end = _parse_number(words, i)
            if end == i:  # cannot start a number here
                out.append(words[i])
                i += 1
                continue
            out.extend(str(value))
            i = end
        else:
            out.append(words[i])
            i += 1
    return out


def _in_number(out: list[str]) -> bool:
    """ "oh" is a zero only inside a number ("twenty oh five"), not the interjection."""
    return bool(out) and out[-1].isdigit()


def _parse_number(words: list[str], i: int) -> tuple[int, int]:
    """Parse one cardinal/ordinal starting at words[i]; returns (value, index after it).

    Stops where the next word cannot extend the number, so "twenty twenty six" is two numbers
    (20, 26 -> digits "2 0 2 6") and "seven three" is two (7, 3).
    """
    total, current, last = 0, 0, ""
    while i < len(words):
        w = words[i]
        if w == "and" and last in ("hundred", "thousand") and _next_is_small(words, i + 1):
            i += 1
            continue
        kind = _kind(w)
        if kind == "" or not _can_follow(last, kind, current):
            break
        if kind == "mult":
            mult = _MULTIPLIERS[w]
            if mult == 1000:
                total, current = (total + max(current, 1)) * 1000, 0
            else:
                current = max(current, 1) * 100
            last = "hundred" if mult == 100 else "thousand"
        else:
            current += _value(w)
            last = kind
        i += 1
        if w in _ORDINALS or w in ("hundredth", "thousandth"):
            break
    return total + current, i


def _next_is_small(words: list[str], i: int) -> bool:
    return i < len(words) and _kind(words[i]) in ("unit", "teen", "tens")


def _kind(word: str) -> str:
    if word in _UNITS:
        return "zero" if _UNITS[word] == 0 else "unit"
    if word in _TEENS:
        return "teen"
    if word in _TENS:
        return "tens"
    if word in _MULTIPLIERS:
        return "mult"
    if word in _ORDINALS:
        value = _ORDINALS[word]
        return "unit" if value < 10 else "teen" if value < 20 else "tens"
    return ""


def _value(word: str) -> int:
    for table in (_UNITS, _TEENS, _TENS, _ORDINALS):
        if word in table:
            return table[word]
    raise KeyError(word)


def _can_follow(last: str, kind: str, current: int) -> bool:
    if last == "":
        return True  # "hundred" alone is "a hundred"
    if kind == "zero" or last == "zero":
        return False
    if kind == "unit":
        return last in ("tens", "hundred", "thousand")
    if kind in ("teen", "tens"):
        return last in ("hundred", "thousand")
    # a multiplier: "two hundred", "nineteen hundred", "five thousand", "two hundred thousand"
    return last in ("unit", "teen", "tens", "hundred") and current > 0


def _reorder_dates(words: list[str]) -> list[str]:
    """ "[the] 3 1 [of] december" -> "december 3 1"; "december the 3 1" -> "december 3 1"."""
    text = " ".join(words)
    month = "|".join(MONTHS)
    day = r"\d(?: \d)?"
    text = re.sub(rf"\b(?:the )?({day}) (?:of )?({month})\b", r"\2 \1", text)
    text = re.sub(rf"\b({month}) the ({day})\b", r"\1 \2", text)
    return text.split()


# ---------------------------------------------------------------- word error rate


def word_alignment(
    reference: Sequence[str], hypothesis: Sequence[str]
) -> list[tuple[str | None, str | None]]:
    """Levenshtein alignment over words: pairs (ref, hyp); None marks an insertion or a deletion."""
    n, m = len(reference), len(hypothesis)
    dist = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        dist[i][0] = i
    for j in range(m + 1):
        dist[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            sub = dist[i - 1][j - 1] + (reference[i - 1] != hypothesis[j - 1])
            dist[i][j] = min(sub, dist[i - 1][j] + 1, dist[i][j - 1] + 1)
    pairs: list[tuple[str | None, str | None]] = []
    i, j = n, m
    while i or j:
        if i and j and dist[i][j] == dist[i - 1][j - 1] + (reference[i - 1] != hypothesis[j - 1]):
            pairs.append((reference[i - 1], hypothesis[j - 1]))
            i, j = i - 1, j - 1
        elif i and dist[i][j] == dist[i - 1][j] + 1:
            pairs.append((reference[i - 1], None))
            i -= 1
        else:
            pairs.append((None, hypothesis[j - 1]))
            j -= 1
    return pairs[::-1]


def word_edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Substitutions + deletions + insertions turning `reference` into `hypothesis`."""
    return sum(r != h for r, h in word_alignment(reference, hypothesis))


def word_error_rate(reference: str, hypothesis: str) -> float:
    """WER of `hypothesis` against `reference`, both normalized; may exceed 1.0 with many insertions."""
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    if not ref:
        raise ValueError("the reference text has no words")
    return word_edit_distance(ref, hyp) / len(ref)


# ---------------------------------------------------------------- checks


def check_statement(
    expected: str,
    transcript: str,
    threshold: float = DEFAULT_STATEMENT_THRESHOLD,
    required: Sequence[str] = (),
) -> StatementCheck:
    """Does `transcript` say `expected`?

    Passes when the normalized WER is at most `threshold` and every phrase in `required` (each a part
    of `expected`) is matched word for word: a WER threshold alone cannot tell a misheard name from a
    wrong date, since both cost two or three words out of ~30.
    """
    ref, hyp = normalize_words(expected), normalize_words(transcript)
    if not ref:
        raise ValueError("the expected text has no words")
    pairs = word_alignment(ref, hyp)
    wer = sum(r != h for r, h in pairs) / len(ref)
    matched = _matched_reference_positions(pairs)
    missing_required = tuple(p for p in required if not _phrase_matched(ref, matched, normalize_words(p)))
    return StatementCheck(
        wer=wer,
        threshold=threshold,
        passed=wer <= threshold and not missing_required,
        missing_words=tuple(r for r, h in pairs if r is not None and r != h),
        extra_words=tuple(h for r, h in pairs if h is not None and r != h),
        missing_required=missing_required,
    )


def check_consent_statement(
    statement: ConsentStatement, transcript: str, threshold: float = DEFAULT_STATEMENT_THRESHOLD
) -> StatementCheck:
    """`check_statement` against the rendered statement; the expiry date and every purpose are required
    word for word (the name and organization count only through the WER: names are what ASR mishears most)."""
    required = (render_date(statement.until), *(" ".join(p.split()) for p in statement.purposes))
    return check_statement(render_statement(statement), transcript, threshold, required=required)


def _matched_reference_positions(pairs: list[tuple[str | None, str | None]]) -> list[bool]:
    """For each reference word in order: was it aligned to an identical hypothesis word?"""
    return [r == h for r, h in pairs if r is not None]


def _phrase_matched(ref: list[str], matched: list[bool], phrase: list[str]) -> bool:
    if not phrase:
        raise ValueError("a required phrase has no words")
    n = len(phrase)
    starts = [i for i in range(len(ref) - n + 1) if ref[i : i + n] == phrase]
    if not starts:
        raise ValueError(f"required phrase {' '.join(phrase)!r} is not part of the expected text")
    return any(all(matched[i : i + n]) for i in starts)


def random_challenge_phrase(rng: random.Random, n_words: int = 5) -> ChallengePhrase:
    """Distinct random words from CHALLENGE_WORDS and a random 4-digit string (leading zeros allowed).

    Pass `secrets.SystemRandom()` in production; a seeded `random.Random` in tests.
    """
    words = tuple(rng.sample(CHALLENGE_WORDS, n_words))
    digits = "".join(str(rng.randrange(10)) for _ in range(4))
    return ChallengePhrase(words=words, digits=digits)


def check_challenge(
    phrase: ChallengePhrase, transcript: str, threshold: float = DEFAULT_CHALLENGE_THRESHOLD
) -> StatementCheck:
    """Same WER check as `check_statement`, against the phrase's text."""
    return check_statement(phrase.text, transcript, threshold)
