"""A fitted voice must stay intelligible: the guard backs the conversion's kNN mix off until the offline recognizer
reads the guard sentences through it about as well as through the base voice."""

from __future__ import annotations

import base64
import json
import math

import numpy as np
import pytest
from django.conf import settings

from synthesis import engines
from synthesis.engines.conversion import GRID_HZ, VoiceConversion
from synthesis.engines.intelligibility import GUARD_SENTENCES, MARGIN, Guard, guard
from synthesis.engines.piper import SAMPLE_RATE, FastEngine, FastEngineConfig, recognizer_in
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
    return guard(texts, [base_engine.base_audio(t, deterministic=True) for t in texts], SAMPLE_RATE, transcribe)


def _conversion(knn_mix: float, bank: np.ndarray | None = None) -> VoiceConversion:
    """F0, formants and envelope left as they are; only the kNN detail (from ``bank``) changes the voice."""
    encoded = base64.b64encode(bank.astype(np.float16).tobytes()).decode() if bank is not None else ""
    return VoiceConversion(LOG_120_HZ, 0.2, LOG_120_HZ, 0.2, knn_mix=knn_mix, bank=encoded)


def test_the_base_voice_reads_the_guard_sentences_right(short_guard: Guard) -> None:
    assert short_guard.base_wer <= 0.05


def test_an_unintelligible_conversion_is_backed_off_until_it_reads_right(short_guard: Guard) -> None:
    garbage = np.random.default_rng(0).normal(0.0, 4.0, size=(300, len(GRID_HZ)))  # +-17 dB of random detail
    harmful = _conversion(1.0, garbage)
    assert short_guard.wer(harmful) > short_guard.base_wer + MARGIN  # what the guard is there to catch

    checked = short_guard.checked(harmful)
    assert checked.knn_mix < 1.0
    assert checked.knn_mix == 0.0 or checked.guard_wer <= short_guard.base_wer + MARGIN
    assert checked.bank == harmful.bank  # only the mix moves


def test_an_intelligible_conversion_keeps_its_mix(short_guard: Guard) -> None:
    plain = _conversion(0.0)
    checked = short_guard.checked(plain)
    assert checked.knn_mix == 0.0 and checked.guard_wer <= short_guard.base_wer + MARGIN


def test_the_service_builds_the_fast_engine_with_its_fits_checked_by_ear() -> None:
    assert engines.build("fast", settings.VOICEGATE_MODEL_DIR).transcriber is not None
    assert engines.build("fast").transcriber is None


def test_a_checked_fit_records_how_well_it_reads(transcribe) -> None:  # type: ignore[no-untyped-def]
    engine = FastEngine(FastEngineConfig(fit=FitConfig(seed=0, generations=1, popsize=6)), transcriber=transcribe)
    state = json.loads(engine.fit_voice([_clip("1688-142285-0006.flac")]))
    assert math.isfinite(state["guard_wer"])
    assert state["knn_mix"] == 0.0 or state["guard_wer"] <= engine._intelligibility_guard(transcribe).base_wer + MARGIN
