"""A fitted voice must stay intelligible: the guard backs the conversion's kNN mix off until the offline recognizer
reads the guard sentences through it about as well as through the same conversion without kNN detail."""

from __future__ import annotations

import base64
import json
import math

import numpy as np
import pytest
from django.conf import settings

from synthesis import engines
from synthesis.engines.conversion import GRID_HZ, VoiceConversion
from synthesis.engines.intelligibility import GUARD_SENTENCES, MARGIN, Guard, recognizer_in
from synthesis.engines.piper import SAMPLE_RATE, FastEngine, FastEngineConfig
from synthesis.engines.search import FitConfig
from tests.test_engine_fast import _clip

LOG_120_HZ = math.log(120.0)


@pytest.fixture(scope="module")
def transcribe():  # type: ignore[no-untyped-def]
    return recognizer_in(settings.VOICEGATE_MODEL_DIR)


@pytest.fixture(scope="module")
def base_engine() -> FastEngine:
    return FastEngine()


@pytest.fixture(scope="module")
def short_guard(base_engine: FastEngine, transcribe) -> Guard:  # type: ignore[no-untyped-def]
    texts = GUARD_SENTENCES[:3]
    return Guard(texts, [base_engine.base_audio(t, deterministic=True) for t in texts], SAMPLE_RATE, transcribe)


def _conversion(knn_mix: float, bank: np.ndarray | None = None) -> VoiceConversion:
    """F0, formants and envelope left as they are; only the kNN detail (from ``bank``) changes the voice."""
    encoded = base64.b64encode(bank.astype(np.float16).tobytes()).decode() if bank is not None else ""
    return VoiceConversion(LOG_120_HZ, 0.2, LOG_120_HZ, 0.2, knn_mix=knn_mix, bank=encoded)


GARBAGE = np.random.default_rng(0).normal(0.0, 4.0, size=(300, len(GRID_HZ)))  # +-17 dB of random envelope detail


def test_without_detail_the_conversion_reads_the_guard_sentences_right(short_guard: Guard) -> None:
    assert short_guard.wer(_conversion(0.0, GARBAGE)) <= 0.05


def test_an_unintelligible_conversion_is_backed_off_until_it_reads_right(short_guard: Guard) -> None:
    harmful = _conversion(1.0, GARBAGE)
    reference = short_guard.wer(_conversion(0.0, GARBAGE))
    assert short_guard.wer(harmful) > reference + MARGIN  # what the guard is there to catch

    checked = short_guard.checked(harmful)
    assert checked.knn_mix < 1.0 and checked.guard_wer <= reference + MARGIN
    assert checked.bank == harmful.bank  # only the mix moves


def test_detail_that_costs_no_words_is_kept(short_guard: Guard) -> None:
    gentle = _conversion(0.1, GARBAGE * 0.1)  # +-0.2 dB: inaudible
    checked = short_guard.checked(gentle)
    assert checked.knn_mix == 0.1 and checked.guard_wer <= 0.05


@pytest.mark.parametrize("name", ["fast", "quality"])
def test_the_service_builds_each_engine_with_its_conversions_checked_by_ear(name: str) -> None:
    assert engines.build(name, settings.VOICEGATE_MODEL_DIR).transcriber is not None
    assert engines.build(name).transcriber is None


def test_a_checked_fit_moves_only_the_mix_and_records_how_well_it_reads(short_guard: Guard) -> None:
    config = FastEngineConfig(fit=FitConfig(seed=0, generations=1, popsize=6))
    clips = [_clip("1688-142285-0006.flac")]
    unchecked = json.loads(FastEngine(config).fit_voice(clips))
    engine = FastEngine(config, transcriber=short_guard.transcribe)
    engine._guard = short_guard  # three sentences instead of the engine's eighteen renderings: the same rule, faster
    checked = json.loads(engine.fit_voice(clips))

    assert math.isfinite(checked["guard_wer"]) and math.isnan(unchecked["guard_wer"])
    assert checked["knn_mix"] in {unchecked["knn_mix"] * f for f in (1.0, 0.5, 0.25)} | {0.0}
    moved = {"knn_mix", "guard_wer"}
    assert {k: v for k, v in checked.items() if k not in moved} == {k: v for k, v in unchecked.items() if k not in moved}
