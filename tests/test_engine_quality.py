"""The `quality` engine: pinned Kokoro weights, English phonemes, a fitted style with pitch, streamed chunks."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from synthesis import engines
from synthesis.engines import Engine, EngineError
from synthesis.engines.assets import WeightsMismatch
from synthesis.engines.conversion import VoiceConversion, resample, sounding_span
from synthesis.engines.kokoro import (
    FIT_SENTENCE,
    MAX_TOKENS,
    PITCH_RANGE,
    SAMPLE_RATE,
    KokoroAssets,
    KokoroVoice,
    QualityEngine,
    QualityEngineConfig,
    load_kokoro,
    median_f0,
    to_kokoro_phonemes,
)
from synthesis.engines.search import FitConfig
from voicegate.audio.embedding import cosine, embed

FIXTURES = Path(__file__).parent / "fixtures" / "librispeech"
TEXT = "The first sentence is short. Then a second one follows, a little longer. And a third."


def _clip(name: str) -> np.ndarray:
    wav, rate = sf.read(FIXTURES / name, dtype="float32")
    assert rate == 16_000
    return wav


@pytest.fixture(scope="module")
def engine() -> QualityEngine:
    # A far smaller search than production (one gradient step instead of 20, 4 conversion trials instead of 41)
    # keeps the test to seconds.
    small = FitConfig(seed=0, generations=1, popsize=4)
    return QualityEngine(QualityEngineConfig(timbre_steps=1, pitch_steps=3, conversion_fit=small))


@pytest.fixture(scope="module")
def fitted(engine: QualityEngine) -> bytes:
    return engine.fit_voice([_clip("1688-142285-0006.flac")])


def test_engine_satisfies_the_protocol_and_is_built_in(engine: QualityEngine) -> None:
    assert isinstance(engine, Engine)
    assert engine.name == "quality" and engine.sample_rate == SAMPLE_RATE == 24_000
    assert isinstance(engines.build("quality"), QualityEngine)


def test_tampered_model_part_is_refused(tmp_path: Path) -> None:
    parts, _, _ = KokoroAssets().resolved()
    bad = tmp_path / "part.bin"
    bad.write_bytes(parts[1].read_bytes()[:-16] + b"\0" * 16)
    with pytest.raises(WeightsMismatch, match="sha256"):
        load_kokoro(KokoroAssets(model_parts=(parts[0], bad, parts[2], parts[3])), device="cpu")


def test_parts_in_the_wrong_order_are_refused() -> None:
    parts, _, _ = KokoroAssets().resolved()
    with pytest.raises(WeightsMismatch):
        load_kokoro(KokoroAssets(model_parts=(parts[1], parts[0], parts[2], parts[3])), device="cpu")


def test_tampered_style_packs_are_refused(tmp_path: Path) -> None:
    _, _, styles = KokoroAssets().resolved()
    bad = tmp_path / "voices.npz"
    bad.write_bytes(styles.read_bytes() + b"x")
    with pytest.raises(WeightsMismatch):
        load_kokoro(KokoroAssets(styles_path=bad), device="cpu")


def test_missing_vocabulary_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WeightsMismatch, match="cannot be read"):
        load_kokoro(KokoroAssets(vocab_path=tmp_path / "gone.json"), device="cpu")


def test_espeak_diphthongs_and_affricates_become_kokoro_letters() -> None:
    assert to_kokoro_phonemes("bˈaɪ nˈaʊ dʒˈʌst tʃˈɪp ɡˈoʊ pˈeɪ bˈɔɪ bˈɛɾɚ") == "bˈI nˈW ʤˈʌst ʧˈɪp ɡˈO pˈA bˈY bˈɛTəɹ"


def test_the_pronoun_i_is_stressed_so_kokoro_speaks_it() -> None:
    assert to_kokoro_phonemes("aɪ wɪl kˈɔːl juː wɛn aɪ ɚɹˈaɪv, ˈaɪ tˈaɪm") == "ˈI wɪl kˈɔl ju wɛn ˈI əɹɹˈIv, ˈI tˈIm"


def test_every_phoneme_of_ordinary_english_is_in_the_vocabulary(engine: QualityEngine) -> None:
    from synthesis.engines import espeak

    phonemes = to_kokoro_phonemes(espeak.ipa("The quick brown fox jumps over the lazy dog, thinking of "
                                             "measure, church, judge, boy, house and bottle."))
    assert set(phonemes) <= set(engine.model().vocab)


def test_a_sentence_longer_than_the_model_context_is_cut_at_word_boundaries(engine: QualityEngine) -> None:
    sentence = " ".join(["remarkable"] * 80)
    chunks = engine.token_chunks(sentence)
    space = engine.model().vocab[" "]
    assert len(chunks) >= 2 and all(0 < len(c) <= MAX_TOKENS for c in chunks)
    assert all(c[-1] != space for c in chunks[:-1]) and all(chunks[i + 1][0] == space for i in range(len(chunks) - 1))


def test_fitted_voice_state_round_trips_and_names_its_pitch(fitted: bytes) -> None:
    voice = KokoroVoice.from_bytes(fitted)
    assert len(voice.timbre) == 128 and PITCH_RANGE[0] <= voice.pitch <= PITCH_RANGE[1]
    assert KokoroVoice.from_bytes(voice.to_bytes()) == voice


def test_fitting_is_deterministic_given_the_seed(engine: QualityEngine, fitted: bytes) -> None:
    assert engine.fit_voice([_clip("1688-142285-0006.flac")]) == fitted


def test_corrupt_voice_state_is_refused(engine: QualityEngine, fitted: bytes) -> None:
    state = json.loads(fitted)
    variants = [b"not json", b'{"version": 99}', b"\xff\xfe", b"[]",
                json.dumps(state | {"timbre": state["timbre"][:10]}).encode(),
                json.dumps(state | {"timbre": [float("nan")] * 128}).encode().replace(b"NaN", b"1e999"),
                json.dumps(state | {"pitch": 40.0}).encode(), json.dumps(state | {"extra": 1}).encode(),
                json.dumps(state | {"conversion": "not a conversion"}).encode(),
                json.dumps(state | {"conversion": state["conversion"] | {"version": 99}}).encode(),
                json.dumps(state | {"conversion": state["conversion"] | {"warp": 40.0}}).encode(),
                json.dumps(state | {"conversion": state["conversion"] | {"bank": "%%%"}}).encode()]
    for blob in variants:
        with pytest.raises(EngineError) as exc:
            next(engine.stream("Hello.", blob))
        assert exc.value.code == "bad_voice_state", blob[:40]


def test_unusable_enrollment_is_refused(engine: QualityEngine) -> None:
    for samples in ([], [np.zeros(0, np.float32)], [np.full(16_000, np.nan, np.float32)],
                    [np.zeros(8_000, np.float32)], [np.zeros(64_000, np.float32)]):
        with pytest.raises(EngineError):
            engine.fit_voice(samples)


def test_rejected_text_is_an_engine_error(engine: QualityEngine) -> None:
    with pytest.raises(EngineError) as exc:
        engine.stream("Привет мир", b"")
    assert exc.value.code == "unsupported_script"


def test_stream_yields_finite_audible_chunks_first_one_first(engine: QualityEngine, fitted: bytes) -> None:
    chunks = engine.stream(TEXT, fitted)
    first = next(chunks)
    rest = list(chunks)
    assert len(rest) >= 2
    for chunk in [first, *rest]:
        assert chunk.dtype == np.float32 and chunk.ndim == 1
        assert np.all(np.isfinite(chunk)) and np.max(np.abs(chunk)) <= 1.0
        assert np.sqrt(np.mean(chunk ** 2)) > 0.01
    assert 3.0 < sum(c.size for c in [first, *rest]) / SAMPLE_RATE < 15.0


def test_every_chunk_starts_speaking_within_a_twentieth_of_a_second(engine: QualityEngine) -> None:
    """The pad token's silence before each chunk is cut: it doubled every pause and left crops with less mark."""
    chunks = list(engine.stream(TEXT, b""))
    assert len(chunks) >= 3
    for chunk in chunks:
        assert sounding_span(chunk, SAMPLE_RATE)[0] == 0
        assert np.sqrt(np.mean(chunk[: int(0.1 * SAMPLE_RATE)] ** 2)) > 10 ** (-60 / 20)


