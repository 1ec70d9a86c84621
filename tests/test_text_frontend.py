"""Text front end: what Piper is asked to say is words, not digits or symbols; bad text is refused with a reason."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthesis.text import (
    TextRejected,
    cardinal,
    normalize_text,
    ordinal,
    split_clauses,
    split_sentences,
    validate_text,
    year_words,
)

# (input, normalized). Also the regression set bench/clone_quality.py speaks and scores by WER.
REGRESSION_SET: list[tuple[str, str]] = [
    ("I paid $12.50 for 3 items.", "I paid twelve dollars and fifty cents for three items."),
    ("The house sold for $1,250,000 last year.",
     "The house sold for one million two hundred fifty thousand dollars last year."),
    ("It costs €3.5 million.", "It costs three point five million euros."),
    ("A ticket is £1 and 20 USD at the door.", "A ticket is one pound and twenty dollars at the door."),
    ("The meeting is on 2024-03-15.", "The meeting is on March fifteenth, twenty twenty-four."),
    ("She was born on 12/25/1990.", "She was born on December twenty-fifth, nineteen ninety."),
    ("We met on March 5th, 2021.", "We met on March fifth, twenty twenty-one."),
    ("On 4 July 1776 they signed it.", "On the fourth of July, seventeen seventy-six they signed it."),
    ("The war ended in 1945.", "The war ended in nineteen forty-five."),
    ("Meet me at 3:30 pm.", "Meet me at three thirty P M."),
    ("The train leaves at 10:05 and arrives at 7:00.", "The train leaves at ten oh five and arrives at seven o'clock."),
    ("Breakfast is at 7 a.m. Then we leave.", "Breakfast is at seven A M. Then we leave."),
    ("She finished 1st and he was 22nd.", "She finished first and he was twenty-second."),
    ("The 3rd and 11th floors are closed.", "The third and eleventh floors are closed."),
    ("Dr. Smith lives on Baker St. in London.", "Doctor Smith lives on Baker Street in London."),
    ("Mr. and Mrs. Jones arrived.", "Mister and Missus Jones arrived."),
    ("Bring fruit, e.g. apples, bread, etc.", "Bring fruit, for example apples, bread, et cetera"),
    ("Write to john.doe@example.com today.", "Write to john dot doe at example dot com today."),
    ("Visit https://www.example.org/docs for more.", "Visit W W W dot example dot org slash docs for more."),
    ("Growth was 45% in the 21st century.", "Growth was forty-five percent in the twenty-first century."),
    ("It was -5°C outside.", "It was minus five degrees Celsius outside."),
    ("We drove 120 km in 2 hrs.", "We drove one hundred twenty kilometers in two hours."),
    ("Pi is about 3.14159.", "Pi is about three point one four one five nine."),
    ("Call 555-123-4567 now.", "Call five five five, one two three, four five six seven now."),
    ("Half is 1/2 and 3/4 is more.", "Half is one half and three quarters is more."),
    ("Read chapters 10-12 by Friday.", "Read chapters ten to twelve by Friday."),
    ("Apollo 11 landed; 600,000,000 people watched.",
     "Apollo eleven landed; six hundred million people watched."),
    ("Siobhan met Nguyen and Okonkwo in Reykjavik.", "Siobhan met Nguyen and Okonkwo in Reykjavik."),
    ("The café in Zürich served crème brûlée.", "The café in Zürich served crème brûlée."),
    ("Tom & Jerry, #1 fans.", "Tom and Jerry, number one fans."),
]


@pytest.mark.parametrize(("raw", "expected"), REGRESSION_SET, ids=[r for r, _ in REGRESSION_SET])
def test_normalized_text_is_spoken_words(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


@pytest.mark.parametrize("raw", [r for r, _ in REGRESSION_SET])
def test_normalized_text_has_no_digits_or_symbols(raw: str) -> None:
    out = normalize_text(raw)
    assert not any(c.isdigit() for c in out)
    assert not set(out) & set("$€£%@#&/")


def test_number_words() -> None:
    assert cardinal(0) == "zero"
    assert cardinal(1_000_001) == "one million one"
    assert cardinal(-42) == "minus forty-two"
    assert ordinal(1) == "first" and ordinal(12) == "twelfth" and ordinal(40) == "fortieth"
    assert ordinal(101) == "one hundred first"
    assert year_words(2005) == "two thousand five" and year_words(1900) == "nineteen hundred"
    assert year_words(1907) == "nineteen oh seven"


def test_huge_numbers_are_read_digit_by_digit() -> None:
    assert normalize_text("1" * 20) == " ".join(["one"] * 20)


def test_normalizing_twice_changes_nothing() -> None:
    for raw, _ in REGRESSION_SET:
        once = normalize_text(raw)
        assert normalize_text(once) == once


@pytest.mark.parametrize(("text", "script"), [
    ("Привет, как дела?", "Cyrillic"),
    ("你好世界", "CJK"),
    ("こんにちは", "Hiragana"),
    ("مرحبا بالعالم", "Arabic"),
    ("שלום עולם", "Hebrew"),
    ("Hello Καλημέρα", "Greek"),
    ("안녕하세요", "Hangul"),
])
def test_non_latin_script_is_refused_naming_the_script(text: str, script: str) -> None:
    with pytest.raises(TextRejected) as exc:
        validate_text(text, max_chars=1000)
    assert exc.value.reason_code == "unsupported_script"
    assert script in exc.value.message
    with pytest.raises(TextRejected):
        normalize_text(text)


@pytest.mark.parametrize("text", ["", "   ", "\u200b\u200b", "?!...", "\x00\x01"])
def test_empty_text_is_refused(text: str) -> None:
    with pytest.raises(TextRejected) as exc:
        validate_text(text, max_chars=1000)
    assert exc.value.reason_code == "empty"


def test_overlong_text_is_refused() -> None:
    with pytest.raises(TextRejected) as exc:
        validate_text("word " * 300, max_chars=1000)
    assert exc.value.reason_code == "too_long"


def test_latin_text_with_diacritics_and_symbols_is_accepted() -> None:
    assert validate_text("Ça va? Straße, naïve façade.", max_chars=100) == "Ça va? Straße, naïve façade."
    assert normalize_text("A 5 µm gap.") == "A five micrometers gap."


def test_control_characters_are_dropped() -> None:
    assert normalize_text("Hello\x00 world\u200b!") == "Hello world!"


def test_sentences_split_for_streaming() -> None:
    text = normalize_text("Dr. Smith arrived at 3 p.m. He was late! Was he? Yes.")
    assert split_sentences(text) == ["Doctor Smith arrived at three P M.", "He was late!", "Was he?", "Yes."]


def test_long_first_sentence_splits_at_a_clause() -> None:
    sentence = "When the rain finally stopped after three long days, everyone went outside to look at the river."
    head, tail = split_clauses(sentence, max_chars=60)
    assert head.endswith(",") and head + " " + tail == sentence
    assert split_clauses("Short one.", max_chars=60) == ["Short one."]


def test_an_engine_may_cut_the_first_clause_as_early_as_a_greeting() -> None:
    sentence = "Good morning, this is your bank calling about a recent payment."
    assert split_clauses(sentence, max_chars=30) == [sentence]  # no boundary 20 characters in
    assert split_clauses(sentence, max_chars=30, min_head=8) == ["Good morning,", "this is your bank calling about a recent payment."]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_unicode_gives_words_or_a_rejection(text: str) -> None:
    try:
        out = normalize_text(text)
    except TextRejected as exc:
        assert exc.reason_code == "unsupported_script"
        return
    assert isinstance(out, str)
    assert not any(c.isdigit() for c in out)
    split_sentences(out)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("0123456789 ,.:-/$€%@#&apmstndrh")), max_size=80))
def test_number_like_soup_never_crashes(text: str) -> None:
    out = normalize_text(text)
    assert not any(c.isdigit() for c in out)
