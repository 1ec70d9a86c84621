"""Quality gate for enrollment samples: each check is a number against a threshold.

Framework-free. Input is a :class:`~voicegate.audio.decode.DecodedAudio` at 16 kHz. The thresholds' defaults were
chosen on LibriSpeech train-clean-100 and its degraded copies (``bench/quality_gate.py``, ``docs/quality-gate.md``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from voicegate.audio.decode import DecodedAudio

logger = logging.getLogger(__name__)

VAD_RATE = 16_000
VAD_FRAME_S = 0.03  # webrtcvad accepts 10, 20 or 30 ms frames


@dataclass(frozen=True)
class QualityThresholds:
    """Pass/fail thresholds; see docs/quality-gate.md for the measurements behind each default."""

    min_speech_s: float = 3.0
    min_snr_db: float = 15.0
    max_clipping_ratio: float = 0.0005
    min_speaker_similarity: float = 0.80
    vad_aggressiveness: int = 2  # webrtcvad mode 0..3
    window_s: float = 1.6  # speaker windows: resemblyzer's partial length
    hop_s: float = 0.8


@dataclass(frozen=True)
class CheckResult:
    """One check. ``shortfall`` is how far past the threshold the value is (0.0 when it passed).

    ``value`` is None when the check could not be measured (e.g. too little speech for two speaker windows); such a
    check passes, since the duration check already speaks for that clip.
    """

    name: str
    value: float | None
    threshold: float
    rule: Literal[">=", "<="]
    unit: str
    passed: bool
    shortfall: float


@dataclass(frozen=True)
class QualityReport:
    checks: tuple[CheckResult, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def check(self, name: str) -> CheckResult:
        return next(c for c in self.checks if c.name == name)


WindowEmbedder = Callable[[np.ndarray, float, float], np.ndarray]


def assess(audio: DecodedAudio, thresholds: QualityThresholds = QualityThresholds(),
           window_embedder: WindowEmbedder | None = None) -> QualityReport:
    """Run every check on 16 kHz mono audio. ``window_embedder`` (samples, window_s, hop_s) -> (k, 256) defaults
    to :func:`voicegate.audio.embedding.embed_windows`."""
    if audio.sample_rate != VAD_RATE:
        raise ValueError(f"quality checks need {VAD_RATE} Hz audio, got {audio.sample_rate}")
    t = thresholds
    speech = vad_mask(audio.samples, t.vad_aggressiveness)
    similarity = speaker_similarity(audio.samples, t.window_s, t.hop_s, window_embedder)
    return QualityReport(checks=(
        _at_least("speech_duration", speech_seconds(speech), t.min_speech_s, "s"),
        _at_least("snr", estimate_snr_db(audio.samples, speech), t.min_snr_db, "dB"),
        _at_most("clipping", audio.clipping_ratio, t.max_clipping_ratio, "fraction"),
        _at_least("single_speaker", similarity, t.min_speaker_similarity, "cosine"),
    ))


def _at_least(name: str, value: float | None, threshold: float, unit: str) -> CheckResult:
    passed = value is None or value >= threshold
    short = 0.0 if passed or value is None else threshold - value
    return CheckResult(name, value, threshold, ">=", unit, passed, short)


def _at_most(name: str, value: float, threshold: float, unit: str) -> CheckResult:
    passed = value <= threshold
    return CheckResult(name, value, threshold, "<=", unit, passed, 0.0 if passed else value - threshold)


def vad_mask(samples_16k: np.ndarray, aggressiveness: int = 2) -> np.ndarray:
    """webrtcvad speech flags for 30 ms frames: (n,) float -> (n // 480,) bool."""
    import webrtcvad

    vad = webrtcvad.Vad(aggressiveness)
    n = int(VAD_RATE * VAD_FRAME_S)
    pcm = (np.clip(samples_16k, -1.0, 1.0) * 32767).astype("<i2")
    frames = len(pcm) // n
    return np.array([vad.is_speech(pcm[i * n:(i + 1) * n].tobytes(), VAD_RATE) for i in range(frames)], dtype=bool)


def speech_seconds(mask: np.ndarray) -> float:
    """Seconds of speech in a :func:`vad_mask`."""
    return float(mask.sum()) * VAD_FRAME_S


def frame_power(samples: np.ndarray, frame: int = int(VAD_RATE * VAD_FRAME_S)) -> np.ndarray:
    """Mean square per non-overlapping frame: (n,) -> (n // frame,) float64."""
    k = len(samples) // frame
    return np.mean(np.square(samples[: k * frame].reshape(k, frame), dtype=np.float64), axis=1)


def estimate_snr_db(samples_16k: np.ndarray, speech: np.ndarray, noise_quantile: float = 0.1,
                    ceiling_db: float = 60.0) -> float:
    """Estimated SNR in dB: speech power from VAD speech frames, noise from the quietest ``noise_quantile`` frames.

    Read speech has few pauses, so the quietest frames are used rather than the VAD's non-speech frames (which may
    be absent); on clean speech this underestimates (quiet phones count as "noise"), which errs toward caution.
    Capped at ``ceiling_db``; -inf-free: returns ``-ceiling_db`` when nothing stands above the floor.
    """
    power = frame_power(samples_16k)
    if power.size == 0:
        return -ceiling_db
    k = max(1, int(len(power) * noise_quantile))
    noise = float(np.mean(np.sort(power)[:k]))
    flags = speech[: len(power)]
    speech_power = float(np.mean(power[flags])) if flags.sum() >= max(1, len(power) // 10) else float(
        np.mean(np.sort(power)[len(power) // 2:]))
    if speech_power - noise <= 0:
        return -ceiling_db
    if noise <= 0:
        return ceiling_db
    return float(np.clip(10 * np.log10((speech_power - noise) / noise), -ceiling_db, ceiling_db))


def speaker_similarity(samples_16k: np.ndarray, window_s: float = 1.6, hop_s: float = 0.8,
                       window_embedder: WindowEmbedder | None = None) -> float | None:
    """Cosine between the centroids of a 2-way split of the clip's speaker windows; None under two windows.

    One speaker: both halves of the split still sound alike (high cosine). Two speakers in turns or a second voice
    over part of the clip: the split separates them (low cosine).
    """
    if window_embedder is None:
        from voicegate.audio.embedding import embed_windows as window_embedder
    emb = window_embedder(samples_16k, window_s, hop_s)
    if len(emb) < 2:
        return None
    a, b = two_way_split(emb)
    ca, cb = emb[a].mean(axis=0), emb[b].mean(axis=0)
    return float(np.dot(ca, cb) / (np.linalg.norm(ca) * np.linalg.norm(cb) + 1e-12))


def min_pairwise_cosine(emb: np.ndarray) -> float:
    """Smallest cosine between any two rows of (k, d) L2-normalized embeddings (k >= 2)."""
    sims = emb @ emb.T
    return float(sims[np.triu_indices(len(emb), 1)].min())


def two_way_split(emb: np.ndarray, iterations: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """2-means on the unit sphere, seeded with the least similar pair: (k, d) -> two boolean masks, both non-empty."""
    sims = emb @ emb.T
    i, j = np.unravel_index(np.argmin(sims), sims.shape)
    centroids = emb[[i, j]]
    labels = np.zeros(len(emb), dtype=int)
    for _ in range(iterations):
        labels = np.argmax(emb @ centroids.T, axis=1)
        if labels.min() == labels.max():  # degenerate: keep the seeds apart
            labels[:] = 0
            labels[j] = 1
        new = np.stack([emb[labels == c].mean(axis=0) for c in (0, 1)])
        new /= np.linalg.norm(new, axis=1, keepdims=True) + 1e-12
        if np.allclose(new, centroids):
            break
        centroids = new
    return labels == 0, labels == 1
