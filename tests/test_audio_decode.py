"""Audio intake: supported formats decode to mono 16 kHz; broken or hostile input is refused with a named reason."""

from __future__ import annotations

import io
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voicegate.audio.decode import (
    AudioRejected,
    DecodedAudio,
    DecodeLimits,
    clipping_ratio,
    decode_audio,
    sniff_format,
)

RATE = 44_100


def _tone(seconds: float = 1.0, rate: int = RATE, channels: int = 2) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mono = 0.4 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return np.stack([mono * (1 - 0.2 * c) for c in range(channels)], axis=1).astype(np.float32)


def encode(fmt: str, subtype: str | None = None, data: np.ndarray | None = None, rate: int = RATE) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, _tone() if data is None else data, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def ffmpeg_encode(wav: bytes, args: list[str], suffix: str) -> bytes:
    import imageio_ffmpeg  # a pinned dependency: its absence is a failure, not a skip
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / f"out{suffix}"
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-f", "wav", "-i", "pipe:0",
                        *args, str(out)], input=wav, check=True, timeout=60)
        return out.read_bytes()


def _refused(data: bytes, filename: str | None = None, limits: DecodeLimits | None = None) -> str:
    with pytest.raises(AudioRejected) as exc:
        decode_audio(data, filename, limits or DecodeLimits())
    return exc.value.reason_code


@pytest.mark.parametrize(("name", "fmt", "subtype", "rate"), [
    ("a.wav", "WAV", "PCM_16", RATE),
    ("a.wav", "WAV", "FLOAT", RATE),
    ("a.flac", "FLAC", None, RATE),
    ("a.ogg", "OGG", "VORBIS", RATE),
    ("a.opus", "OGG", "OPUS", 48_000),
    ("a.mp3", "MP3", None, RATE),
])
def test_soundfile_formats_decode_to_mono_16k(name: str, fmt: str, subtype: str | None, rate: int) -> None:
    audio = decode_audio(encode(fmt, subtype, _tone(rate=rate), rate), name)
    assert isinstance(audio, DecodedAudio)
    assert audio.sample_rate == 16_000 and audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert audio.source_channels == 2 and audio.source_rate == rate
    assert audio.duration_s == pytest.approx(1.0, abs=0.1)
    assert np.isfinite(audio.samples).all()
    assert float(np.max(np.abs(audio.samples))) == pytest.approx(0.891, abs=0.01)  # peak-normalized


@pytest.mark.parametrize(("suffix", "args", "fmt"), [
    (".m4a", ["-c:a", "aac", "-b:a", "64k"], "mp4"),
    (".aac", ["-c:a", "aac", "-f", "adts"], "aac"),
])
def test_m4a_and_aac_decode_through_ffmpeg(suffix: str, args: list[str], fmt: str) -> None:
    data = ffmpeg_encode(encode("WAV", "PCM_16"), args, suffix)
    audio = decode_audio(data, f"voice{suffix}")
    assert audio.source_format == fmt and audio.source_rate == RATE and audio.source_channels == 2
    assert audio.duration_s == pytest.approx(1.0, abs=0.1)
    assert np.isfinite(audio.samples).all()


def test_empty_file_is_refused_with_reason() -> None:
    assert _refused(b"", "a.wav") == "empty"


def test_file_over_the_byte_limit_is_refused_before_decoding() -> None:
    assert _refused(encode("WAV", "PCM_16"), "a.wav", DecodeLimits(max_bytes=1000)) == "too_large"


def test_unknown_content_is_refused_whatever_the_name_says() -> None:
    assert _refused(b"<html>not audio</html>" * 10, "a.wav") == "unsupported_format"