def test_fitted_voice_speaks_through_the_conversion_fitted_on_its_style(engine: QualityEngine, fitted: bytes) -> None:
    voice = KokoroVoice.from_bytes(fitted)
    conversion = voice.converter()
    assert isinstance(conversion, VoiceConversion) and conversion.bank
    style_only = replace(voice, conversion=None).to_bytes()
    spoken, unconverted = (np.concatenate(list(engine.stream("We walked along the river.", state)))
                           for state in (fitted, style_only))
    np.testing.assert_allclose(spoken, conversion.apply(unconverted, SAMPLE_RATE), atol=1e-6)
    assert not np.allclose(spoken[:unconverted.size], unconverted[:spoken.size], atol=1e-2)


def test_a_conversion_that_gains_nothing_on_its_own_objective_is_not_kept(engine: QualityEngine) -> None:
    def blind(samples_16k: np.ndarray) -> np.ndarray:  # an encoder that hears no difference between voices
        return np.ones(256, np.float32) / 16.0

    deaf = QualityEngine(replace(engine.config, timbre_steps=0), embedder=blind)  # the rule, not the timbre
    assert KokoroVoice.from_bytes(deaf.fit_voice([_clip("1688-142285-0006.flac")])).conversion is None


def test_a_voice_fitted_before_conversions_existed_speaks_its_style_alone(engine: QualityEngine, fitted: bytes) -> None:
    state = json.loads(fitted)
    del state["conversion"]
    voice = KokoroVoice.from_bytes(json.dumps(state).encode())
    assert voice.converter() is None
    spoken = np.concatenate(list(engine.stream("We walked along the river.", voice.to_bytes())))
    tokens = engine.token_chunks("We walked along the river.")[0]
    rendered = engine.speak(tokens, np.asarray(voice.timbre, np.float32), voice.pitch)
    assert spoken.size < rendered.size  # what the style renders, its leading silence cut
    np.testing.assert_array_equal(spoken, rendered[rendered.size - spoken.size:])


