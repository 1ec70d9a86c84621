"""The bridge from governance to the framework-free audio core: settings in, plain results out.

Every function here takes bytes or arrays and settings, and returns numbers; persistence and auditing are the
callers' (enrollment, consent_checks, challenges).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from django.conf import settings

from voicegate.audio import asr, embedding, quality, statement
from voicegate.audio.decode import AudioRejected, DecodedAudio, DecodeLimits, decode_audio

__all__ = ["AudioRejected", "SpeakerMatch", "decode", "assess_quality", "embed", "speaker_match", "transcribe"]


@dataclass(frozen=True)
class SpeakerMatch:
    score: float
    threshold: float
    passed: bool


def decode(data: bytes, filename: str | None) -> DecodedAudio:
    limits = DecodeLimits(max_bytes=settings.VOICEGATE_AUDIO_MAX_BYTES, max_duration_s=settings.VOICEGATE_AUDIO_MAX_SECONDS)
    return decode_audio(data, filename, limits)


def assess_quality(audio: DecodedAudio) -> quality.QualityReport:
    overrides = {
        "min_speech_s": settings.VOICEGATE_QUALITY_MIN_SPEECH_S,
        "min_snr_db": settings.VOICEGATE_QUALITY_MIN_SNR_DB,
        "max_clipping_ratio": settings.VOICEGATE_QUALITY_MAX_CLIPPING,
        "min_speaker_similarity": settings.VOICEGATE_QUALITY_MIN_SPEAKER_SIMILARITY,
    }
    thresholds = quality.QualityThresholds(**{k: v for k, v in overrides.items() if v is not None})
    return quality.assess(audio, thresholds)


def _setting_or(name: str, measured_default: float) -> float:
    value = getattr(settings, name)
    return measured_default if value is None else value


def speaker_threshold() -> float:
    return _setting_or("VOICEGATE_SPEAKER_MATCH_THRESHOLD", embedding.VERIFY_THRESHOLD)


def protected_voice_threshold() -> float:
    return _setting_or("VOICEGATE_PROTECTED_VOICE_THRESHOLD", embedding.VERIFY_THRESHOLD)


def statement_threshold() -> float:
    return _setting_or("VOICEGATE_STATEMENT_MAX_WER", statement.DEFAULT_STATEMENT_THRESHOLD)


def challenge_threshold() -> float:
    return _setting_or("VOICEGATE_CHALLENGE_MAX_WER", statement.DEFAULT_CHALLENGE_THRESHOLD)


def quality_report_dict(report: quality.QualityReport) -> dict[str, object]:
    return {"passed": report.passed, "checks": [asdict(c) for c in report.checks]}


def embed(audio: DecodedAudio) -> np.ndarray:
    return embedding.embed(audio.samples)


def speaker_match(candidate: np.ndarray, enrolled: np.ndarray) -> SpeakerMatch:
    score = embedding.cosine(candidate, enrolled)
    threshold = speaker_threshold()
    return SpeakerMatch(round(score, 4), threshold, score >= threshold)


def transcribe(audio: DecodedAudio) -> asr.Transcript:
    return asr.transcribe(audio.samples, asr.AsrConfig(cache_root=settings.VOICEGATE_MODEL_DIR))


def statement_check_dict(check: statement.StatementCheck) -> dict[str, object]:
    return asdict(check)
