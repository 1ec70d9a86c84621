"""Audio intake: bytes in, mono float32 at a target rate out, or a named refusal.

Framework-free. The format is decided by the file's magic bytes; the declared filename is only a hint, and a
declared extension that names a *different* supported format is refused (``format_mismatch``): a client that
mislabels its upload is either broken or probing, and guessing would hide both. An unknown or missing extension
is fine: the sniffed format is used.

Decoders: libsndfile (through soundfile) for WAV, FLAC, OGG (Vorbis/Opus) and MP3; an ffmpeg binary from the
``imageio-ffmpeg`` wheel, run as a subprocess on pipes, for MP4/M4A and raw ADTS AAC. Every path checks the header
(rate, channels, claimed length) before decoding, reads in blocks under a sample cap and a deadline, and refuses
instead of raising anything but :class:`AudioRejected`.
"""

from __future__ import annotations

import io
import logging
import math
import os
import re
import selectors
import struct
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

logger = logging.getLogger(__name__)

Normalization = Literal["peak", "rms", "none"]

# Reason codes are a stable API: callers map them to 4xx responses and tests assert on them.
REASONS = (
    "empty",  # zero bytes
    "too_large",  # more bytes than DecodeLimits.max_bytes
    "unsupported_format",  # magic bytes match no supported container
    "format_mismatch",  # declared extension names another supported format
    "truncated",  # header promises more data than the file holds
    "corrupt",  # the decoder could not parse the stream
    "bad_sample_rate",  # outside [min_sample_rate, max_sample_rate]
    "bad_channels",  # zero or more than max_channels
    "too_long",  # claimed or decoded duration/samples over the limits (also decompression bombs)
    "too_short",  # no samples at all after decoding
    "non_finite",  # NaN or Inf samples
    "decoder_timeout",  # decoding took longer than DecodeLimits.timeout_s
    "decoder_unavailable",  # the format needs ffmpeg and imageio-ffmpeg is not installed
)


class AudioRejected(Exception):
    """Input audio refused; ``reason_code`` is one of :data:`REASONS`, ``message`` is for humans."""

    def __init__(self, reason_code: str, message: str) -> None:
        super().__init__(f"{reason_code}: {message}")
        self.reason_code = reason_code
        self.message = message


@dataclass(frozen=True)
class DecodeLimits:
    """Limits and output settings for :func:`decode_audio`; pass your own from settings, never read globals."""

    max_bytes: int = 50 * 1024 * 1024
    max_duration_s: float = 300.0
    # Cap on decoded source-rate samples summed over channels: bounds memory whatever the rate (128 MiB float32).
    max_decoded_samples: int = 32 * 1024 * 1024
    min_sample_rate: int = 4_000
    max_sample_rate: int = 192_000
    max_channels: int = 8
    target_rate: int = 16_000
    normalize: Normalization = "peak"
    peak_target: float = 0.891  # -1 dBFS
    rms_target_dbfs: float = -23.0
    timeout_s: float = 30.0
    block_frames: int = 65_536


@dataclass(frozen=True)
class DecodedAudio:
    """Decoded mono audio.

    samples: float32, shape (n,), finite, in [-1, 1] after normalization, at ``sample_rate`` Hz.
    clipping_ratio: fraction of source-rate samples (before resampling and normalization) that sit in flat runs
    at the signal's peak; resampling smears flat tops, so it is measured here for the quality gate.
    """

    samples: np.ndarray
    sample_rate: int
    duration_s: float
    source_format: str
    source_channels: int
    source_rate: int
    clipping_ratio: float = 0.0


# Extension -> format family. Families group extensions that share one container.
_EXTENSIONS: dict[str, str] = {
    "wav": "wav", "wave": "wav", "flac": "flac", "ogg": "ogg", "oga": "ogg", "opus": "ogg",
    "mp3": "mp3", "m4a": "mp4", "mp4": "mp4", "aac": "aac", "m4b": "mp4",
}
_SOUNDFILE_FORMATS = {"wav", "flac", "ogg", "mp3"}
_FFMPEG_DEMUXERS = {"mp4": "mov", "aac": "aac"}