def test_pitch_position_moves_the_voice_down(engine: QualityEngine) -> None:
    voice = engine.base_voice()
    low, high = (np.concatenate(list(engine.stream("We walked along the river until evening.",
                                                   replace(voice, pitch=p).to_bytes()))) for p in (1.0, 0.0))
    assert median_f0(low, SAMPLE_RATE) < 0.7 * median_f0(high, SAMPLE_RATE)


def test_fit_matches_the_speakers_pitch(engine: QualityEngine, fitted: bytes) -> None:
    enrolled = _clip("1688-142285-0006.flac")
    text = "Please remember to water the plants while we are away. Nobody expected the storm so early."
    fitted_audio, base_audio = (np.concatenate(list(engine.stream(text, state))) for state in (fitted, b""))
    target, base_f0, fitted_f0 = (median_f0(enrolled, 16_000), median_f0(base_audio, SAMPLE_RATE),
                                  median_f0(fitted_audio, SAMPLE_RATE))
    assert abs(np.log2(fitted_f0 / target)) < abs(np.log2(base_f0 / target))
    assert abs(12 * np.log2(fitted_f0 / target)) < 3.0  # within three semitones, on sentences the fit never saw


def test_fit_scores_at_least_the_base_voice_on_its_own_objective(engine: QualityEngine, fitted: bytes) -> None:
    # Held-out similarity over many speakers is the benchmark's job (bench/clone_quality.py); here: the search
    # never returns a voice worse, by its own measure, than the base timbre at the pitch it fitted.
    enrolled = embed(_clip("1688-142285-0006.flac"))
    voice = KokoroVoice.from_bytes(fitted)
    base_timbre = np.asarray(engine.base_voice().timbre, np.float32)
    base = np.concatenate([engine.speak(t, base_timbre, voice.pitch) for t in engine.token_chunks(FIT_SENTENCE)])
    assert voice.score >= cosine(embed(resample(base, SAMPLE_RATE, 16_000)), enrolled) - 2e-3
