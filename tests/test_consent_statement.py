"""Consent statement text: rendering, normalization, word error rate and the pass/fail check (no audio)."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicegate.audio.statement import (
    CHALLENGE_WORDS,
    DEFAULT_STATEMENT_THRESHOLD,
    ConsentStatement,
    check_challenge,
    check_consent_statement,
    check_statement,
    normalize_words,
    random_challenge_phrase,
    render_date,
    render_statement,
    spoken_date,
    word_edit_distance,
    word_error_rate,
)

STATEMENT = ConsentStatement(
    name="Jane Doe",
    organization="Acme Voice Labs",
    purposes=("audiobook narration", "customer support"),
    until=dt.date(2026, 12, 31),
)
RENDERED = (
    "I, Jane Doe, consent to Acme Voice Labs creating a synthetic version of my voice "
    "for audiobook narration and customer support, until December 31, 2026."
)
SAID = "i jane doe consent to acme voice labs creating a synthetic version of my voice for audiobook narration and customer support until"

words = st.lists(st.sampled_from(["a", "b", "c", "voice", "consent", "7"]), max_size=12)


def test_statement_renders_name_organization_purposes_and_date() -> None:
    assert render_statement(STATEMENT) == RENDERED


def test_single_purpose_and_three_purposes_read_as_a_list() -> None:
    one = ConsentStatement("A B", "Org", ("ads",), dt.date(2027, 1, 2))
    three = ConsentStatement("A B", "Org", ("ads", "games", "radio"), dt.date(2027, 1, 2))
    assert "for ads, until January 2, 2027." in render_statement(one)
    assert "for ads, games and radio, until" in render_statement(three)


@pytest.mark.parametrize("field", ["name", "organization"])
def test_empty_fields_are_refused(field: str) -> None:
    values = {"name": "Jane", "organization": "Acme", "purposes": ("ads",), "until": dt.date(2027, 1, 1)}
    values[field] = "  ,  "
    with pytest.raises(ValueError, match=field):
        render_statement(ConsentStatement(**values))  # type: ignore[arg-type]


def test_no_purpose_is_refused() -> None:
    with pytest.raises(ValueError, match="purpose"):
        render_statement(ConsentStatement("Jane", "Acme", (), dt.date(2027, 1, 1)))


@pytest.mark.parametrize(
    "text",
    [
        "December 31, 2026",
        "December 31st, 2026",
        "december thirty-first twenty twenty-six",
        "the thirty-first of December, twenty twenty-six",
        "the 31st of December 2026",
        "December the 31st, two thousand and twenty six",
        "December thirty one, two thousand twenty-six",
    ],
)
def test_date_spellings_normalize_alike(text: str) -> None:
    assert normalize_words(text) == ["december", "3", "1", "2", "0", "2", "6"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("seven three one four", ["7", "3", "1", "4"]),
        ("7, 3, 1, 4", ["7", "3", "1", "4"]),
        ("7314", ["7", "3", "1", "4"]),
        ("nineteen oh five", ["1", "9", "0", "5"]),
        ("one hundred and five", ["1", "0", "5"]),
        ("Oh, I'm fine!", ["oh", "im", "fine"]),
        ("Acme Ltd. & Partners", ["acme", "limited", "and", "partners"]),
        ("CONSENT—to “Acme”", ["consent", "to", "acme"]),
    ],
)
def test_normalization_examples(text: str, expected: list[str]) -> None:
    assert normalize_words(text) == expected


@given(st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31)))
def test_spoken_date_normalizes_like_written_date(day: dt.date) -> None:
    assert normalize_words(spoken_date(day)) == normalize_words(render_date(day))


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=60))
def test_normalization_is_idempotent(text: str) -> None:
    once = normalize_words(text)
    assert normalize_words(" ".join(once)) == once


def test_true_statement_with_asr_spelling_passes() -> None:
    heard = SAID + " the thirty-first of December, 2026"
    check = check_consent_statement(STATEMENT, heard)
    assert check.passed and check.wer == 0.0
    assert check.missing_words == check.extra_words == check.missing_required == ()


def test_one_misheard_name_word_still_passes() -> None:
    check = check_consent_statement(STATEMENT, SAID.replace("doe", "do") + " December 31st, 2026.")
    assert check.passed
    assert check.missing_words == ("doe",) and check.extra_words == ("do",)


@pytest.mark.parametrize(
    "heard",
    [
        SAID.replace("acme voice labs", "northwind media") + " December 31, 2026",
        SAID.replace("customer support", "political advertising") + " December 31, 2026",
        SAID + " December 31, 2027",
        SAID + " June 30, 2026",
        "The quick brown fox jumps over the lazy dog.",
        "",
    ],
)
def test_wrong_statement_fails(heard: str) -> None:
    assert not check_consent_statement(STATEMENT, heard).passed


def test_wrong_year_fails_by_the_date_rule_even_under_the_wer_threshold() -> None:
    check = check_consent_statement(STATEMENT, SAID + " December 31, 2027")
    assert check.wer <= DEFAULT_STATEMENT_THRESHOLD
    assert not check.passed and check.missing_required == ("December 31, 2026",)


def test_required_phrase_must_be_part_of_the_expected_text() -> None:
    with pytest.raises(ValueError, match="not part of"):
        check_statement("hello world", "hello world", required=("goodbye",))


def test_wer_counts_substitutions_insertions_and_deletions() -> None:
    assert word_error_rate("a b c d", "a x c d") == 0.25
    assert word_error_rate("a b c d", "a b c d e f") == 0.5
    assert word_error_rate("a b c d", "a d") == 0.5
    with pytest.raises(ValueError):
        word_error_rate("...", "anything")


@given(words)
def test_wer_of_identical_text_is_zero(ref: list[str]) -> None:
    assert word_edit_distance(ref, ref) == 0


@given(words, words)
def test_edit_distance_is_symmetric_and_bounded(a: list[str], b: list[str]) -> None:
    d = word_edit_distance(a, b)
    assert d == word_edit_distance(b, a)
    assert abs(len(a) - len(b)) <= d <= max(len(a), len(b))


@given(words, words, words)
def test_edit_distance_triangle_inequality(a: list[str], b: list[str], c: list[str]) -> None:
    assert word_edit_distance(a, c) <= word_edit_distance(a, b) + word_edit_distance(b, c)


@given(words.filter(bool))
def test_empty_transcript_has_wer_one(ref: list[str]) -> None:
    check = check_statement(" ".join(ref), "")
    assert check.wer == 1.0 and not check.passed
    assert check.missing_words == tuple(ref)


def test_challenge_phrase_is_five_distinct_known_words_and_four_digits() -> None:
    phrase = random_challenge_phrase(random.Random(3))
    assert len(set(phrase.words)) == 5 and set(phrase.words) <= set(CHALLENGE_WORDS)
    assert len(phrase.digits) == 4 and phrase.digits.isdigit()
    assert normalize_words(phrase.text) == [*phrase.words, *phrase.digits]
    assert random_challenge_phrase(random.Random(3)) == phrase


def test_challenge_words_are_not_numbers_and_normalize_to_themselves() -> None:
    for word in CHALLENGE_WORDS:
        assert normalize_words(word) == [word]


def test_challenge_check_accepts_digits_either_way_and_refuses_another_phrase() -> None:
    rng = random.Random(5)
    phrase, other = random_challenge_phrase(rng), random_challenge_phrase(rng)
    said = " ".join(phrase.words)
    assert check_challenge(phrase, f"{said.capitalize()}, {phrase.digits}.").passed
    assert check_challenge(phrase, phrase.text).passed
    assert not check_challenge(phrase, other.text).passed
