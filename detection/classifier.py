"""Synthetic-speech classifier: a small LFCC + TDNN model that scores how likely a clip is machine-made.

Framework-free (imports without Django). One loader (:func:`load_detector`), a dataclass config, a device argument,
a process-wide instance (:func:`get_detector`), ``torch.inference_mode()``, and weights read with
``weights_only=True`` after the file's SHA-256 has been compared with :data:`WEIGHTS_SHA256`. The weights file also
carries the calibration (Platt ``a``, ``b``) and the band thresholds, so the one pinned hash covers all of them.

Pipeline, each step testable on its own: ``check_samples`` -> ``windows`` (4 s, hop 2 s) -> ``LfccFrontEnd``
(20 LFCC + deltas, 25 ms / 10 ms) -> ``Tdnn`` (raw logit per window) -> mean logit -> Platt -> band.

What it is: a detector of the generators it was trained on (Piper, the product's cloned voices, Kokoro (the quality
engine), espeak-ng, flite, festival, WORLD and Griffin-Lim resynthesis), robust to codecs/telephone/noise/reverb.
What it is not: a proof either way. See docs/detection.md for the measured error rates, including on generators it
never saw.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
WINDOW_S = 4.0
HOP_S = 2.0
MIN_SAMPLES = SAMPLE_RATE // 2  # 0.5 s: shorter clips carry too little to score
WEIGHTS_PATH = Path(__file__).parent / "weights" / "detector_v1.pt"
# sha256 of detection/weights/detector_v1.pt, as written by `python -m detection.train_detector` (seed 0).
WEIGHTS_SHA256 = "6385b54740a5819e0515770253199e4239fd1b5f99ff94d20059f18a5f62f355"
MODEL_VERSION = f"lfcc-cnn-v1 ({WEIGHTS_SHA256[:12]})"

Band = Literal["real", "inconclusive", "synthetic"]


class WeightsMismatch(RuntimeError):
    """The weights file is missing, is not the pinned file, or does not fit the model; refuse to run on it."""


@dataclass(frozen=True)
class ModelConfig:
    """Architecture hyperparameters (the trainer and the loader must agree; stored in the manifest)."""

    n_fft: int = 512
    win_length: int = 400  # 25 ms at 16 kHz
    hop_length: int = 160  # 10 ms
    n_filter: int = 70
    n_lfcc: int = 20
    channels: int = 64
    embed: int = 32


@dataclass(frozen=True)
class DetectorConfig:
    """Where the weights are and what they must hash to."""

    weights_path: Path = WEIGHTS_PATH
    sha256: str = WEIGHTS_SHA256
    model: ModelConfig = ModelConfig()


@dataclass(frozen=True)
class Score:
    """``probability_synthetic`` is calibrated (Platt on a held-out split); ``raw_logit`` is the model's output."""

    probability_synthetic: float
    band: Band
    raw_logit: float


# ---------------------------------------------------------------------------------------------------- the model


class LfccFrontEnd(nn.Module):
    """(batch, samples) float32 16 kHz -> (batch, 3 * n_lfcc, frames): LFCC with deltas and delta-deltas.

    A fixed dither (about -80 dBFS, same every call) keeps digital silence from giving log(0) features, so exact
    zeros, which TTS engines emit and microphones do not, cannot become the whole decision.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        import torchaudio

        self.lfcc = torchaudio.transforms.LFCC(
            sample_rate=SAMPLE_RATE, n_filter=cfg.n_filter, n_lfcc=cfg.n_lfcc,
            speckwargs={"n_fft": cfg.n_fft, "win_length": cfg.win_length, "hop_length": cfg.hop_length,
                        "center": False},
        )
        self.deltas = torchaudio.transforms.ComputeDeltas(win_length=5)
        gen = torch.Generator().manual_seed(0)
        self.register_buffer("dither", 1e-4 * torch.randn(int(WINDOW_S * SAMPLE_RATE), generator=gen), persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        n = wav.shape[-1]
        reps = math.ceil(n / self.dither.numel())
        wav = wav + self.dither.repeat(reps)[:n]
        c = self.lfcc(wav)
        d = self.deltas(c)
        return torch.cat([c, d, self.deltas(d)], dim=1)


class Tdnn(nn.Module):
    """(batch, features, frames) -> (batch,) raw logit. Dilated 1-D convolutions + mean/std pooling over time."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c = cfg.channels
        self.norm = nn.InstanceNorm1d(3 * cfg.n_lfcc, affine=False)  # per-clip feature normalization: level-free
        self.body = nn.Sequential(
            nn.Conv1d(3 * cfg.n_lfcc, c, 5, padding=2), nn.BatchNorm1d(c), nn.ReLU(),
            nn.Conv1d(c, c, 3, dilation=2, padding=2), nn.BatchNorm1d(c), nn.ReLU(),
            nn.Conv1d(c, c, 3, dilation=4, padding=4), nn.BatchNorm1d(c), nn.ReLU(),
            nn.Conv1d(c, 2 * c, 1), nn.BatchNorm1d(2 * c), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Linear(4 * c, cfg.embed), nn.ReLU(), nn.Dropout(0.2), nn.Linear(cfg.embed, 1))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        h = self.body(self.norm(feats))
        pooled = torch.cat([h.mean(dim=-1), h.std(dim=-1)], dim=1)
        return self.head(pooled).squeeze(-1)


