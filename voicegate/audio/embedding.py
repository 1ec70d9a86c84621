"""Speaker embeddings with resemblyzer's VoiceEncoder, loaded once per process from hash-checked weights.

Framework-free. The weights ship inside the ``resemblyzer==0.1.4`` wheel (``resemblyzer/pretrained.pt``); the file is
read once, its SHA-256 compared with :data:`PRETRAINED_SHA256`, and the state dict loaded from those same bytes with
``torch.load(weights_only=True)``, so the bytes checked are the bytes used.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

EMBEDDING_DIM = 256
SAMPLE_RATE = 16_000
# sha256 of resemblyzer/pretrained.pt in the resemblyzer 0.1.4 wheel.
PRETRAINED_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"
# Same-speaker decision: cosine(profile of 3 utterances, utterance) >= this. FAR 0.52% / 0.89% on two disjoint halves
# of 251 train-clean-100 impostors, FRR 0% on 150 test-other trials (bench/speaker_verification.py,
# docs/speaker-verification.md).
VERIFY_THRESHOLD = 0.78


class WeightsMismatch(RuntimeError):
    """The speaker-encoder weights on disk are not the pinned file; refuse to run on them."""


@dataclass(frozen=True)
class EncoderConfig:
    """Where the weights are and what they must hash to; ``device`` None picks CUDA when available."""

    weights_path: Path | None = None
    sha256: str = PRETRAINED_SHA256
    device: str | None = None


def default_weights_path() -> Path:
    import resemblyzer

    return Path(resemblyzer.__file__).resolve().parent / "pretrained.pt"


def load_encoder(config: EncoderConfig = EncoderConfig()) -> torch.nn.Module:
    """Build a resemblyzer VoiceEncoder from verified weights, in eval mode on the chosen device."""
    import torch  # here, not at import: Django start-up should not pay for it

    from resemblyzer import VoiceEncoder
    from resemblyzer.hparams import mel_n_channels, model_embedding_size, model_hidden_size, model_num_layers

    path = config.weights_path or default_weights_path()
    blob = path.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != config.sha256:
        raise WeightsMismatch(f"speaker encoder weights {path} have sha256 {digest}, expected {config.sha256}; "
                              "refusing to load (reinstall the pinned resemblyzer wheel)")
    state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)["model_state"]
    # The checkpoint also holds the GE2E loss's similarity scale and bias, used only in training.
    state = {k: v for k, v in state.items() if not k.startswith("similarity_")}
    device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    # VoiceEncoder.__init__ would load the file again, unchecked; build the same modules here instead.
    encoder = VoiceEncoder.__new__(VoiceEncoder)
    torch.nn.Module.__init__(encoder)
    encoder.lstm = torch.nn.LSTM(mel_n_channels, model_hidden_size, model_num_layers, batch_first=True)
    encoder.linear = torch.nn.Linear(model_hidden_size, model_embedding_size)
    encoder.relu = torch.nn.ReLU()
    encoder.device = device
    encoder.load_state_dict(state, strict=True)
    logger.info("speaker encoder loaded on %s", device)
    return encoder.to(device).eval()


_lock = threading.Lock()
_encoder: torch.nn.Module | None = None


def get_encoder(config: EncoderConfig = EncoderConfig()) -> torch.nn.Module:
    """The process-wide encoder (double-checked lazy singleton); the first config wins."""
    global _encoder
    if _encoder is None:
        with _lock:
            if _encoder is None:
                _encoder = load_encoder(config)
    return _encoder


def preprocess(samples_16k: np.ndarray) -> np.ndarray:
    """resemblyzer's preprocessing: volume up to -30 dBFS, long silences trimmed. (n,) -> (m <= n,) float32."""
    wav = np.asarray(samples_16k, dtype=np.float32)
    wav = wav * _volume_gain(wav)
    return wav[_speech_mask(wav)].astype(np.float32)