def test_truncated_wav_is_refused_with_reason() -> None:
    data = encode("WAV", "PCM_16")
    assert _refused(data[: len(data) // 2], "a.wav") == "truncated"


def test_truncated_flac_is_refused() -> None:
    data = encode("FLAC")
    assert _refused(data[: len(data) // 2], "a.flac") in {"truncated", "corrupt"}


def test_extension_naming_another_format_is_refused() -> None:
    assert _refused(encode("FLAC"), "voice.wav") == "format_mismatch"


def test_unknown_or_missing_extension_uses_the_sniffed_format() -> None:
    assert decode_audio(encode("FLAC"), "upload.bin").source_format == "flac"
    assert decode_audio(encode("FLAC"), None).source_format == "flac"


def test_nan_samples_are_refused() -> None:
    data = _tone()
    data[100, 0] = np.nan
    assert _refused(encode("WAV", "FLOAT", data), "a.wav") == "non_finite"


def test_infinite_samples_are_refused() -> None:
    data = _tone()
    data[5, 1] = np.inf
    assert _refused(encode("WAV", "FLOAT", data), "a.wav") == "non_finite"


@pytest.mark.parametrize("rate", [3_000, 200_000])
def test_absurd_sample_rates_are_refused(rate: int) -> None:
    assert _refused(encode("WAV", "PCM_16", _tone(0.2, rate), rate), "a.wav") == "bad_sample_rate"


def test_more_than_eight_channels_is_refused() -> None:
    assert _refused(encode("WAV", "PCM_16", _tone(0.2, 8000, channels=9), 8000), "a.wav") == "bad_channels"


def test_audio_longer_than_the_limit_is_refused() -> None:
    assert _refused(encode("WAV", "PCM_16"), "a.wav", DecodeLimits(max_duration_s=0.5)) == "too_long"


def test_flac_bomb_claiming_hours_is_refused_from_its_header() -> None:
    buf = io.BytesIO()
    silence = np.zeros(8000 * 60, np.float32)
    with sf.SoundFile(buf, "w", 8000, 1, format="FLAC") as f:
        for _ in range(60):  # one hour of silence, a few hundred kilobytes
            f.write(silence)
    data = buf.getvalue()
    assert len(data) < 1_000_000
    assert _refused(data, "a.flac") == "too_long"


def test_flac_whose_header_understates_its_length_is_stopped_by_the_sample_cap() -> None:
    data = bytearray(encode("FLAC", data=_tone(3.0), rate=RATE))
    data[8 + 13] &= 0xF0  # STREAMINFO total samples -> 0 ("unknown"): the header check cannot see the length
    data[8 + 14:8 + 18] = b"\0\0\0\0"
    assert _refused(bytes(data), "a.flac", DecodeLimits(max_duration_s=1.0)) == "too_long"


def test_wav_claiming_a_huge_data_chunk_is_refused() -> None:
    data = bytearray(encode("WAV", "PCM_16"))
    pos = data.find(b"data")
    data[pos + 4:pos + 8] = struct.pack("<I", 0x7FFFFFF0)
    assert _refused(bytes(data), "a.wav") == "truncated"


def test_mp4_header_claiming_hours_is_refused_before_ffmpeg_runs() -> None:
    data = bytearray(ffmpeg_encode(encode("WAV", "PCM_16"), ["-c:a", "aac", "-movflags", "+faststart"], ".m4a"))
    pos = data.find(b"mvhd") + 4
    version = data[pos]
    assert version == 0
    data[pos + 16:pos + 20] = struct.pack(">I", 0xFFFFFF00)  # duration in timescale units
    assert _refused(bytes(data), "a.m4a") == "too_long"


def test_mp4_that_references_a_local_file_cannot_read_it() -> None:
    # An HLS playlist dressed as M4A: with '-f mov' and only the pipe protocol, ffmpeg cannot follow file paths.
    data = b"\0\0\0\x14ftypM4A \0\0\0\0M4A " + b"#EXTM3U\n#EXTINF:10,\n/etc/passwd\n"
    assert _refused(data, "a.m4a") == "corrupt"


def test_stereo_is_mixed_to_mono_by_averaging() -> None:
    left = _tone(1.0, 16_000, 1)[:, 0]
    data = np.stack([left, -left], axis=1)  # opposite phase: the average is silence
    audio = decode_audio(encode("WAV", "FLOAT", data, 16_000), "a.wav", DecodeLimits(normalize="none"))
    assert float(np.max(np.abs(audio.samples))) < 1e-6


def test_resampling_keeps_duration_for_odd_rates() -> None:
    audio = decode_audio(encode("WAV", "PCM_16", _tone(1.0, 44_101), 44_101), "a.wav")
    assert len(audio.samples) == pytest.approx(16_000, abs=2)


def test_rms_normalization_reaches_its_target() -> None:
    audio = decode_audio(encode("WAV", "PCM_16", _tone(1.0) * 0.1), "a.wav", DecodeLimits(normalize="rms"))
    rms_db = 20 * np.log10(np.sqrt(np.mean(audio.samples.astype(np.float64) ** 2)))
    assert rms_db == pytest.approx(-23.0, abs=0.5)


def test_clipping_ratio_counts_flat_runs_at_the_peak() -> None:
    x = _tone(1.0, 16_000, 1)[:, 0]
    clean = clipping_ratio(x + np.random.default_rng(0).normal(0, 1e-3, len(x)))
    clipped = clipping_ratio(np.clip(x * 4, -1, 1))
    assert clean < 0.001
    assert clipped > 0.3


def test_sniffing_tells_mp3_from_adts_aac() -> None:
    assert sniff_format(b"\xff\xfb\x90\x00") == "mp3"
    assert sniff_format(b"\xff\xf1\x50\x80") == "aac"
    assert sniff_format(b"ID3\x03\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x00") == "mp3"
