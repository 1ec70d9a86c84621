"""Alterations a marked clip meets after issue, shared by the watermark tests."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest


def atempo(audio: np.ndarray, sr: int, tempo: float) -> np.ndarray:
    """ffmpeg's atempo (WSOLA): the duration changes by 1/tempo, the pitch is kept. Skips without ffmpeg."""
    ffmpeg = pytest.importorskip("imageio_ffmpeg").get_ffmpeg_exe()
    pcm = ["-f", "f32le", "-ar", str(sr), "-ac", "1"]
    stretched = subprocess.run(
        [ffmpeg, "-loglevel", "error", *pcm, "-i", "pipe:0", "-af", f"atempo={tempo}", *pcm, "pipe:1"],
        input=audio.astype(np.float32).tobytes(), capture_output=True, check=True,
    ).stdout
    return np.frombuffer(stretched, dtype=np.float32)


def with_echo(audio: np.ndarray, sr: int, delay_s: float, gain: float) -> np.ndarray:
    """``audio`` plus one copy ``gain`` times as loud, ``delay_s`` later (at the nearest whole sample below)."""
    d = int(delay_s * sr)
    out = audio.astype(np.float64)
    out[d:] += gain * audio[:-d]
    return out
