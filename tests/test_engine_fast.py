"""The `fast` engine: pinned Piper weights, a voice state that round-trips, streamed chunks, and a fit that helps."""

from __future__ import annotations

import base64
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from synthesis.engines import Engine, EngineError
from synthesis.engines.assets import WeightsMismatch
from synthesis.engines.conversion import (
    GRID_HZ,
    KNN_REACH_SHARE,
    VoiceConversion,
    _knn_detail,
    analyze,
    resample,
    sounding_span,
)
from synthesis.engines.search import FitConfig
from synthesis.engines.piper import (
    SAMPLE_RATE,
    FastEngine,
    FastEngineConfig,
    PiperAssets,
    load_piper,
)
from voicegate.audio.embedding import cosine, embed

FIXTURES = Path(__file__).parent / "fixtures" / "librispeech"
TEXT = "The first sentence is short. Then a second one follows, a little longer. And a third."


def _clip(name: str) -> np.ndarray:
    wav, rate = sf.read(FIXTURES / name, dtype="float32")
    assert rate == 16_000
    return wav


@pytest.fixture(scope="module")
def engine() -> FastEngine:
    # A smaller search than production (7 embedding evaluations) keeps the test fast; the bench uses the default.
    return FastEngine(FastEngineConfig(fit=FitConfig(seed=0, generations=1, popsize=6)))


@pytest.fixture(scope="module")
def fitted(engine: FastEngine) -> bytes:
    return engine.fit_voice([_clip("1688-142285-0006.flac")])


def test_engine_satisfies_the_protocol(engine: FastEngine) -> None:
    assert isinstance(engine, Engine)
    assert engine.name == "fast" and engine.sample_rate == 22_050


def test_weights_load_from_the_installed_package_with_hash_check() -> None:
    voice = load_piper(PiperAssets(), device="cpu")
    assert voice.config.sample_rate == SAMPLE_RATE


def test_tampered_model_is_refused(tmp_path: Path) -> None:
    model, config = PiperAssets().resolved()
    bad = tmp_path / "model.onnx"
    bad.write_bytes(model.read_bytes()[:4096] + b"tampered")
    with pytest.raises(WeightsMismatch, match="sha256"):
        load_piper(PiperAssets(model_path=bad, config_path=config), device="cpu")


def test_tampered_config_is_refused(tmp_path: Path) -> None:
    model, config = PiperAssets().resolved()
    bad = tmp_path / "voice.json"
    shutil.copy(config, bad)
    bad.write_text(bad.read_text().replace('"sample_rate": 22050', '"sample_rate": 16000'))
    with pytest.raises(WeightsMismatch):
        load_piper(PiperAssets(model_path=model, config_path=bad), device="cpu")


def test_missing_weights_are_refused(tmp_path: Path) -> None:
    _, config = PiperAssets().resolved()
    with pytest.raises(WeightsMismatch, match="cannot be read"):
        load_piper(PiperAssets(model_path=tmp_path / "gone.onnx", config_path=config), device="cpu")


def test_fitted_voice_state_round_trips(fitted: bytes) -> None:
    assert isinstance(fitted, bytes)
    state = VoiceConversion.from_bytes(fitted)
    assert VoiceConversion.from_bytes(state.to_bytes()) == state


def test_fitting_is_deterministic_given_the_seed(engine: FastEngine, fitted: bytes) -> None:
    assert engine.fit_voice([_clip("1688-142285-0006.flac")]) == fitted


def test_corrupt_voice_state_is_refused(engine: FastEngine) -> None:
    wild = VoiceConversion(5.0, 0.2, 5.0, 0.2, warp=40.0).to_bytes()
    bad_bank = VoiceConversion(5.0, 0.2, 5.0, 0.2, bank="!!notbase64").to_bytes()
    bad_reach = [VoiceConversion(5.0, 0.2, 5.0, 0.2, knn_reach=reach).to_bytes() for reach in (-1.0, 0.0, 1e999)]
    for blob in (b"not json", b'{"version": 99}', b"\xff\xfe", b"[]", wild, bad_bank, *bad_reach,
                 VoiceConversion(5.0, 0.2, 5.0, 0.2).to_bytes().replace(b'"knn_reach":null', b'"knn_reach":"far"')):
        with pytest.raises(EngineError) as exc:
            next(engine.stream("Hello.", blob))
        assert exc.value.code == "bad_voice_state"


def test_frames_without_a_near_match_in_the_speakers_bank_keep_their_own_detail(engine: FastEngine,
                                                                                fitted: bytes) -> None:
    conversion = VoiceConversion.from_bytes(fitted)
    assert conversion.knn_mix > 0 and conversion.knn_reach is not None
    audio = engine.base_audio("We walked along the river until evening.", deterministic=True)
    nowhere, everywhere = (replace(conversion, knn_reach=reach) for reach in (1e-9, 1e9))
    np.testing.assert_array_equal(nowhere.apply(audio, SAMPLE_RATE),
                                  replace(conversion, knn_mix=0.0).apply(audio, SAMPLE_RATE))
    np.testing.assert_array_equal(everywhere.apply(audio, SAMPLE_RATE),
                                  replace(conversion, knn_reach=None).apply(audio, SAMPLE_RATE))
    assert not np.array_equal(conversion.apply(audio, SAMPLE_RATE), everywhere.apply(audio, SAMPLE_RATE))