def _volume_gain(wav: np.ndarray) -> float:
    """resemblyzer's ``normalize_volume(increase_only=True)`` as a factor: up to -30 dBFS, never down."""
    from resemblyzer.hparams import audio_norm_target_dBFS

    power = float(np.mean(np.square(wav, dtype=np.float64)))
    change_db = audio_norm_target_dBFS - 10 * np.log10(power) if power > 0 else 0.0
    return float(10 ** (change_db / 20)) if change_db > 0 else 1.0


def _speech_mask(wav: np.ndarray) -> np.ndarray:
    """resemblyzer's ``trim_long_silences`` as a mask, so the same samples can be picked from a torch tensor too:
    webrtcvad (mode 3) on 30 ms windows, smoothed over 8 windows, speech dilated by 6; the tail under a window is
    dropped. (n,) float -> (n,) bool."""
    import webrtcvad
    from resemblyzer.hparams import vad_max_silence_length, vad_moving_average_width, vad_window_length
    from scipy.ndimage import binary_dilation

    window = vad_window_length * SAMPLE_RATE // 1000
    whole = len(wav) - len(wav) % window
    pcm = np.round(wav[:whole] * (2 ** 15 - 1)).astype("<i2").tobytes()
    vad = webrtcvad.Vad(3)
    flags = np.array([vad.is_speech(pcm[2 * start:2 * (start + window)], SAMPLE_RATE)
                      for start in range(0, whole, window)], dtype=float)
    width = vad_moving_average_width
    padded = np.concatenate((np.zeros((width - 1) // 2), flags, np.zeros(width // 2)))
    smoothed = np.convolve(padded, np.ones(width), mode="valid") / width
    speech = binary_dilation(np.round(smoothed).astype(bool), np.ones(vad_max_silence_length + 1))
    return np.concatenate([np.repeat(speech, window), np.zeros(len(wav) - whole, bool)])


def embed(samples_16k: np.ndarray) -> np.ndarray:
    """Utterance embedding: 16 kHz mono float32 (n,) -> (256,) float32, L2-normalized."""
    import torch  # here, not at import: Django start-up should not pay for it

    wav = preprocess(samples_16k)
    if wav.size == 0:
        wav = np.asarray(samples_16k, dtype=np.float32)  # all "silence" to the VAD: embed what there is
    encoder = get_encoder()
    with torch.inference_mode():
        vec = encoder.embed_utterance(wav)
    return _l2(np.asarray(vec, dtype=np.float32))


def embed_differentiable(samples_16k: torch.Tensor) -> torch.Tensor:
    """:func:`embed` as a torch function with a gradient, for fitting a voice to a speaker (synthesis engines).

    The volume gain and the silence mask are measured on the values, as :func:`embed` measures them, and then held
    fixed; the mel spectrogram is librosa's (the same filters and frames), computed in torch. (n,) -> (256,).
    """
    import torch  # here, not at import: Django start-up should not pay for it

    values = samples_16k.detach().cpu().numpy().astype(np.float32)
    gain = _volume_gain(values)
    mask = _speech_mask(values * gain)
    wav = samples_16k[torch.from_numpy(mask).to(samples_16k.device)] if mask.any() else samples_16k
    wav = wav * gain
    encoder = get_encoder()
    wav_slices, mel_slices = encoder.compute_partial_slices(len(wav), 1.3, 0.75)  # embed_utterance's defaults
    wav = torch.nn.functional.pad(wav, (0, max(0, wav_slices[-1].stop - len(wav))))
    mel = _mel_spectrogram(wav.to(encoder.device))
    partials = encoder(torch.stack([mel[s] for s in mel_slices]))
    mean = partials.mean(dim=0)
    return (mean / mean.norm()).to(samples_16k.device)  # the encoder may sit on the GPU, the caller's audio not


def _mel_spectrogram(wav: torch.Tensor) -> torch.Tensor:
    """resemblyzer's ``wav_to_mel_spectrogram`` (librosa: 25 ms Hann frames, 10 ms hop, centred, 40 mel power
    bands, not logged) in torch. (n,) -> (frames, 40)."""
    import librosa
    import torch
    from resemblyzer.hparams import mel_n_channels, mel_window_length, mel_window_step

    n_fft, hop = SAMPLE_RATE * mel_window_length // 1000, SAMPLE_RATE * mel_window_step // 1000
    basis = torch.from_numpy(librosa.filters.mel(sr=SAMPLE_RATE, n_fft=n_fft, n_mels=mel_n_channels)).to(wav)
    spectrum = torch.stft(wav, n_fft, hop, n_fft, torch.hann_window(n_fft, device=wav.device, dtype=wav.dtype),
                          center=True, pad_mode="constant", return_complex=True)
    return (basis @ spectrum.abs().square()).T


def embed_windows(samples_16k: np.ndarray, window_s: float = 1.6, hop_s: float = 1.6) -> np.ndarray:
    """One embedding per window of speech (silences trimmed first): (n,) -> (k, 256) float32, rows L2-normalized.

    Windows shorter than ``window_s`` at the end are dropped; k may be 0 for audio under one window.
    """
    import torch  # here, not at import: Django start-up should not pay for it

    from resemblyzer.audio import wav_to_mel_spectrogram

    wav = preprocess(samples_16k)
    win, hop = int(window_s * SAMPLE_RATE), int(hop_s * SAMPLE_RATE)
    if len(wav) < win:
        return np.zeros((0, EMBEDDING_DIM), np.float32)
    mel = wav_to_mel_spectrogram(wav)  # (frames, 40), 10 ms hop
    fwin, fhop = win // 160, hop // 160
    starts = range(0, mel.shape[0] - fwin + 1, fhop)
    batch = np.stack([mel[s:s + fwin] for s in starts])
    encoder = get_encoder()
    with torch.inference_mode():
        out = encoder(torch.from_numpy(batch).to(encoder.device)).cpu().numpy()
    return out.astype(np.float32)


def profile_embedding(embeddings: Sequence[np.ndarray]) -> np.ndarray:
    """Normalized mean of L2-normalized embeddings: k x (256,) -> (256,). Raises ValueError when empty."""
    if len(embeddings) == 0:
        raise ValueError("a profile needs at least one embedding")
    return _l2(np.mean(np.stack([_l2(np.asarray(e, np.float32)) for e in embeddings]), axis=0))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors, in [-1, 1]; 0.0 when either is all zeros."""
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0 or nb == 0:
        return 0.0
    return float(np.dot(a, b) / (na * nb))


def _l2(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return (v / n).astype(np.float32) if n > 0 else v.astype(np.float32)


class EmbeddingCache:
    """Bounded LRU of decrypted profile embeddings, keyed by (owner_id, key); thread-safe.

    ``key`` is opaque (a blob id, a profile id). ``forget(owner_id)`` drops every entry of an owner, so erasure can
    remove biometric data from memory as well as from storage.
    """

    def __init__(self, max_entries: int = 256) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self._max = max_entries
        self._items: OrderedDict[tuple[Hashable, Hashable], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, owner_id: Hashable, key: Hashable) -> np.ndarray | None:
        with self._lock:
            vec = self._items.get((owner_id, key))
            if vec is not None:
                self._items.move_to_end((owner_id, key))
            return vec

    def put(self, owner_id: Hashable, key: Hashable, embedding: np.ndarray) -> None:
        vec = np.array(embedding, dtype=np.float32)  # a private, read-only copy
        vec.setflags(write=False)
        with self._lock:
            self._items[(owner_id, key)] = vec
            self._items.move_to_end((owner_id, key))
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def forget(self, owner_id: Hashable) -> int:
        """Drop all of an owner's entries; returns how many were dropped."""
        with self._lock:
            doomed = [k for k in self._items if k[0] == owner_id]
            for k in doomed:
                del self._items[k]
            return len(doomed)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


_cache = EmbeddingCache()


def cache_get(owner_id: Hashable, key: Hashable) -> np.ndarray | None:
    """Process-wide cache lookup (see :class:`EmbeddingCache`)."""
    return _cache.get(owner_id, key)


def cache_put(owner_id: Hashable, key: Hashable, embedding: np.ndarray) -> None:
    _cache.put(owner_id, key, embedding)


def forget(owner_id: Hashable) -> int:
    """Drop an owner's cached embeddings from this process (call from erasure)."""
    return _cache.forget(owner_id)
