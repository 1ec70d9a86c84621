"""Text front end for the synthesis engines: validate, normalize to speakable words, split for streaming.

Framework-free and deterministic. ``normalize_text`` spells out what espeak-ng (Piper's phonemizer) would read
wrongly or not at all: numbers, decimals, ordinals, years, dates, times, currencies, percentages, units after
numbers, common abbreviations, e-mail addresses and URLs. Latin-script words with diacritics (café, Zürich) pass
through unchanged. ``validate_text`` refuses empty and over-long text and text in a script other than Latin, naming
the script; ``normalize_text`` refuses the script too, so any input gives either words or :class:`TextRejected`.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

__all__ = [
    "TextRejected",
    "cardinal",
    "normalize_text",
    "ordinal",
    "split_clauses",
    "split_sentences",
    "validate_text",
    "year_words",
]


class TextRejected(ValueError):
    """Text the engines will not speak. ``reason_code``: "empty", "too_long" or "unsupported_script"."""

    def __init__(self, reason_code: str, message: str) -> None:
        super().__init__(message)
        self.reason_code = reason_code
        self.message = message


# ----------------------------------------------------------------------------------------------- number words

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = ((10 ** 12, "trillion"), (10 ** 9, "billion"), (10 ** 6, "million"), (1000, "thousand"))
_MAX_CARDINAL = 10 ** 15
_ORDINAL_IRREGULAR = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                      "nine": "ninth", "twelve": "twelfth"}


def cardinal(n: int) -> str:
    """42 -> "forty-two"; negative -> "minus ..."; at or above 10**15 the digits are read one by one."""
    if n < 0:
        return "minus " + cardinal(-n)
    if n >= _MAX_CARDINAL:
        return digits(str(n))
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("-" + _ONES[n % 10] if n % 10 else "")
    if n < 1000:
        return _ONES[n // 100] + " hundred" + (" " + cardinal(n % 100) if n % 100 else "")
    for value, word in _SCALES:
        if n >= value:
            rest = n % value
            return cardinal(n // value) + " " + word + (" " + cardinal(rest) if rest else "")
    raise AssertionError(n)  # pragma: no cover


def ordinal(n: int) -> str:
    """21 -> "twenty-first"."""
    words = cardinal(n)
    head, sep, last = words.rpartition("-") if "-" in words.split(" ")[-1] else words.rpartition(" ")
    if last in _ORDINAL_IRREGULAR:
        last = _ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + sep + last


def year_words(y: int) -> str:
    """1999 -> "nineteen ninety-nine", 2005 -> "two thousand five", 2024 -> "twenty twenty-four"."""
    if y < 1000 or y > 9999 or (2000 <= y < 2010) or y % 1000 == 0:
        return cardinal(y)
    high, low = divmod(y, 100)
    if low == 0:
        return cardinal(high) + " hundred"
    return cardinal(high) + " " + (cardinal(low) if low >= 10 else "oh " + _ONES[low])


def digits(s: str) -> str:
    """"407" -> "four zero seven"."""
    return " ".join(_ONES[int(c)] for c in s if c.isdigit())


def _number(s: str) -> str:
    """A digit string with optional thousands commas and decimal part -> words."""
    whole, _, frac = s.replace(",", "").partition(".")
    words = cardinal(int(whole)) if whole and len(whole) <= 15 else digits(whole) if whole else "zero"
    return words + (" point " + digits(frac) if frac else "")


# ----------------------------------------------------------------------------------------------- tables

_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
_MONTH_ABBR = {m[:3].lower(): m for m in _MONTHS} | {"sept": "September"}
_CURRENCIES = {"$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence"),
               "€": ("euro", "euros", "cent", "cents"), "¥": ("yen", "yen", "", "")}
_CODES = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥"}
_TITLES = {"mr": "Mister", "mrs": "Missus", "ms": "Miz", "dr": "Doctor", "prof": "Professor", "st": "Saint",
           "sr": "Senior", "jr": "Junior", "gen": "General", "capt": "Captain", "lt": "Lieutenant", "sgt": "Sergeant",
           "rev": "Reverend", "hon": "Honorable", "gov": "Governor", "sen": "Senator", "rep": "Representative"}
_ABBREVIATIONS = {"e.g.": "for example", "i.e.": "that is", "etc.": "et cetera", "vs.": "versus", "vs": "versus",
                  "approx.": "approximately", "dept.": "department", "est.": "established", "inc.": "incorporated",
                  "ltd.": "limited", "corp.": "corporation", "co.": "company", "ave.": "avenue",
                  "blvd.": "boulevard", "rd.": "road", "mt.": "mount", "ft.": "fort", "no.": "number",
                  "a.m.": "a m", "p.m.": "p m", "u.s.": "U S", "u.k.": "U K", "min.": "minutes", "max.": "maximum",
                  "fig.": "figure", "vol.": "volume", "ch.": "chapter", "p.s.": "P S"}
_UNITS = {"km": ("kilometer", "kilometers"), "m": ("meter", "meters"), "cm": ("centimeter", "centimeters"),
          "mm": ("millimeter", "millimeters"), "kg": ("kilogram", "kilograms"), "g": ("gram", "grams"),
          "mg": ("milligram", "milligrams"), "lb": ("pound", "pounds"), "lbs": ("pound", "pounds"),
          "oz": ("ounce", "ounces"), "ft": ("foot", "feet"), "mi": ("mile", "miles"), "mph": ("mile per hour",
          "miles per hour"), "km/h": ("kilometer per hour", "kilometers per hour"), "kph": ("kilometer per hour",
          "kilometers per hour"), "l": ("liter", "liters"), "ml": ("milliliter", "milliliters"),
          "s": ("second", "seconds"), "sec": ("second", "seconds"), "min": ("minute", "minutes"),
          "h": ("hour", "hours"), "hr": ("hour", "hours"), "hrs": ("hour", "hours"), "ms": ("millisecond",
          "milliseconds"), "kb": ("kilobyte", "kilobytes"), "mb": ("megabyte", "megabytes"),
          "gb": ("gigabyte", "gigabytes"), "tb": ("terabyte", "terabytes"), "hz": ("hertz", "hertz"),
          "khz": ("kilohertz", "kilohertz"), "ghz": ("gigahertz", "gigahertz"), "°c": ("degree Celsius",
          "degrees Celsius"), "°f": ("degree Fahrenheit", "degrees Fahrenheit"), "°": ("degree", "degrees"),
          "microm": ("micrometer", "micrometers"), "micros": ("microsecond", "microseconds"),
          "microg": ("microgram", "micrograms"), "kw": ("kilowatt", "kilowatts"), "w": ("watt", "watts"), "v": ("volt", "volts")}
_SYMBOLS = {"&": " and ", "+": " plus ", "=": " equals ", "@": " at ", "×": " times ", "÷": " divided by ",
            "~": " about ", "§": " section ", "°": " degrees ", "№": " number ", "…": "...", "‰": " per mille ",
            "µ": "micro", "μ": "micro", "π": " pi ", "Ω": " ohms ", "Δ": " delta ", "α": " alpha ", "β": " beta ",
            "γ": " gamma ", "λ": " lambda ", "σ": " sigma ", "\u2013": " - ", "\u2014": ", ", "\u2212": "-",
            "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "½": " one half ", "¼": " one quarter ",
            "¾": " three quarters "}
_TLDS = {"com": "dot com", "org": "dot org", "net": "dot net", "io": "dot I O", "gov": "dot gov", "edu": "dot E D U"}

_SCRIPT_NAMES = {"CJK": "Chinese/Japanese (CJK)", "HIRAGANA": "Japanese (Hiragana)", "KATAKANA": "Japanese (Katakana)",
                 "HANGUL": "Korean (Hangul)", "CYRILLIC": "Cyrillic", "ARABIC": "Arabic", "GREEK": "Greek",
                 "HEBREW": "Hebrew", "DEVANAGARI": "Devanagari", "THAI": "Thai", "ARMENIAN": "Armenian",
                 "GEORGIAN": "Georgian", "BENGALI": "Bengali", "TAMIL": "Tamil", "ETHIOPIC": "Ethiopic"}


# ----------------------------------------------------------------------------------------------- validation


def validate_text(text: str, max_chars: int) -> str:
    """Refuse what no engine should speak; returns the cleaned text (NFKC, no control characters).

    Raises :class:`TextRejected` with reason_code "empty" (no letters or digits), "too_long" (more than
    ``max_chars`` characters) or "unsupported_script" (letters of a non-Latin script; the message names it).
    """
    if not isinstance(text, str):
        raise TextRejected("empty", "text must be a string")
    if len(text) > max_chars:
        raise TextRejected("too_long", f"text has {len(text)} characters; at most {max_chars} allowed")
    cleaned = _clean(text)
    _check_script(cleaned)
    if not any(c.isalnum() for c in cleaned):
        raise TextRejected("empty", "text has nothing to say (no letters or digits)")
    return cleaned


def _clean(text: str) -> str:
    text = "".join(_SYMBOLS.get(c, c) if c in "µμπΩΔαβγλσ" else c for c in text)  # before NFKC folds µ to μ
    text = unicodedata.normalize("NFKC", text)
    text = "".join(str(unicodedata.digit(c)) if c.isdigit() and not c.isdecimal() else c for c in text)
    text = "".join(c if unicodedata.category(c)[0] != "C" else (" " if c in "\t\n\r\x0b\x0c" else "")
                   for c in text)
    return re.sub(r"\s+", " ", text).strip()


def _check_script(text: str) -> None:
    foreign: Counter[str] = Counter()
    for c in text:
        if unicodedata.category(c)[0] == "L" and not _is_latin(c):
            name = unicodedata.name(c, "UNKNOWN")
            key = name.split(" ")[0]
            foreign[_SCRIPT_NAMES.get(key, key.title())] += 1
    if foreign:
        script = foreign.most_common(1)[0][0]
        raise TextRejected("unsupported_script", f"text contains {script} script; only Latin-script text "
                                                 "(English) can be spoken")


def _is_latin(c: str) -> bool:
    name = unicodedata.name(c, "")
    return "LATIN" in name or c in "ªº"


# ----------------------------------------------------------------------------------------------- normalization


def normalize_text(text: str) -> str:
    """Spell out numbers, dates, times, money, units, abbreviations, e-mails and URLs as words.

    Raises :class:`TextRejected` for text in a non-Latin script (never any other exception).
    """
    text = _clean(text)
    _check_script(text)
    for step in (_emails, _urls, _iso_dates, _slash_dates, _month_dates, _times, _currency, _percent, _ordinals,
                 _units, _abbreviations, _symbols, _ranges, _numbers):
        text = step(text)
    return re.sub(r"\s+", " ", text).strip()


def _speak_address(s: str) -> str:
    parts = re.split(r"([./:_\-])", s)
    names = {".": "dot", "/": "slash", ":": "colon", "_": "underscore", "-": "dash"}
    out = []
    for i, p in enumerate(parts):
        if p in names:
            out.append(names[p])
        elif p:
            out.append(_TLDS.get(p.lower(), p).removeprefix("dot ") if i == len(parts) - 1 and p.lower() in _TLDS
                       else (digits(p) if p.isdigit() else p))
    return " ".join(out)


def _emails(text: str) -> str:
    return re.sub(r"\b([\w.+-]+)@([\w-]+(?:\.[\w-]+)+)\b",
                  lambda m: _speak_address(m[1]).replace("+", " plus ") + " at " + _speak_address(m[2]), text)


def _urls(text: str) -> str:
    def speak(m: re.Match[str]) -> str:
        url = re.sub(r"^(https?|ftp)://", "", m[0], flags=re.IGNORECASE).rstrip("/")
        url = re.sub(r"^www\.", "W W W.", url, flags=re.IGNORECASE)
        return _speak_address(url).replace("W W W dot", "W W W dot")

    return re.sub(r"\b(?:(?:https?|ftp)://\S+|www\.\S+|[a-z0-9-]+\.(?:com|org|net|io|gov|edu)(?:/\S*)?)(?<![.,;:!?)])",
                  speak, text, flags=re.IGNORECASE)


def _date_words(year: int | None, month: int, day: int | None) -> str | None:
    if not 1 <= month <= 12 or (day is not None and not 1 <= day <= 31):
        return None
    words = _MONTHS[month - 1] + (" " + ordinal(day) if day else "")
    return words + (", " + year_words(year) if year is not None else "")


def _iso_dates(text: str) -> str:
    return re.sub(r"\b(\d{4})-(\d{2})-(\d{2})\b",
                  lambda m: _date_words(int(m[1]), int(m[2]), int(m[3])) or m[0], text)


def _slash_dates(text: str) -> str:
    """US order month/day/year (03/15/2024, 3/15/24)."""
    def speak(m: re.Match[str]) -> str:
        year = int(m[3]) + (2000 if len(m[3]) == 2 else 0)
        return _date_words(year, int(m[1]), int(m[2])) or m[0]

    return re.sub(r"\b(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})\b", speak, text)


def _month_dates(text: str) -> str:
    month = r"(Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?|" \
            r"Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"

    def name(s: str) -> str:
        return _MONTH_ABBR.get(s.lower().rstrip(".")[:4] if s.lower().startswith("sept") else s.lower()[:3], s)

    text = re.sub(month + r" (\d{1,2})(?:st|nd|rd|th)?(?:,? (\d{4}))?\b",
                  lambda m: name(m[1]) + " " + ordinal(int(m[2])) + (", " + year_words(int(m[3])) if m[3] else ""),
                  text)
    text = re.sub(r"\b(\d{1,2})(?:st|nd|rd|th)? (?:of )?" + month + r"(?:,? (\d{4}))?\b",
                  lambda m: "the " + ordinal(int(m[1])) + " of " + name(m[2])
                  + (", " + year_words(int(m[3])) if m[3] else ""), text)
    return re.sub(r"\b(?:in|of|since|by|until|from|before|after) (\d{4})\b",
                  lambda m: m[0][: m.start(1) - m.start(0)] + year_words(int(m[1])), text)


def _times(text: str) -> str:
    def speak(m: re.Match[str]) -> str:
        h, mnt = int(m[1]), int(m[2])
        if h > 24 or mnt > 59:
            return m[0]
        words = cardinal(h) + (" o'clock" if mnt == 0 and not m[3] else "" if mnt == 0
                               else " " + (cardinal(mnt) if mnt >= 10 else "oh " + _ONES[mnt]))
        return words + (" " + " ".join(m[3].replace(".", "").upper()) + _kept_stop(m) if m[3] else "")

    text = re.sub(r"\b(\d{1,2}):(\d{2})(?::\d{2})?(?: ?([ap]\.?m\.?)(?=\W|$))?", speak, text, flags=re.IGNORECASE)
    return re.sub(r"\b(\d{1,2}) ?([ap])\.?m\.?(?=\W|$)",
                  lambda m: cardinal(int(m[1])) + " " + m[2].upper() + " M" + _kept_stop(m), text, flags=re.IGNORECASE)


def _kept_stop(m: re.Match[str]) -> str:
    """The period of "a.m." also ends the sentence when the text ends or a capital follows."""
    rest = m.string[m.end():]
    return "." if m[0].endswith(".") and (not rest.strip() or re.match(r"\s+[A-Z\"']", rest)) else ""


def _currency(text: str) -> str:
    def speak(sym: str, amount: str, scale: str | None) -> str:
        one, many, sub_one, sub_many = _CURRENCIES[sym]
        whole, _, frac = amount.replace(",", "").partition(".")
        if scale:
            return _number(amount) + " " + scale.lower() + " " + many
        value = int(whole) if whole and len(whole) <= 15 else 0
        words = _number(whole or "0") + " " + (one if value == 1 else many)
        if frac and sub_one and len(frac) == 2 and int(frac):
            words += " and " + cardinal(int(frac)) + " " + (sub_one if int(frac) == 1 else sub_many)
        elif frac and not (len(frac) == 2 and sub_one):
            words = _number(amount) + " " + many
        return words

    scale = r"(?: (thousand|million|billion|trillion)\b)?"
    text = re.sub(r"([$£€¥]) ?(\d[\d,]*(?:\.\d+)?)" + scale, lambda m: speak(m[1], m[2], m[3]), text, flags=re.IGNORECASE)
    return re.sub(r"\b(\d[\d,]*(?:\.\d+)?) ?(USD|EUR|GBP|JPY)\b",
                  lambda m: speak(_CODES[m[2].lower()], m[1], None), text, flags=re.IGNORECASE)


def _percent(text: str) -> str:
    return re.sub(r"(-?\d[\d,]*(?:\.\d+)?) ?%", lambda m: _signed(m[1]) + " percent", text)


def _signed(s: str) -> str:
    return "minus " + _number(s[1:]) if s.startswith("-") else _number(s)


def _ordinals(text: str) -> str:
    return re.sub(r"\b(\d{1,15})(st|nd|rd|th)\b", lambda m: ordinal(int(m[1])), text, flags=re.IGNORECASE)


def _units(text: str) -> str:
    keys = sorted(_UNITS, key=len, reverse=True)
    pattern = r"(?<![\w-])(-?\d[\d,]*(?:\.\d+)?) ?(" + "|".join(re.escape(k) for k in keys) + r")(?![\w/])"

    def speak(m: re.Match[str]) -> str:
        one, many = _UNITS[m[2].lower()]
        return _signed(m[1]) + " " + (one if m[1] == "1" else many)

    return re.sub(pattern, speak, text, flags=re.IGNORECASE)


def _abbreviations(text: str) -> str:
    for abbr, full in _ABBREVIATIONS.items():
        text = re.sub(r"(?<!\w)" + re.escape(abbr) + r"(?=\s|$|[,;:!?])", full, text, flags=re.IGNORECASE)
    # Titles before a capitalized name: "Dr. Smith" -> "Doctor Smith"; "Main St." -> "Main Street".
    text = re.sub(r"\b([A-Z][a-z]+) St\.(?=\s|$|[,;:])", r"\1 Street", text)
    text = re.sub(r"\b(Mr|Mrs|Ms|Dr|Prof)\.(?=\s)", lambda m: _TITLES[m[1].lower()], text)
    text = re.sub(r"\b(St|Sr|Jr|Gen|Capt|Lt|Sgt|Rev|Hon|Gov|Sen|Rep)\.(?= ?[A-Z]|,|$)",
                  lambda m: _TITLES[m[1].lower()], text)
    return re.sub(r"#(\d)", r"number \1", text)


def _symbols(text: str) -> str:
    return "".join(_SYMBOLS.get(c, c) for c in text)


def _ranges(text: str) -> str:
    text = re.sub(r"\b(\d{3})-(\d{3})-(\d{4})\b", lambda m: ", ".join(digits(g) for g in m.groups()), text)
    text = re.sub(r"\b(\d{3})-(\d{4})\b", lambda m: digits(m[1]) + ", " + digits(m[2]), text)
    text = re.sub(r"\b(\d{1,6}) ?- ?(\d{1,6})\b", lambda m: _num_or_year(m[1]) + " to " + _num_or_year(m[2]), text)
    return re.sub(r"(?<![\w/])(\d{1,2})/(\d{1,2})(?![\w/])", _fraction, text)


def _num_or_year(s: str) -> str:
    return year_words(int(s)) if len(s) == 4 and 1100 <= int(s) <= 2099 else _number(s)


def _fraction(m: re.Match[str]) -> str:
    num, den = int(m[1]), int(m[2])
    if den < 2:
        return cardinal(num) + " over " + cardinal(den)
    name = {2: ("half", "halves"), 4: ("quarter", "quarters")}.get(den)
    one, many = name or (ordinal(den), ordinal(den) + "s")
    return cardinal(num) + " " + (one if num == 1 else many)


def _numbers(text: str) -> str:
    def speak(m: re.Match[str]) -> str:
        raw = m[2]
        plain = raw.replace(",", "")
        if m[1] and not plain.startswith("0"):
            pass
        if "," not in raw and "." not in raw and len(raw) == 4 and 1100 <= int(raw) <= 2099 and not m[1]:
            return year_words(int(raw))
        if raw.startswith("0") and len(plain) > 1 and "." not in raw:
            return digits(raw)  # codes and zero-padded numbers: read digit by digit
        return ("minus " if m[1] else "") + _number(raw)

    text = re.sub(r"(?<![\w.])(-)?(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?!\w)", speak, text)
    return re.sub(r"\d+", lambda m: digits(m[0]), text)  # digits glued to letters (A4, 3D, mp3)


# ----------------------------------------------------------------------------------------------- splitting


def split_sentences(text: str) -> list[str]:
    """Sentences of normalized text, in order, each with its end punctuation; no empty items."""
    parts = re.split(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])", text.strip())
    return [p.strip() for p in parts if p.strip() and any(c.isalnum() for c in p)]


def split_clauses(sentence: str, max_chars: int, min_head: int = 20) -> list[str]:
    """Split a sentence at the first clause boundary (, ; :) at or after ``min_head`` characters if it is longer
    than ``max_chars``; the rest stays whole. Used to make the first streamed chunk short."""
    if len(sentence) <= max_chars:
        return [sentence]
    m = re.search(r"[,;:]\s", sentence[min_head:])
    if m is None:
        return [sentence]
    cut = min_head + m.end()
    head, tail = sentence[:cut].strip(), sentence[cut:].strip()
    return [head, tail] if tail else [head]
