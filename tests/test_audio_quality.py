"""Quality gate: clean read speech passes; noise, clipping, a second voice, too little speech each fail their check."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voicegate.audio.decode import DecodedAudio, decode_audio
from voicegate.audio.quality import (
    QualityThresholds,
    assess,
    min_pairwise_cosine,
    speaker_similarity,
    two_way_split,
)

FIXTURES = Path(__file__).parent / "fixtures" / "librispeech"
RATE = 16_000


def _speech(name: str) -> np.ndarray:
    x, rate = sf.read(FIXTURES / name, dtype="float32")
    assert rate == RATE
    return x


def _through_intake(x: np.ndarray) -> DecodedAudio:
    buf = io.BytesIO()
    sf.write(buf, x, RATE, format="WAV", subtype="PCM_16")
    return decode_audio(buf.getvalue(), "sample.wav")


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    return _speech("1688-142285-0006.flac")


def test_clean_read_speech_passes_every_check(clean: np.ndarray) -> None:
    report = assess(_through_intake(clean))
    assert report.passed, report.failed
    assert [c.name for c in report.checks] == ["speech_duration", "snr", "clipping", "single_speaker"]


def test_white_noise_at_5_db_fails_the_snr_check(clean: np.ndarray) -> None:
    noise = np.random.default_rng(0).standard_normal(len(clean)).astype(np.float32)
    noisy = clean + noise * _rms(clean) / _rms(noise) * 10 ** (-5 / 20)
    report = assess(_through_intake(noisy / np.max(np.abs(noisy)) * 0.9))
    assert [c.name for c in report.failed] == ["snr"]


def test_hard_clipping_fails_the_clipping_check(clean: np.ndarray) -> None:
    clipped = np.clip(clean / np.max(np.abs(clean)) * 5, -1, 1)
    assert "clipping" in [c.name for c in assess(_through_intake(clipped)).failed]


def test_a_second_speaker_taking_over_half_the_clip_fails_the_single_speaker_check(clean: np.ndarray) -> None:
    other = np.resize(_speech("1998-15444-0006.flac"), len(clean))
    turns = clean.copy()
    half = len(clean) // 2
    turns[half:] = other[: len(clean) - half] * _rms(clean) / _rms(other)
    report = assess(_through_intake(turns / np.max(np.abs(turns)) * 0.9))
    assert [c.name for c in report.failed] == ["single_speaker"]


def test_too_little_speech_fails_the_duration_check(clean: np.ndarray) -> None:
    report = assess(_through_intake(clean[: int(2.5 * RATE)]))
    assert [c.name for c in report.failed] == ["speech_duration"]


def test_a_recording_of_only_background_noise_is_refused_by_the_snr_check() -> None:
    # Peak normalization makes faint noise loud, and webrtcvad may then call it speech: SNR is what catches it.
    hiss = np.random.default_rng(0).normal(0, 1e-4, 5 * RATE).astype(np.float32)
    report = assess(_through_intake(hiss))
    assert not report.passed and "snr" in {c.name for c in report.failed}


def test_a_failed_check_reports_value_threshold_and_shortfall(clean: np.ndarray) -> None:
    th = QualityThresholds(min_speech_s=100.0)
    check = assess(_through_intake(clean), th).check("speech_duration")
    assert not check.passed and check.threshold == 100.0 and check.rule == ">=" and check.unit == "s"
    assert check.shortfall == pytest.approx(100.0 - check.value)


def test_speaker_check_is_unmeasured_and_passes_under_two_windows() -> None:
    audio = DecodedAudio(np.zeros(RATE, np.float32), RATE, 1.0, "wav", 1, RATE)
    report = assess(audio, window_embedder=lambda x, w, h: np.zeros((1, 256), np.float32))
    check = report.check("single_speaker")
    assert check.value is None and check.passed


def test_assess_refuses_audio_not_at_16_khz() -> None:
    with pytest.raises(ValueError):
        assess(DecodedAudio(np.zeros(8000, np.float32), 8000, 1.0, "wav", 1, 8000))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_two_way_split_separates_two_clusters_and_keeps_both_non_empty() -> None:
    rng = np.random.default_rng(0)
    a, b = _unit(rng.standard_normal(256)), _unit(rng.standard_normal(256))
    emb = _unit(np.stack([a + 0.05 * rng.standard_normal(256) for _ in range(4)]
                         + [b + 0.05 * rng.standard_normal(256) for _ in range(3)]))
    left, right = two_way_split(emb)
    assert sorted([left.sum(), right.sum()]) == [3, 4]
    assert len(set(left[:4])) == 1 and len(set(left[4:])) == 1
    assert min_pairwise_cosine(emb) < 0.2


def test_speaker_similarity_is_high_for_one_cluster_low_for_two() -> None:
    rng = np.random.default_rng(1)
    a, b = _unit(rng.standard_normal(256)), _unit(rng.standard_normal(256))
    one = _unit(np.stack([a + 0.02 * rng.standard_normal(256) for _ in range(6)]))
    two = _unit(np.concatenate([one[:3], np.stack([b + 0.02 * rng.standard_normal(256) for _ in range(3)])]))
    assert speaker_similarity(np.zeros(1), window_embedder=lambda x, w, h: one) > 0.9
    assert speaker_similarity(np.zeros(1), window_embedder=lambda x, w, h: two) < 0.3