def decode_audio(data: bytes, filename: str | None = None, limits: DecodeLimits = DecodeLimits()) -> DecodedAudio:
    """Decode ``data`` (a whole uploaded file) to mono float32 at ``limits.target_rate``.

    Raises AudioRejected with a reason code from :data:`REASONS`; never any other exception for bad input.
    """
    if not data:
        raise AudioRejected("empty", "the file is empty")
    if len(data) > limits.max_bytes:
        raise AudioRejected("too_large", f"{len(data)} bytes is over the limit of {limits.max_bytes}")
    fmt = sniff_format(data)
    if fmt is None:
        raise AudioRejected("unsupported_format", "the content is not WAV, FLAC, OGG, MP3, M4A or AAC")
    _check_declared(fmt, filename)
    if fmt in _SOUNDFILE_FORMATS:
        frames, rate, channels = _decode_soundfile(data, fmt, limits)
    else:
        frames, rate, channels = _decode_ffmpeg(data, fmt, limits)
    return _finish(frames, rate, channels, fmt, limits)


def sniff_format(data: bytes) -> str | None:
    """Format family from magic bytes: 'wav', 'flac', 'ogg', 'mp3', 'mp4', 'aac', or None."""
    head = data[:12]
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[4:8] == b"ftyp":
        return "mp4"
    if head[:3] == b"ID3":
        return _sniff_after_id3(data)
    return _sniff_sync(head)


def _sniff_after_id3(data: bytes) -> str | None:
    # ID3v2 size is a 28-bit syncsafe integer; the audio frames (MP3, or occasionally ADTS AAC) follow the tag.
    if len(data) < 10:
        return None
    size = (data[6] & 0x7F) << 21 | (data[7] & 0x7F) << 14 | (data[8] & 0x7F) << 7 | (data[9] & 0x7F)
    return _sniff_sync(data[10 + size:10 + size + 4])


def _sniff_sync(head: bytes) -> str | None:
    if len(head) < 2 or head[0] != 0xFF or (head[1] & 0xE0) != 0xE0:
        return None
    layer = (head[1] >> 1) & 0x03
    if layer == 0:
        return "aac" if (head[1] & 0xF0) == 0xF0 else None  # ADTS: 12-bit sync, layer 00
    return "mp3"


def _check_declared(fmt: str, filename: str | None) -> None:
    if not filename or "." not in filename:
        return
    declared = _EXTENSIONS.get(filename.rsplit(".", 1)[1].lower())
    if declared is not None and declared != fmt:
        raise AudioRejected("format_mismatch", f"the name says {declared} but the content is {fmt}")


# --- libsndfile path ---------------------------------------------------------------------------------------

_SOUNDFILE_ERRORS = (RuntimeError, ValueError, TypeError, OSError, EOFError, OverflowError, MemoryError)


def _decode_soundfile(data: bytes, fmt: str, limits: DecodeLimits) -> tuple[np.ndarray, int, int]:
    if fmt == "wav":
        _check_wav_header(data)
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            rate, channels = int(f.samplerate), int(f.channels)
            _check_rate_channels(rate, channels, limits)
            _check_claimed_length(int(f.frames), rate, channels, limits)
            frames = _read_blocks(f, rate, channels, limits)
    except AudioRejected:
        raise
    except _SOUNDFILE_ERRORS as exc:
        raise AudioRejected("corrupt", f"could not decode {fmt}: {exc}") from None
    if fmt == "flac":
        _check_flac_complete(data, len(frames))
    return frames, rate, channels


def _read_blocks(f: sf.SoundFile, rate: int, channels: int, limits: DecodeLimits) -> np.ndarray:
    """Read mono-mixed blocks under the sample cap and the deadline; shape (n,) float32 at the source rate."""
    cap = _frame_cap(rate, channels, limits)
    deadline = time.monotonic() + limits.timeout_s
    blocks: list[np.ndarray] = []
    total = 0
    while True:
        block = f.read(limits.block_frames, dtype="float32", always_2d=True)
        if block.shape[0] == 0:
            break
        total += block.shape[0]
        if total > cap:
            raise AudioRejected("too_long", f"decoded audio exceeds {cap} frames")
        if time.monotonic() > deadline:
            raise AudioRejected("decoder_timeout", f"decoding took over {limits.timeout_s} s")
        blocks.append(_to_mono(block))
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)


