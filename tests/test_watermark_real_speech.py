"""Marks on real speech (the LibriSpeech fixtures) through attacks that move or overlay its time-frequency tiles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.audio_attacks import atempo, with_echo
from voicegate.audio import watermark as wm

SR = 16000
KEY = bytes(range(32))
FIXTURES = Path(__file__).parent / "fixtures" / "librispeech"
EXCERPT_S = 5.0


def excerpts() -> list[np.ndarray]:
    """5 s excerpts of the fixture utterances, 1 s apart: short clips hold few repetitions of the mark."""
    out = []
    for path in sorted(FIXTURES.glob("*.flac")):
        speech, rate = sf.read(path, dtype="float32")
        assert rate == SR
        for start in range(0, int(speech.size / SR - EXCERPT_S) + 1):
            out.append(speech[start * SR : int((start + EXCERPT_S) * SR)])
    return out


def test_most_short_stretched_excerpts_of_real_speech_decode() -> None:
    # WSOLA splices its output from input segments a few ms off the scale's line, and a 5 s clip holds under two
    # periods of the mark. The detector that searched the scale by the pilots alone and read every column at one
    # global scale recovered 13 of these 36; scoring scales by every group's bit-blind agreement and reading each
    # column at its own offset, 26 with offsets picked per column from 5 columns' evidence, 30 on a penalized path.
    clips = excerpts()
    found = [
        wm.detect(atempo(wm.embed(clip, SR, 7000 + i, KEY), SR, tempo), SR, KEY).payload == 7000 + i
        for i, clip in enumerate(clips)
        for tempo in (0.95, 0.97, 1.03, 1.05)
    ]
    assert len(found) == 36
    assert sum(found) >= 26


@pytest.mark.parametrize(("delay_s", "gain"), [(0.15, 0.35), (0.05, -0.5)])
def test_echoed_excerpts_decode_once_the_echo_is_removed(delay_s: float, gain: float) -> None:
    # An echo lays every tile over the one delay_s earlier: none of these 9 decoded as heard before the detector
    # looked for an echo (in the cepstrum) and removed it before decoding again.
    found = [wm.detect(with_echo(wm.embed(clip, SR, 9000 + i, KEY), SR, delay_s, gain), SR, KEY) for i, clip in enumerate(excerpts())]
    assert [f.payload for f in found] == [9000 + i for i in range(len(found))]
    assert all(f.echo is not None and abs(f.echo.delay_s - delay_s) < 1e-3 for f in found)
    assert all(abs(f.echo.gain - gain) < 0.1 and f.candidates_tried == 2 for f in found)


def test_no_echo_is_found_in_plain_speech() -> None:
    assert all(wm.find_echo(clip.astype(np.float64)) is None for clip in excerpts())


def test_an_echo_added_at_another_sample_rate_is_removed_between_samples() -> None:
    # At 22.05 kHz 150 ms is 3307 samples, 2399.6 at the detector's 16 kHz: removed at a whole sample the echo
    # would leave a residue of about -16 dB at 3 kHz.
    from scipy.signal import resample_poly

    rate = 22050
    clips = [resample_poly(clip.astype(np.float64), 441, 320) for clip in excerpts()]
    marked = [wm.embed(clip, rate, 9100 + i, KEY) for i, clip in enumerate(clips)]
    found = [wm.detect(with_echo(m, rate, 0.15, 0.35), rate, KEY) for m in marked]
    assert [f.payload for f in found] == [9100 + i for i in range(len(found))]
    assert all(abs(f.echo.delay_s - int(0.15 * rate) / rate) < 2e-5 for f in found)
