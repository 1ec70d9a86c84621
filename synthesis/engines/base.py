"""The engine interface: a small Protocol every synthesis engine implements, plus its error type.

Framework-free: no Django here. Settings (paths, devices, seeds) come in as constructor arguments.

An engine turns enrollment audio into an opaque *voice state* (``fit_voice``) and speaks text in that voice
(``stream``). The voice state is biometric-derived data: the caller stores it encrypted, like an embedding.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

ENROLLMENT_SAMPLE_RATE = 16_000


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
