"""The engine interface: a small Protocol every synthesis engine implements, plus its error type.

Framework-free: no Django here. Settings (paths, devices, seeds) come in as constructor arguments.

An engine turns enrollment audio into an opaque *voice state* (``fit_voice``) and speaks text in that voice
(``stream``). The voice state is biometric-derived data: the caller stores it encrypted, like an embedding.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from synthesis import text as text_frontend

ENROLLMENT_SAMPLE_RATE = 16_000
MIN_ENROLLMENT_S = 3.0


class EngineError(ValueError):
    """Bad input to an engine (empty or unusable audio, a corrupt voice state, unspeakable text).

    ``code`` is a stable machine-readable reason, ``message`` says what to fix.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@runtime_checkable
class Engine(Protocol):
    """A speech synthesis engine. Implementations load their model once per process, lazily and thread-safely."""

    name: str
    sample_rate: int  # Hz of the chunks ``stream`` yields

    def fit_voice(self, samples: Sequence[np.ndarray]) -> bytes:
        """Fit a voice from enrollment clips: k x (n_i,) float32 mono at 16 kHz -> serialized voice state.

        Raises :class:`EngineError` when the clips are empty, too short or not usable speech.
        """
        ...

    def stream(self, text: str, voice_state: bytes) -> Iterator[np.ndarray]:
        """Speak ``text`` in the voice: yields (n,) float32 chunks in [-1, 1] at ``sample_rate``.

        A chunk is a sentence or clause; the first is yielded as soon as it is ready. ``voice_state`` is what
        ``fit_voice`` returned (``b""`` may mean the engine's unfitted base voice, where the engine allows it).
        Raises :class:`EngineError` for a corrupt voice state or text the engine cannot speak.
        """
        ...


def speech_pieces(text: str, max_chars: int, first_clause_chars: int, first_clause_min: int = 20) -> list[str]:
    """Text -> normalized sentences to speak one by one; a first sentence longer than ``first_clause_chars`` is
    cut at its first clause boundary after ``first_clause_min`` characters, so the first chunk comes sooner.
    Raises :class:`EngineError` for text the front end rejects."""
    if not isinstance(text, str):
        raise EngineError("bad_text", "text must be a string")
    try:
        text_frontend.validate_text(text, max_chars)
        normalized = text_frontend.normalize_text(text)
    except text_frontend.TextRejected as exc:
        raise EngineError(exc.reason_code, exc.message) from exc
    pieces = text_frontend.split_sentences(normalized)
    if pieces and len(pieces[0]) > first_clause_chars:
        pieces[:1] = text_frontend.split_clauses(pieces[0], first_clause_chars, first_clause_min)
    if not pieces:
        raise EngineError("empty_text", "nothing to say after normalization")
    return pieces


def checked_clips(samples: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Enrollment clips as a list of 1-D float32 arrays, or :class:`EngineError` saying what is wrong."""
    if isinstance(samples, np.ndarray) or not isinstance(samples, Sequence) or len(samples) == 0:
        raise EngineError("no_enrollment_audio", "fit_voice needs a non-empty list of 16 kHz clips")
    clips = []
    for clip in samples:
        arr = np.asarray(clip)
        if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.floating) or not np.all(np.isfinite(arr)):
            raise EngineError("bad_enrollment_audio", "each clip must be a non-empty 1-D finite float array")
        clips.append(arr.astype(np.float32))
    total = sum(c.size for c in clips) / ENROLLMENT_SAMPLE_RATE
    if total < MIN_ENROLLMENT_S:
        raise EngineError("enrollment_too_short", f"{total:.1f} s of audio; at least {MIN_ENROLLMENT_S:.0f} s needed")
    return clips