def _frame_cap(rate: int, channels: int, limits: DecodeLimits) -> int:
    return min(math.ceil(limits.max_duration_s * rate), limits.max_decoded_samples // max(channels, 1))


def _check_rate_channels(rate: int, channels: int, limits: DecodeLimits) -> None:
    if not limits.min_sample_rate <= rate <= limits.max_sample_rate:
        raise AudioRejected("bad_sample_rate", f"{rate} Hz is outside "
                            f"[{limits.min_sample_rate}, {limits.max_sample_rate}]")
    if not 1 <= channels <= limits.max_channels:
        raise AudioRejected("bad_channels", f"{channels} channels; at most {limits.max_channels}")


def _check_claimed_length(frames: int, rate: int, channels: int, limits: DecodeLimits) -> None:
    # Decompression bombs: a few kilobytes of FLAC/Ogg can claim hours. Refuse on the header, before decoding.
    if frames > _frame_cap(rate, channels, limits):
        raise AudioRejected("too_long", f"the header claims {frames / rate:.1f} s; limit "
                            f"{limits.max_duration_s} s / {limits.max_decoded_samples} samples")


def _check_wav_header(data: bytes) -> None:
    """Refuse a RIFF WAV whose data chunk claims more bytes than the file holds (libsndfile would pad)."""
    if data[:4] != b"RIFF":
        return  # RF64 keeps its sizes in ds64; leave it to libsndfile and the block cap
    pos = 12
    while pos + 8 <= len(data):
        chunk_id, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if chunk_id == b"data":
            # 0 and 0xFFFFFFFF mark a stream written without a final length: allowed, the data runs to the end.
            if size not in (0, 0xFFFFFFFF) and pos + 8 + size > len(data):
                raise AudioRejected("truncated", f"data chunk claims {size} bytes, "
                                    f"{len(data) - pos - 8} present")
            return
        pos += 8 + size + (size & 1)
    raise AudioRejected("truncated", "no data chunk")


def _check_flac_complete(data: bytes, decoded: int) -> None:
    # STREAMINFO (the first metadata block, mandatory) holds a 36-bit total sample count; 0 means unknown.
    if len(data) < 8 + 34 or data[4] & 0x7F != 0:
        return
    info = data[8:8 + 34]
    total = ((info[13] & 0x0F) << 32) | struct.unpack(">I", info[14:18])[0]
    if total and decoded < total:
        raise AudioRejected("truncated", f"STREAMINFO claims {total} samples, {decoded} decoded")


# --- ffmpeg path ---------------------------------------------------------------------------------------------


def _ffmpeg_exe() -> str:
    try:
        import imageio_ffmpeg
    except ImportError:
        raise AudioRejected("decoder_unavailable", "M4A/AAC needs imageio-ffmpeg, which is not installed") from None
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def _decode_ffmpeg(data: bytes, fmt: str, limits: DecodeLimits) -> tuple[np.ndarray, int, int]:
    if fmt == "mp4":
        _check_mp4_duration(data, limits)
    # Output stays at the source rate so clipping is measured before resampling; -ac 1 mixes down.
    cmd = [
        _ffmpeg_exe(), "-nostdin", "-hide_banner", "-nostats", "-loglevel", "info", "-threads", "1",
        "-protocol_whitelist", "pipe", "-f", _FFMPEG_DEMUXERS[fmt], "-i", "pipe:0",
        "-map", "0:a:0", "-vn", "-sn", "-dn", "-ac", "1", "-t", f"{limits.max_duration_s + 1:.3f}",
        "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1",
    ]
    cap_bytes = 4 * (limits.max_decoded_samples + 1)
    rc, out, err = _run_capped(cmd, data, limits.timeout_s, cap_bytes)
    rate, channels = _parse_ffmpeg_stream(err)
    if rc != 0 or rate is None or channels is None:
        raise AudioRejected("corrupt", f"ffmpeg could not decode {fmt}: {_last_line(err)}")
    _check_rate_channels(rate, channels, limits)
    frames = np.frombuffer(out[: len(out) // 4 * 4], dtype="<f4").astype(np.float32)
    if len(frames) > _frame_cap(rate, 1, limits) or len(frames) * channels > limits.max_decoded_samples:
        raise AudioRejected("too_long", f"decoded audio exceeds {limits.max_duration_s} s")
    return frames, rate, channels


def _check_mp4_duration(data: bytes, limits: DecodeLimits) -> None:
    """Refuse an MP4 whose movie header claims more than the duration limit (bomb check before decoding)."""
    moov = _find_box(data, 0, len(data), b"moov")
    mvhd = _find_box(data, moov[0], moov[1], b"mvhd") if moov else None
    if mvhd is None or mvhd[1] - mvhd[0] < 32:
        return  # no readable header: ffmpeg will refuse it or the output cap will stop it
    body = data[mvhd[0]:mvhd[1]]
    if body[0] == 1:
        timescale, duration = struct.unpack(">IQ", body[20:32])
    else:
        timescale, duration = struct.unpack(">II", body[12:20])
    if timescale and duration != 0xFFFFFFFF and duration / timescale > limits.max_duration_s:
        raise AudioRejected("too_long", f"the header claims {duration / timescale:.1f} s")


def _find_box(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    """(body_start, body_end) of the first ISO-BMFF box ``kind`` among the boxes in data[start:end]."""
    pos = start
    while pos + 8 <= end:
        size, box = struct.unpack(">I4s", data[pos:pos + 8])
        header = 8
        if size == 1 and pos + 16 <= end:
            size, header = struct.unpack(">Q", data[pos + 8:pos + 16])[0], 16
        elif size == 0:
            size = end - pos
        if size < header:
            return None
        if box == kind:
            return pos + header, min(pos + size, end)
        pos += size
    return None


_STREAM_RE = re.compile(r"Stream #0:\d+.*?: Audio: .*?, (\d+) Hz, ([^,\n]+)")
_LAYOUT_CHANNELS = {
    "mono": 1, "stereo": 2, "2.1": 3, "3.0": 3, "3.0(back)": 3, "4.0": 4, "quad": 4, "quad(side)": 4,
    "3.1": 4, "5.0": 5, "5.0(side)": 5, "4.1": 5, "5.1": 6, "5.1(side)": 6, "6.0": 6, "6.0(front)": 6,
    "hexagonal": 6, "6.1": 7, "6.1(back)": 7, "6.1(front)": 7, "7.0": 7, "7.0(front)": 7, "7.1": 8,
    "7.1(wide)": 8, "7.1(wide-side)": 8, "octagonal": 8, "downmix": 2,
}


def _parse_ffmpeg_stream(stderr: str) -> tuple[int | None, int | None]:
    """(rate, channels) of the first input audio stream from ffmpeg's log; channels 99 if the layout is unknown."""
    inputs = stderr.split("Output #0", 1)[0]
    m = _STREAM_RE.search(inputs)
    if m is None:
        return None, None
    layout = m.group(2).strip()
    n = re.match(r"(\d+) channels", layout)
    return int(m.group(1)), int(n.group(1)) if n else _LAYOUT_CHANNELS.get(layout, 99)


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else "no output"


def _run_capped(cmd: list[str], data: bytes, timeout_s: float, max_out: int) -> tuple[int, bytes, str]:
    """Run ``cmd`` with ``data`` on stdin; refuse past ``timeout_s`` or ``max_out`` stdout bytes (kills it)."""
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={"PATH": os.environ.get("PATH", "")}, close_fds=True)
    writer = threading.Thread(target=_feed, args=(proc, data), daemon=True)
    writer.start()
    try:
        out, err = _collect(proc, timeout_s, max_out)
        return proc.wait(timeout=max(0.1, timeout_s)), out, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        writer.join(timeout=1)


def _feed(proc: subprocess.Popen[bytes], data: bytes) -> None:
    assert proc.stdin is not None
    try:
        proc.stdin.write(data)
    except (BrokenPipeError, OSError):
        pass  # ffmpeg stopped reading (error or cap): the reader side reports why
    finally:
        try:
            proc.stdin.close()
        except OSError:
            pass


def _collect(proc: subprocess.Popen[bytes], timeout_s: float, max_out: int) -> tuple[bytes, str]:
    assert proc.stdout is not None and proc.stderr is not None
    deadline = time.monotonic() + timeout_s
    out, err = bytearray(), bytearray()
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ, out)
        sel.register(proc.stderr, selectors.EVENT_READ, err)
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AudioRejected("decoder_timeout", f"ffmpeg took over {timeout_s} s")
            for key, _ in sel.select(timeout=remaining):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                elif key.data is err:
                    if len(err) < 65536:  # keep the head of the log; drain the rest
                        err.extend(chunk)
                else:
                    out.extend(chunk)
                    if len(out) > max_out:
                        raise AudioRejected("too_long", f"decoded output exceeds {max_out} bytes")
    return bytes(out), err.decode("utf-8", "replace")


# --- common tail ---------------------------------------------------------------------------------------------


def _to_mono(block: np.ndarray) -> np.ndarray:
    """(frames, channels) -> (frames,) float32 by averaging channels."""
    return block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0].astype(np.float32)


def _finish(mono: np.ndarray, rate: int, channels: int, fmt: str, limits: DecodeLimits) -> DecodedAudio:
    if mono.size == 0:
        raise AudioRejected("too_short", "no audio samples")
    if not np.isfinite(mono).all():
        raise AudioRejected("non_finite", "the audio contains NaN or infinite samples")
    if len(mono) / rate > limits.max_duration_s:
        raise AudioRejected("too_long", f"{len(mono) / rate:.1f} s is over {limits.max_duration_s} s")
    clipping = clipping_ratio(mono)
    out = resample(mono, rate, limits.target_rate)
    out = normalize(out, limits)
    return DecodedAudio(samples=out, sample_rate=limits.target_rate, duration_s=len(out) / limits.target_rate,
                        source_format=fmt, source_channels=channels, source_rate=rate,
                        clipping_ratio=clipping)


def resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Polyphase resampling (scipy), shape (n,) -> (round(n * target / source),) float32."""
    if source_rate == target_rate:
        return samples.astype(np.float32, copy=False)
    g = math.gcd(source_rate, target_rate)
    up, down = target_rate // g, source_rate // g
    return resample_poly(samples, up, down).astype(np.float32)


def normalize(samples: np.ndarray, limits: DecodeLimits = DecodeLimits()) -> np.ndarray:
    """Peak to ``peak_target``, or RMS to ``rms_target_dbfs`` with the peak held under 1.0; silence unchanged."""
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if limits.normalize == "none" or peak < 1e-9:
        return np.clip(samples, -1.0, 1.0).astype(np.float32)
    if limits.normalize == "peak":
        gain = limits.peak_target / peak
    else:
        rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
        gain = min(10 ** (limits.rms_target_dbfs / 20) / max(rms, 1e-9), 0.999 / peak)
    return (samples * gain).astype(np.float32)


def clipping_ratio(samples: np.ndarray, min_run: int = 3, rel_level: float = 0.999) -> float:
    """Fraction of samples in runs of >= ``min_run`` consecutive samples at >= ``rel_level`` x the peak.

    Hard clipping flattens the peaks into runs; natural speech touches its peak in isolated samples.
    Scale-invariant, so it works whether the clipping happened at full scale or before a gain change.
    """
    if samples.size == 0:
        return 0.0
    mag = np.abs(samples)
    peak = float(mag.max())
    if peak <= 0:
        return 0.0
    hot = np.concatenate(([0], (mag >= rel_level * peak).astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(hot))
    lengths = edges[1::2] - edges[0::2]
    return float(lengths[lengths >= min_run].sum() / samples.size)
