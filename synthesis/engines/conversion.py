"""Per-voice conversion of a base TTS voice toward an enrolled speaker, on WORLD (pyworld) features.

Framework-free. A :class:`VoiceConversion` is fitted from enrollment clips (16 kHz) and applied to base-voice audio
at any sample rate. What it changes, frame by frame, after WORLD analysis (F0, spectral envelope, aperiodicity):

* F0: log-F0 mapped from the base voice's log-mean/std to the target's (measured on the enrollment clips), plus a
  fitted offset in semitones and a fitted range scale;
* vocal-tract length: the spectral envelope is warped linearly in frequency by a fitted ratio ``warp``
  (formants move by that factor);
* spectral envelope: a smooth gain curve (liftered log-spectrum difference) that brings the warped base voice's mean
  envelope to the target's, separately for voiced and unvoiced frames, scaled by a fitted strength;
* frame detail: each voiced frame's envelope detail moves, by a fitted mix, toward the mean of its nearest frames
  in a bank of the speaker's own frames; frames with no near match (the least-matched 30% of the base voice's)
  keep their own, since there the nearest frames are of another speech sound;
* aperiodicity: a fitted offset in dB (breathiness).

The fitted parameters maximize the cosine of a speaker embedding (passed in, resemblyzer in production) between the
converted base sentences and the enrollment clips, with the CMA-ES of :mod:`synthesis.engines.search`.
The fitted state is plain numbers and serializes to JSON bytes (no pickle): :meth:`VoiceConversion.to_bytes`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pyworld as pw
from scipy.signal import resample_poly

from synthesis.engines.search import FitConfig, cma_es

logger = logging.getLogger(__name__)

FIT_SAMPLE_RATE = 16_000
STATE_VERSION = 1
FRAME_PERIOD_MS = 5.0
F0_FLOOR, F0_CEIL = 60.0, 500.0
BASE_F0_FLOOR = 71.0  # for the base voice only (Piper joe never goes below ~80 Hz)
GRID_HZ = np.linspace(0.0, 8000.0, 257)  # frequency grid (Hz) of the stored gain curves
_LIFTER = 40  # cepstral coefficients kept when smoothing a gain curve (~400 Hz resolution at 16 kHz)
_TOP_HZ = 7600.0  # above this the target (16 kHz audio) says nothing; hold the gain from here up
# The engines pad speech with silence (Kokoro: ~0.35 s before the first clause and a tail after it); WORLD costs the
# same per second of silence as of speech, so only the sounding span (10 ms RMS above this, plus a margin) is
# converted and the silence around it passes through as it is.
SILENCE_DBFS = -60.0
_SPAN_MARGIN_S = 0.05

# What an engine's voice speaks (16 kHz) for a conversion to be fitted on: phonetically varied, ~10 s. Changing them
# changes fits.
REFERENCE_SENTENCES = (
    "The birch canoe slid on the smooth planks, and the boy was there when the sun rose.",
    "She asked whether the yellow jacket would keep her warm during the long winter journey north.",
    "Glue the sheet to the dark blue background, then check the measurements twice.",
)


class ConversionError(ValueError):
    """Enrollment audio or a stored conversion state that cannot be used."""


@dataclass(frozen=True)
class Features:
    """WORLD features of one utterance: f0 (frames,) Hz (0 = unvoiced), sp and ap (frames, fft//2+1)."""

    fs: int
    f0: np.ndarray
    sp: np.ndarray
    ap: np.ndarray


@dataclass
class VoiceConversion:
    """The fitted conversion: everything needed to apply it, in physical units."""

    base_logf0_mean: float
    base_logf0_std: float
    target_logf0_mean: float
    target_logf0_std: float
    f0_shift_st: float = 0.0  # semitones on top of the mean/std mapping
    f0_range: float = 1.0  # multiplies the mapped log-F0 deviation
    warp: float = 1.0  # formant frequency ratio, target / base
    ap_db: float = 0.0
    gain_voiced: list[float] = field(default_factory=lambda: [0.0] * len(GRID_HZ))  # ln-power gain on GRID_HZ
    gain_unvoiced: list[float] = field(default_factory=lambda: [0.0] * len(GRID_HZ))
    knn_mix: float = 0.0  # 0..1: how much of each voiced frame's envelope detail comes from the nearest target frames
    knn_reach: float | None = None  # frames whose nearest target frames are farther than this get no detail
    bank: str = ""  # base64 float16 (frames, len(GRID_HZ)): target envelope detail (row-centred ln-power residuals)
    score: float = float("nan")  # embedding cosine reached while fitting (information only)
    guard_wer: float = float("nan")  # WER of the intelligibility guard's sentences, when checked (information only)
    version: int = STATE_VERSION

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, blob: bytes) -> VoiceConversion:
        try:
            data = json.loads(blob.decode())
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConversionError(f"corrupt voice conversion state: {exc}") from exc
        return cls.from_json(data)

    @classmethod
    def from_json(cls, data: object) -> VoiceConversion:
        """A state from its parsed JSON (as :meth:`to_bytes` wrote it, alone or inside another engine's state)."""
        try:
            if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
                raise ValueError("unknown version")
            state = cls(**data)
            for curve in (state.gain_voiced, state.gain_unvoiced):
                if len(curve) != len(GRID_HZ) or not np.all(np.isfinite(curve)):
                    raise ValueError("bad gain curve")
            state._bank()
            numbers = [state.knn_mix, state.base_logf0_mean, state.base_logf0_std, state.target_logf0_mean,
                       state.target_logf0_std, state.f0_shift_st, state.f0_range, state.warp, state.ap_db]
            if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in numbers) or not (
                    0.5 < state.warp < 2.0 and 0.0 <= state.knn_mix <= 1.0 and 0.1 < state.f0_range < 5.0
                    and state.base_logf0_std > 0 and state.target_logf0_std >= 0):
                raise ValueError("bad parameter")
            if state.knn_reach is not None and not (isinstance(state.knn_reach, (int, float))
                                                    and 0.0 < state.knn_reach < math.inf):
                raise ValueError("bad kNN reach")
        except (ValueError, TypeError, binascii.Error) as exc:
            raise ConversionError(f"corrupt voice conversion state: {exc}") from exc
        return state

    def apply(self, audio: np.ndarray, fs: int) -> np.ndarray:
        """Convert base-voice audio: (n,) float32 at ``fs`` -> (n,) float32 at ``fs``; the converted span's peak
        is at most 0.95, the silence around it is returned as it came."""
        start, end = sounding_span(audio, fs)
        out = np.array(audio, dtype=np.float32)
        if end - start < fs // 50:
            return out
        converted = _synthesize(self._convert(analyze(audio[start:end], fs, f0_floor=BASE_F0_FLOOR)))
        n = min(converted.size, end - start)
        out[start:start + n] = converted[:n]
        out[start + n:end] = 0.0  # WORLD's frames may stop short of the span's end, in its silent margin
        return out

    def _convert(self, feats: Features) -> Features:
        return Features(feats.fs, self._map_f0(feats.f0), self._map_sp(feats), self._map_ap(feats.ap))

    def _map_f0(self, f0: np.ndarray) -> np.ndarray:
        out = np.zeros_like(f0)
        voiced = f0 > 0
        z = (np.log(f0[voiced]) - self.base_logf0_mean) / max(self.base_logf0_std, 1e-3)
        logf = self.target_logf0_mean + z * self.target_logf0_std * self.f0_range + self.f0_shift_st * math.log(2) / 12
        out[voiced] = np.clip(np.exp(logf), F0_FLOOR * 0.8, 800.0)
        return out

    def _bank(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The target frame bank, (frames, len(GRID_HZ)) float32, or None; cached after the first decode."""
        if not self.bank:
            return None
        cached = getattr(self, "_bank_cache", None)
        if cached is None:
            raw = np.frombuffer(base64.b64decode(self.bank, validate=True), dtype=np.float16)
            if raw.size == 0 or raw.size % len(GRID_HZ) or not np.all(np.isfinite(raw)):
                raise ValueError("bad frame bank")
            bank = raw.reshape(-1, len(GRID_HZ)).astype(np.float32)
            cached = (bank, _cepstra(bank))
            object.__setattr__(self, "_bank_cache", cached)
        return cached  # type: ignore[no-any-return]

    def _map_sp(self, feats: Features) -> np.ndarray:
        logsp, hz = self._shaped(feats)
        voiced = feats.f0 > 0
        bank = self._bank()
        if bank is not None and self.knn_mix > 0 and voiced.any():
            detail, distance = _knn_detail(logsp[voiced], hz, *bank)
            if self.knn_reach is not None:
                detail[distance > self.knn_reach] = 0.0
            logsp[voiced] += self.knn_mix * detail @ _grid_to(hz)
        return np.exp(logsp)

    def _shaped(self, feats: Features) -> tuple[np.ndarray, np.ndarray]:
        """The ln-power envelope warped and gain-matched (before frame detail), and its bins' frequencies."""
        logsp = warp_log_envelope(np.log(feats.sp + 1e-16), feats.fs, self.warp)
        hz = np.linspace(0.0, feats.fs / 2, logsp.shape[1])
        gv = _gain_on(hz, np.asarray(self.gain_voiced))
        gu = _gain_on(hz, np.asarray(self.gain_unvoiced))
        return logsp + np.where((feats.f0 > 0)[:, None], gv[None, :], gu[None, :]), hz

    def reach_on(self, base: Sequence[Features]) -> float | None:
        """The kNN distance below which KNN_REACH_SHARE of the base voice's voiced frames fall (None without a bank).

        Frame detail swaps one speech sound for another where the speaker's clips hold no frame like the one being
        converted, so the least-matched frames of the base voice get none (measured: docs/engines.md)."""
        bank = self._bank()
        if bank is None:
            return None
        distances = []
        for feats in base:
            logsp, hz = self._shaped(feats)
            voiced = feats.f0 > 0
            if voiced.any():
                distances.append(_knn_detail(logsp[voiced], hz, *bank)[1])
        return float(np.quantile(np.concatenate(distances), KNN_REACH_SHARE)) if distances else None

    def _map_ap(self, ap: np.ndarray) -> np.ndarray:
        if self.ap_db == 0.0:
            return ap
        return np.clip(ap * 10 ** (self.ap_db / 20), 1e-6, 1.0 - 1e-6)


def sounding_span(audio: np.ndarray, fs: int) -> tuple[int, int]:
    """[start, end) sample range from the first to the last 10 ms block above SILENCE_DBFS, widened by the margin;
    (0, 0) when the whole clip is silent."""
    hop = max(fs // 100, 1)
    blocks = audio.size // hop
    rms = np.sqrt(np.mean(np.square(audio[:blocks * hop].astype(np.float64)).reshape(blocks, hop), axis=1))
    loud = np.flatnonzero(rms > 10 ** (SILENCE_DBFS / 20))
    if loud.size == 0:
        return 0, 0
    margin = int(_SPAN_MARGIN_S * fs)
    end = audio.size if loud[-1] == blocks - 1 else (loud[-1] + 1) * hop + margin
    return max(0, int(loud[0]) * hop - margin), min(audio.size, end)


def analyze(audio: np.ndarray, fs: int, with_ap: bool = True, f0_floor: float = F0_FLOOR) -> Features:
    """WORLD analysis (DIO + StoneMask, CheapTrick, D4C): (n,) float at fs -> :class:`Features`.

    ``f0_floor`` also sets the FFT size (3 periods of it): the base voice (F0 > 80 Hz) is analyzed with
    BASE_F0_FLOOR, which halves the FFT at 22.05 kHz and with it the streaming cost.
    """
    x = np.ascontiguousarray(audio, dtype=np.float64)
    f0, t = pw.dio(x, fs, f0_floor=f0_floor, f0_ceil=F0_CEIL, frame_period=FRAME_PERIOD_MS)
    f0 = pw.stonemask(x, f0, t, fs)
    fft_size = pw.get_cheaptrick_fft_size(fs, f0_floor)
    sp = pw.cheaptrick(x, f0, t, fs, f0_floor=f0_floor, fft_size=fft_size)
    ap = pw.d4c(x, f0, t, fs, fft_size=fft_size) if with_ap else np.zeros_like(sp)
    return Features(fs, f0, sp, ap)


def _synthesize(feats: Features) -> np.ndarray:
    c = np.ascontiguousarray
    y = pw.synthesize(c(feats.f0), c(feats.sp), c(feats.ap), feats.fs, FRAME_PERIOD_MS)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > 0.95:
        y = y * (0.95 / peak)
    return y.astype(np.float32)


def warp_log_envelope(logsp: np.ndarray, fs: int, ratio: float) -> np.ndarray:
    """Move formants by ``ratio``: out(f) = in(f / ratio), (frames, bins) -> same shape; held at the top edge."""
    n = logsp.shape[-1]
    pos = np.clip(np.arange(n) / ratio, 0, n - 1)
    i0 = np.minimum(pos.astype(np.int64), n - 2)
    w = pos - i0
    return logsp[..., i0] * (1 - w) + logsp[..., i0 + 1] * w


def _gain_on(hz: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """A stored gain curve (on GRID_HZ) read at ``hz``; beyond _TOP_HZ it holds its value there."""
    return np.interp(np.minimum(hz, _TOP_HZ), GRID_HZ, curve)


def _smooth(curve: np.ndarray, lifter: int = _LIFTER) -> np.ndarray:
    """Lifter a log-spectrum curve on GRID_HZ: keep its first ``lifter`` cepstral coefficients."""
    c = np.fft.irfft(curve)
    c[lifter:len(c) - lifter + 1] = 0.0
    return np.fft.rfft(c).real


_N_CEPSTRA = 24
_KNN = 5
_BANK_FRAMES = 800
KNN_REACH_SHARE = 0.7  # of the base voice's voiced frames that get frame detail (the best-matched ones)


def _centred(rows: np.ndarray) -> np.ndarray:
    """Remove each row's mean over 100-4000 Hz (frame energy stays where it was)."""
    band = (GRID_HZ > 100) & (GRID_HZ < 4000)
    return rows - rows[:, band].mean(axis=1, keepdims=True)


def _cepstra(rows: np.ndarray) -> np.ndarray:
    """Low quefrency cepstra (1.._N_CEPSTRA) of ln-power envelopes on GRID_HZ: (frames, 257) -> (frames, 24)."""
    return np.fft.irfft(rows, axis=1)[:, 1:_N_CEPSTRA + 1]


@functools.lru_cache(maxsize=8)
def _grid_to_cached(n: int, top_hz: float) -> np.ndarray:
    """Linear interpolation matrix from GRID_HZ to n bins spanning 0..top_hz (held above _TOP_HZ): (257, n)."""
    hz = np.minimum(np.linspace(0.0, top_hz, n), _TOP_HZ)
    eye = np.eye(len(GRID_HZ))
    return np.stack([np.interp(hz, GRID_HZ, row) for row in eye]).astype(np.float64)


@functools.lru_cache(maxsize=8)
def _to_grid(n: int, top_hz: float) -> np.ndarray:
    """Linear interpolation matrix from n bins spanning 0..top_hz to GRID_HZ: (n, 257)."""
    hz = np.linspace(0.0, top_hz, n)
    return np.stack([np.interp(GRID_HZ, hz, row) for row in np.eye(n)], axis=0)


def _grid_to(hz: np.ndarray) -> np.ndarray:
    return _grid_to_cached(len(hz), float(hz[-1]))


def _knn_detail(logsp: np.ndarray, hz: np.ndarray, bank: np.ndarray,
                bank_cep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: mean detail of the _KNN nearest target frames minus the frame's own detail, on GRID_HZ, and the
    frame's RMS cepstral distance to those frames."""
    own = _centred(logsp @ _to_grid(len(hz), float(hz[-1])))
    cep = _cepstra(own)
    d = (cep ** 2).sum(1)[:, None] - 2 * cep @ bank_cep.T + (bank_cep ** 2).sum(1)[None, :]
    k = min(_KNN, len(bank))
    idx = np.argpartition(d, k - 1, axis=1)[:, :k]
    distance = np.sqrt(np.maximum(np.take_along_axis(d, idx, axis=1).mean(axis=1), 0.0))
    return bank[idx].mean(axis=1) - own, distance


def _frame_bank(feats: Sequence[Features], target_mean: np.ndarray, seed: int) -> str:
    """Seeded subsample of the target's loud voiced frames, centred, as base64 float16 (no pickle)."""
    rows = []
    for f in feats:
        hz = np.linspace(0.0, f.fs / 2, f.sp.shape[1])
        logsp = np.log(f.sp + 1e-16)
        energy = np.log(np.sum(f.sp, axis=1) + 1e-16)
        keep = (f.f0 > 0) & (energy > np.max(energy) - np.log(10 ** 3.0))
        rows.extend(np.interp(GRID_HZ, hz, row) for row in logsp[keep])
    bank = _centred(np.stack(rows))
    if len(bank) > _BANK_FRAMES:
        bank = bank[np.sort(np.random.default_rng(seed).choice(len(bank), _BANK_FRAMES, replace=False))]
    return base64.b64encode(bank.astype(np.float16).tobytes()).decode("ascii")


# ----------------------------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class _Stats:
    logf0_mean: float
    logf0_std: float
    env_voiced: np.ndarray  # mean ln-power envelope on GRID_HZ, voiced frames
    env_unvoiced: np.ndarray  # same, energetic unvoiced frames


def _stats(feats: Sequence[Features]) -> _Stats:
    logf0 = np.concatenate([np.log(f.f0[f.f0 > 0]) for f in feats])
    rows_v, rows_u = [], []
    for f in feats:
        hz = np.linspace(0.0, f.fs / 2, f.sp.shape[1])
        logsp = np.log(f.sp + 1e-16)
        on_grid = np.stack([np.interp(GRID_HZ, hz, row) for row in logsp])
        energy = np.log(np.sum(f.sp, axis=1) + 1e-16)
        loud = energy > np.max(energy) - np.log(10 ** 3.5)  # within 35 dB of the loudest frame
        rows_v.append(on_grid[(f.f0 > 0) & loud])
        rows_u.append(on_grid[(f.f0 == 0) & loud])
    voiced, unvoiced = np.concatenate(rows_v), np.concatenate(rows_u)
    if logf0.size < 50 or len(voiced) < 50:
        raise ConversionError("not enough voiced speech in the enrollment audio")
    if len(unvoiced) == 0:
        unvoiced = voiced
    return _Stats(float(np.mean(logf0)), float(np.std(logf0)), voiced.mean(0), unvoiced.mean(0))


def _gains(target: _Stats, base: _Stats, warp: float, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """Smooth ln-power gains that take the warped base mean envelopes to the target's, scaled by ``strength``."""
    out = []
    for t, b in ((target.env_voiced, base.env_voiced), (target.env_unvoiced, base.env_unvoiced)):
        diff = t - warp_log_envelope(b, FIT_SAMPLE_RATE, warp)
        diff = _smooth(diff)
        diff -= np.mean(diff[(GRID_HZ > 100) & (GRID_HZ < 4000)])  # keep loudness; level is normalized anyway
        out.append(strength * diff)
    return out[0], out[1]


def _initial_warp(target: _Stats, base: _Stats) -> float:
    """The formant ratio that best aligns the mean voiced envelopes (300-5000 Hz, mean removed)."""
    band = (GRID_HZ > 300) & (GRID_HZ < 5000)
    t = target.env_voiced[band] - target.env_voiced[band].mean()
    best, best_err = 1.0, float("inf")
    for r in np.exp(np.linspace(np.log(0.8), np.log(1.25), 31)):
        b = warp_log_envelope(base.env_voiced, FIT_SAMPLE_RATE, float(r))[band]
        err = float(np.mean((t - (b - b.mean())) ** 2))
        if err < best_err:
            best, best_err = float(r), err
    return best


# ----------------------------------------------------------------------------------------------- fitting


Embedder = Callable[[np.ndarray], np.ndarray]  # 16 kHz (n,) float32 -> (d,) L2-normalized


def fit_conversion(
    enrollment_16k: Sequence[np.ndarray],
    base_16k: Sequence[np.ndarray],
    embed: Embedder,
    config: FitConfig = FitConfig(),
) -> VoiceConversion:
    """Fit a conversion from the base voice (reference sentences, 16 kHz) to the enrolled speaker (clips, 16 kHz)."""
    target_feats = [analyze(x, FIT_SAMPLE_RATE, with_ap=False) for x in enrollment_16k]
    target = _stats(target_feats)
    base_feats = [analyze(x, FIT_SAMPLE_RATE, f0_floor=BASE_F0_FLOOR) for x in base_16k]
    base = _stats(base_feats)
    target_vec = mean_unit([embed(np.asarray(x, np.float32)) for x in enrollment_16k])
    warp0 = _initial_warp(target, base)
    bank = _frame_bank(target_feats, target.env_voiced, config.seed)

    def build(z: np.ndarray) -> VoiceConversion:
        warp = float(np.clip(warp0 * math.exp(0.08 * z[1]), 0.75, 1.35))
        gv, gu = _gains(target, base, warp, float(np.clip(0.8 + 0.4 * z[2], 0.0, 1.5)))
        conv = VoiceConversion(
            base.logf0_mean, base.logf0_std, target.logf0_mean, target.logf0_std,
            f0_shift_st=float(np.clip(2.0 * z[0], -6, 6)), warp=warp,
            ap_db=float(np.clip(4.0 * z[3], -12, 12)), f0_range=float(np.clip(math.exp(0.3 * z[4]), 0.5, 2.0)),
            gain_voiced=[round(float(v), 4) for v in gv], gain_unvoiced=[round(float(v), 4) for v in gu],
            knn_mix=float(np.clip(0.7 + 0.3 * z[5], 0.0, 1.0)), bank=bank)
        conv.knn_reach = conv.reach_on(base_feats)  # set per candidate: the objective hears what will be served
        return conv

    def fitness(z: np.ndarray) -> float:
        conv = build(z)
        audio = np.concatenate([_synthesize(conv._convert(f)) for f in base_feats])
        return float(np.dot(embed(audio), target_vec))

    z, score = cma_es(fitness, np.zeros(6), config)
    best = build(z)
    best.score = score
    logger.info("conversion fitted: score %.3f warp %.3f shift %.2f st", score, best.warp, best.f0_shift_st)
    return best


def mean_unit(vectors: Sequence[np.ndarray]) -> np.ndarray:
    m = np.mean([v / (np.linalg.norm(v) + 1e-12) for v in vectors], axis=0)
    return m / (np.linalg.norm(m) + 1e-12)


def resample(audio: np.ndarray, fs_in: int, fs_out: int) -> np.ndarray:
    """Polyphase resampling, (n,) float -> (n * fs_out / fs_in,) float32."""
    if fs_in == fs_out:
        return np.asarray(audio, np.float32)
    g = math.gcd(fs_in, fs_out)
    return resample_poly(np.asarray(audio, np.float64), fs_out // g, fs_in // g).astype(np.float32)