class DetectorNet(nn.Module):
    """Front end + TDNN, plus calibration and thresholds as buffers so one file (one hash) holds everything."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.front = LfccFrontEnd(cfg)
        self.tdnn = Tdnn(cfg)
        self.register_buffer("platt", torch.tensor([1.0, 0.0]))  # p = sigmoid(a * logit + b)
        self.register_buffer("bands", torch.tensor([0.5, 0.5]))  # p <= low: real; p >= high: synthetic

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.tdnn(self.front(wav))


# ---------------------------------------------------------------------------------------------------- steps


def check_samples(samples: np.ndarray) -> np.ndarray:
    """Refuse what cannot be scored (ValueError); return (n,) float32, scaled to a fixed RMS (level-free)."""
    arr = np.asarray(samples)
    if arr.ndim != 1:
        raise ValueError(f"samples must be 1-D mono at 16 kHz, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating) and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"samples must be numeric, got {arr.dtype}")
    if arr.size < MIN_SAMPLES:
        raise ValueError(f"clip too short to score: {arr.size} samples, at least {MIN_SAMPLES} needed")
    arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise ValueError("samples contain NaN or Inf")
    return normalize_level(arr)


def normalize_level(x: np.ndarray, target_rms: float = 0.05) -> np.ndarray:
    """Scale to a fixed RMS (about -26 dBFS); silence stays silence."""
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return (x * (target_rms / rms)).astype(np.float32) if rms > 1e-6 else x.astype(np.float32)


def windows(x: np.ndarray) -> np.ndarray:
    """(n,) -> (k, w): 4 s windows every 2 s (the last one flush with the end); a shorter clip is one window."""
    w, hop = int(WINDOW_S * SAMPLE_RATE), int(HOP_S * SAMPLE_RATE)
    if x.size <= w:
        return x[None, :]
    starts = list(range(0, x.size - w + 1, hop))
    if starts[-1] != x.size - w:
        starts.append(x.size - w)
    return np.stack([x[s:s + w] for s in starts])


def band_for(p: float, low: float, high: float) -> Band:
    if p >= high:
        return "synthetic"
    if p <= low:
        return "real"
    return "inconclusive"


# ---------------------------------------------------------------------------------------------------- loader


@dataclass
class Detector:
    """A loaded detector. Thread-safe for scoring (no state is written after load)."""

    net: DetectorNet
    device: str

    @property
    def thresholds(self) -> tuple[float, float]:
        low, high = self.net.bands.tolist()
        return float(low), float(high)

    def raw_logit(self, samples_16k: np.ndarray) -> float:
        """Mean window logit for a (n,) float 16 kHz clip; raises ValueError on input that cannot be scored."""
        x = windows(check_samples(samples_16k))
        with torch.inference_mode():
            logits = self.net(torch.from_numpy(x).to(self.device))
        return float(logits.mean().item())

    def calibrate(self, logit: float) -> float:
        a, b = self.net.platt.tolist()
        return float(1.0 / (1.0 + math.exp(-(a * logit + b))))

    def score(self, samples_16k: np.ndarray) -> Score:
        logit = self.raw_logit(samples_16k)
        p = self.calibrate(logit)
        return Score(probability_synthetic=p, band=band_for(p, *self.thresholds), raw_logit=logit)


def read_checked(path: Path, sha256: str) -> bytes:
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise WeightsMismatch(f"cannot read detector weights {path}: {exc}") from exc
    digest = hashlib.sha256(blob).hexdigest()
    if digest != sha256:
        raise WeightsMismatch(f"detector weights {path} sha256 {digest} != pinned {sha256}")
    return blob


def load_detector(config: DetectorConfig = DetectorConfig(), device: str | None = None) -> Detector:
    """Read the pinned weights (hash checked; the bytes checked are the bytes loaded) into an eval-mode model."""
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    blob = read_checked(config.weights_path, config.sha256)
    state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    net = DetectorNet(config.model)
    try:
        net.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as exc:
        raise WeightsMismatch(f"detector weights do not fit the model: {exc}") from exc
    net.eval().to(dev)
    logger.info("synthetic-speech detector loaded from %s on %s", config.weights_path, dev)
    return Detector(net=net, device=dev)


_detector: Detector | None = None
_lock = threading.Lock()


def get_detector(config: DetectorConfig | None = None, device: str | None = None) -> Detector:
    """The process-wide detector (first config wins)."""
    global _detector
    if _detector is None:
        with _lock:
            if _detector is None:
                _detector = load_detector(config or DetectorConfig(), device)
    return _detector


def score(samples_16k: np.ndarray) -> Score:
    """Score one (n,) float 16 kHz mono clip with the process-wide detector."""
    return get_detector().score(samples_16k)