def test_silence_around_the_speech_passes_through_unconverted(engine: FastEngine, fitted: bytes) -> None:
    conversion = VoiceConversion.from_bytes(fitted)
    speech = engine.base_audio("We walked along the river.", deterministic=True)
    pad = np.full(SAMPLE_RATE // 2, 1e-4, np.float32)  # -80 dBFS: a synthesizer's near-silence
    audio = np.concatenate([pad, speech, pad])
    start, end = sounding_span(audio, SAMPLE_RATE)
    assert pad.size - SAMPLE_RATE // 10 < start < pad.size < end < pad.size + speech.size + SAMPLE_RATE // 10
    converted = conversion.apply(audio, SAMPLE_RATE)
    assert converted.shape == audio.shape
    np.testing.assert_array_equal(converted[:start], audio[:start])
    np.testing.assert_array_equal(converted[end:], audio[end:])
    assert not np.allclose(converted[start:end], audio[start:end], atol=1e-3)
    np.testing.assert_array_equal(conversion.apply(pad, SAMPLE_RATE), pad)


def test_the_reach_leaves_the_least_matched_share_of_the_base_voice_without_detail() -> None:
    rng = np.random.default_rng(0)
    bank = rng.normal(0.0, 1.0, (50, len(GRID_HZ))).astype(np.float16)
    conversion = VoiceConversion(5.0, 0.2, 5.0, 0.2, knn_mix=1.0,
                                 bank=base64.b64encode(bank.tobytes()).decode("ascii"))
    t = np.arange(16_000 * 2) / 16_000
    voice = analyze((0.3 * np.sign(np.sin(2 * np.pi * 130 * t)) * np.sin(2 * np.pi * 1.5 * t)).astype(np.float32),
                    16_000)
    reach = conversion.reach_on([voice])
    logsp, hz = conversion._shaped(voice)
    distances = _knn_detail(logsp[voice.f0 > 0], hz, *conversion._bank())[1]  # type: ignore[misc]
    assert reach is not None and np.mean(distances <= reach) == pytest.approx(KNN_REACH_SHARE, abs=0.01)
    assert replace(conversion, bank="").reach_on([voice]) is None


def test_unusable_enrollment_is_refused(engine: FastEngine) -> None:
    for samples in ([], [np.zeros(0, np.float32)], [np.full(16_000, np.nan, np.float32)],
                    [np.zeros(8_000, np.float32)]):
        with pytest.raises(EngineError):
            engine.fit_voice(samples)


def test_rejected_text_is_an_engine_error(engine: FastEngine) -> None:
    with pytest.raises(EngineError) as exc:
        engine.stream("Привет мир", b"")
    assert exc.value.code == "unsupported_script"


def test_stream_yields_finite_audible_float32_chunks(engine: FastEngine, fitted: bytes) -> None:
    chunks = list(engine.stream(TEXT, fitted))
    assert len(chunks) >= 3
    for chunk in chunks:
        assert chunk.dtype == np.float32 and chunk.ndim == 1
        assert np.all(np.isfinite(chunk)) and np.max(np.abs(chunk)) <= 1.0
        assert np.sqrt(np.mean(chunk ** 2)) > 0.01  # not silence
    total_s = sum(c.size for c in chunks) / engine.sample_rate
    assert 3.0 < total_s < 15.0


def test_first_chunk_comes_before_the_rest_is_synthesized(engine: FastEngine, fitted: bytes,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    original = engine.base_audio

    def spy(sentence: str) -> np.ndarray:
        calls.append(sentence)
        return original(sentence)

    monkeypatch.setattr(engine, "base_audio", spy)
    chunks = engine.stream(TEXT, fitted)
    first = next(chunks)
    assert first.size > 0 and calls == ["The first sentence is short."]
    assert len(list(chunks)) >= 2 and len(calls) >= 3


def test_fitted_voice_is_closer_to_the_speaker_than_the_base_voice(engine: FastEngine, fitted: bytes) -> None:
    held_out = embed(_clip("1688-142285-0007.flac"))  # not seen by the fit
    text = "Please remember to water the plants while we are away. Nobody expected the storm so early."

    def secs(state: bytes) -> float:
        audio = np.concatenate(list(engine.stream(text, state)))
        return cosine(embed(resample(audio, SAMPLE_RATE, 16_000)), held_out)

    base, clone = secs(b""), secs(fitted)
    assert clone > base + 0.05, (base, clone)
