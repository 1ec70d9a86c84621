"""The forensic report for one Detection: verdict, watermark scores and segments, provenance, hashes, versions.

The service keeps no submitted audio (chain of custody keeps the file's hash), so the report always
draws the watermark's per-segment timeline from the stored verdict, and draws the waveform and
spectrogram only when the caller supplies the audio again at report time (`issue_forensic_report_for_file`
checks that it is the same file by its SHA-256 first). `gather_forensic_report` reduces the audio to a
small envelope and a coarse spectrogram; `render_forensic_report` is pure and needs no database.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from typing import Any

import numpy as np
from django.utils import timezone
from reportlab.graphics.shapes import Drawing, Line, Polygon, Rect, String
from reportlab.lib import colors
from reportlab.platypus import Flowable, KeepTogether

from detection.models import Detection
from governance import voice_checks
from governance.errors import GovernanceError
from governance.reports import (
    BODY,
    FRAME_WIDTH,
    H2,
    SMALL,
    build_pdf,
    kv_table,
    markup,
    para,
    record_issue,
    verdict_line,
    when,
)
from synthesis.models import SynthesisRecord
from voicegate.audio import watermark

# voicegate.audio.watermark defines no version constant yet; this names the codec the detector ran
# (layout and coding as described in that module's docstring). A Detection that recorded its own
# "codec_version" in its verdict wins over this.
WATERMARK_CODEC_VERSION = getattr(
    watermark, "CODEC_VERSION", "voicegate-wm-1 (STDM, 16 bands 344-3344 Hz, 56-bit payload, 0.5 s segments)"
)
WAVEFORM_COLUMNS = 600
SPECTROGRAM_BANDS = 64
SPECTROGRAM_FRAMES = 240
SPECTROGRAM_LEVELS = 16
SPECTROGRAM_MAX_HZ = 8000.0
_DYNAMIC_RANGE_DB = 70.0


class AudioDoesNotMatch(GovernanceError):
    """The audio supplied for the report is not the file the detection checked."""

    code = "audio_mismatch"


@dataclass(frozen=True)
class SegmentLine:
    start: float  # seconds
    end: float
    marked: bool
    score: float


@dataclass(frozen=True)
class ProvenanceLine:
    record_id: int
    created_at: datetime
    profile: str
    purpose: str
    engine: str
    key_prefix: str
    text_sha256: str
    output_sha256: str
    outcome: str
    watermark_key_id: str


@dataclass(frozen=True)
class Waveform:
    """Min and max of the samples in each of `len(low)` equal columns over `duration_s` (in [-1, 1])."""

    duration_s: float
    low: tuple[float, ...]
    high: tuple[float, ...]


@dataclass(frozen=True)
class Spectrogram:
    """levels[band][frame]: power in 0..SPECTROGRAM_LEVELS-1 (top = loudest, 70 dB range), bands up to max_hz."""

    duration_s: float
    max_hz: float
    levels: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class ForensicReportData:
    detection_id: int
    checked_at: datetime
    submitted_by: str
    organization_name: str
    file_sha256: str
    file_bytes: int
    duration_s: float
    marked: bool
    record_id: int | None
    watermark_key_id: str
    confidence_z: float
    marked_fraction: float
    false_positive_bound: float
    segments: tuple[SegmentLine, ...]
    provenance: ProvenanceLine | None  # only when the record belongs to the detection's organization
    provenance_withheld: bool
    codec_version: str
    software_version: str
    generated_at: datetime
    waveform: Waveform | None = None
    spectrogram: Spectrogram | None = None
    audio_verified: bool = False  # the supplied audio's file hash matched file_sha256
    overall_verdict: str = ""
    reasons: tuple[str, ...] = ()
    classifier: tuple[tuple[str, str], ...] = ()  # (label, value) rows: probability, band, model
    voice_matches: tuple[tuple[str, str], ...] = ()  # (voice, "score (above/below threshold)")
    alterations: tuple[str, ...] = ()  # what was done to a marked clip since issue (time-scale, echo)


# ---- gathering --------------------------------------------------------------------------------------


def gather_forensic_report(
    detection: Detection, samples: np.ndarray | None = None, sample_rate: int | None = None, *, audio_verified: bool = False
) -> ForensicReportData:
    """The report's data; `samples` (float, shape (n,), mono, in [-1, 1]) at `sample_rate` Hz add the pictures."""
    verdict: dict[str, Any] = detection.watermark or {}
    record = detection.synthesis_record
    owned = record is not None and record.organization_id == detection.organization_id
    audio = samples is not None and sample_rate is not None and len(samples) > 0
    return ForensicReportData(
        detection_id=detection.pk,
        checked_at=detection.created_at,
        submitted_by=detection.submitted_by,
        organization_name=detection.organization.name if detection.organization_id else "—",
        file_sha256=detection.file_sha256,
        file_bytes=detection.file_bytes,
        duration_s=detection.duration_s,
        marked=bool(verdict.get("marked")),
        record_id=verdict.get("record_id"),
        watermark_key_id=str(verdict.get("key_id") or "—"),
        confidence_z=float(verdict.get("confidence_z") or 0.0),
        marked_fraction=float(verdict.get("marked_fraction") or 0.0),
        false_positive_bound=float(verdict.get("false_positive_bound") or 0.0),
        segments=tuple(SegmentLine(float(s["start"]), float(s["end"]), bool(s["marked"]), float(s["score"])) for s in verdict.get("segments", [])),
        provenance=_provenance(record) if owned and record is not None else None,
        provenance_withheld=record is not None and not owned,
        codec_version=str(verdict.get("codec_version") or WATERMARK_CODEC_VERSION),
        software_version=_software_version(),
        generated_at=timezone.now(),
        waveform=waveform(samples, sample_rate) if audio else None,  # type: ignore[arg-type]
        spectrogram=spectrogram(samples, sample_rate) if audio else None,  # type: ignore[arg-type]
        audio_verified=audio and audio_verified,
        overall_verdict=detection.verdict,
        reasons=tuple(detection.reasons or ()),
        classifier=_classifier_rows(detection.classifier),
        voice_matches=_voice_rows(detection.voice_matches or {}),
        alterations=_alterations(verdict),
    )


def _alterations(verdict: dict[str, Any]) -> tuple[str, ...]:
    """The changes the detector undid to read a marked clip, in words."""
    found = []
    scale = verdict.get("time_scale")
    if verdict.get("marked") and scale and abs(float(scale) - 1.0) > 1e-4:
        found.append(f"time-scale {float(scale):.4f}: played at {100.0 / float(scale):.1f}% of its issued speed, pitch kept")
    echo = verdict.get("echo")
    if verdict.get("marked") and echo:
        found.append(f"an echo {1000.0 * float(echo['delay_s']):.0f} ms later at gain {float(echo['gain']):.2f}, removed to read the mark")
    return tuple(found)


def _classifier_rows(score: dict[str, Any] | None) -> tuple[tuple[str, str], ...]:
    if not score:
        return ()
    return (
        ("Probability synthetic", f"{float(score['probability_synthetic']):.3f} (calibrated)"),
        ("Band", str(score["band"])),
        ("Model", str(score.get("model", "—"))),
    )


def _voice_rows(matches: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    threshold = matches.get("threshold")
    return tuple(
        (f"{m['kind'].replace('_', ' ')} {m['name']}",
         f"{m['score']:.3f} ({'above' if m['above_threshold'] else 'below'} threshold {threshold})")
        for m in matches.get("matches", [])
    )


def _provenance(record: SynthesisRecord) -> ProvenanceLine:
    return ProvenanceLine(
        record_id=record.pk,
        created_at=record.created_at,
        profile=f"{record.profile.name} (#{record.profile_id})",
        purpose=record.purpose,
        engine=record.engine,
        key_prefix=f"{record.api_key.prefix}…" if record.api_key_id else "(no key)",
        text_sha256=record.text_sha256,
        output_sha256=record.output_sha256,
        outcome=record.outcome,
        watermark_key_id=record.watermark_key_id,
    )


def _software_version() -> str:
    try:
        return f"voicegate {metadata.version('voicegate')}"
    except metadata.PackageNotFoundError:
        return "voicegate (version unknown)"


def waveform(samples: np.ndarray, sample_rate: int, columns: int = WAVEFORM_COLUMNS) -> Waveform:
    x = _mono(samples)
    edges = np.linspace(0, len(x), min(columns, len(x)) + 1).astype(int)
    low = tuple(round(float(x[a:b].min()), 4) for a, b in itertools.pairwise(edges))
    high = tuple(round(float(x[a:b].max()), 4) for a, b in itertools.pairwise(edges))
    return Waveform(len(x) / sample_rate, low, high)


def spectrogram(samples: np.ndarray, sample_rate: int) -> Spectrogram:
    """A coarse spectrogram: SPECTROGRAM_FRAMES Hann-windowed frames spread over the clip, linear bands."""
    x = _mono(samples)
    n_fft = 512 if sample_rate <= 24000 else 1024
    x = np.pad(x, (0, max(0, n_fft - len(x))))
    starts = np.linspace(0, len(x) - n_fft, SPECTROGRAM_FRAMES).astype(int)
    frames = np.stack([x[s : s + n_fft] for s in starts]) * np.hanning(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (frames, bins)
    max_hz = min(SPECTROGRAM_MAX_HZ, sample_rate / 2)
    top_bin = int(max_hz / (sample_rate / n_fft))
    bands = np.array_split(np.arange(1, top_bin + 1), SPECTROGRAM_BANDS)
    banded = np.stack([power[:, b].mean(axis=1) for b in bands])  # (bands, frames)
    db = 10 * np.log10(banded + 1e-12)
    scaled = np.clip((db - (db.max() - _DYNAMIC_RANGE_DB)) / _DYNAMIC_RANGE_DB, 0, 1)
    levels = np.minimum((scaled * SPECTROGRAM_LEVELS).astype(int), SPECTROGRAM_LEVELS - 1)
    return Spectrogram(len(samples) / sample_rate, float(max_hz), tuple(tuple(int(v) for v in row) for row in levels))


def _mono(samples: np.ndarray) -> np.ndarray:
    x = np.asarray(samples, dtype=np.float64)
    return x.mean(axis=1) if x.ndim == 2 else x.reshape(-1)


# ---- issuing ----------------------------------------------------------------------------------------


def issue_forensic_report(
    detection: Detection, *, actor: str, samples: np.ndarray | None = None, sample_rate: int | None = None, audio_verified: bool = False
) -> bytes:
    content = render_forensic_report(gather_forensic_report(detection, samples, sample_rate, audio_verified=audio_verified))
    record_issue(
        "forensic_report", content, actor=actor, organization_id=detection.organization_id, target=detection,
        data={"file_sha256": detection.file_sha256, "with_audio": samples is not None},
    )
    return content


def issue_forensic_report_for_file(detection: Detection, data: bytes, filename: str | None, *, actor: str) -> bytes:
    """The report with waveform and spectrogram, after checking the file is the one the detection checked."""
    if hashlib.sha256(data).hexdigest() != detection.file_sha256:
        raise AudioDoesNotMatch(f"this file's SHA-256 differs from the one detection #{detection.pk} checked")
    audio = voice_checks.decode(data, filename)
    return issue_forensic_report(detection, actor=actor, samples=audio.samples, sample_rate=audio.sample_rate, audio_verified=True)


# ---- rendering --------------------------------------------------------------------------------------

_MARKED = colors.HexColor("#2e9e55")
_UNMARKED = colors.HexColor("#c9c9c9")
_WAVE = colors.HexColor("#2f5d8a")


def render_forensic_report(data: ForensicReportData) -> bytes:
    story: list[Flowable] = [
        _verdict(data),
        kv_table([
            ("Detection", f"#{data.detection_id}"),
            ("Checked at", when(data.checked_at)),
            ("Submitted by", data.submitted_by),
            ("Organization", data.organization_name),
            ("Duration", f"{data.duration_s:.2f} s"),
            ("File size", f"{data.file_bytes} bytes"),
            ("Generated", when(data.generated_at)),
        ]),
        markup("Chain of custody", H2),
        kv_table([("File SHA-256", data.file_sha256)]),
        para("The service keeps only this hash of the submitted file, never the audio.", SMALL),
        markup("Watermark scores", H2),
        kv_table([
            ("Verdict", "MARKED" if data.marked else "NOT MARKED"),
            ("Confidence (z)", f"{data.confidence_z:.2f} standard deviations above an unmarked clip"),
            ("Marked fraction", f"{data.marked_fraction:.1%} of 0.5 s segments"),
            ("Altered since issue", "; ".join(data.alterations) or ("none found" if data.marked else "—")),
            ("False-positive bound", f"{data.false_positive_bound:.3g}"),
            ("Watermark key id", data.watermark_key_id),
        ]),
        KeepTogether([markup("Watermark segments", H2), _timeline_drawing(data)]),
        *_opinion_sections(data),
        *_audio_section(data),
        markup("Provenance", H2),
        *_provenance_section(data),
        markup("Versions", H2),
        kv_table([
            ("Watermark codec", data.codec_version),
            ("Classifier", dict(data.classifier).get("Model", "—")),
            ("Software", data.software_version),
        ]),
    ]
    return build_pdf("Forensic report", f"detection #{data.detection_id} · {data.file_sha256[:16]}…", story)


def _opinion_sections(data: ForensicReportData) -> list[Flowable]:
    """The combined verdict with its reasons, the classifier's score and the closest voices."""
    sections: list[Flowable] = []
    if data.overall_verdict:
        sections += [markup("Overall verdict", H2), kv_table([("Verdict", data.overall_verdict.replace("_", " "))])]
        sections += [para(f"• {reason}", SMALL) for reason in data.reasons]
    if data.classifier:
        sections += [markup("Synthetic-speech classifier", H2), kv_table(list(data.classifier))]
    if data.voice_matches:
        sections += [markup("Closest voices", H2), kv_table(list(data.voice_matches))]
    return sections


def _verdict(data: ForensicReportData) -> Flowable:
    if data.marked:
        return verdict_line(True, f"VERDICT: MARKED by this service (synthesis record #{data.record_id})", "")
    return verdict_line(False, "", "VERDICT: NOT MARKED (no watermark of this service verified)")


def _provenance_section(data: ForensicReportData) -> list[Flowable]:
    if data.provenance is not None:
        p = data.provenance
        return [kv_table([
            ("Synthesis record", f"#{p.record_id} ({p.outcome})"),
            ("Synthesized at", when(p.created_at)),
            ("Voice profile", p.profile),
            ("Purpose", p.purpose),
            ("Engine", p.engine),
            ("API key", p.key_prefix),
            ("Text SHA-256", p.text_sha256),
            ("Output SHA-256", p.output_sha256 or "—"),
            ("Watermark key id", p.watermark_key_id),
        ])]
    if data.provenance_withheld:
        return [para("The mark names a record of another organization; its details are not disclosed here.", BODY)]
    return [para("No synthesis record: the clip carries no watermark of this service.", BODY)]


def _audio_section(data: ForensicReportData) -> list[Flowable]:
    if data.waveform is None or data.spectrogram is None:
        return [para("Waveform and spectrogram: not drawn. The service does not keep submitted audio; supply the file "
                     "again when generating the report to include them.", SMALL)]
    source = "its SHA-256 matches the file hash above" if data.audio_verified else "not checked against the file hash"
    return [
        KeepTogether([markup("Waveform", H2), _waveform_drawing(data.waveform, data.segments)]),
        KeepTogether([markup("Spectrogram", H2), _spectrogram_drawing(data.spectrogram, data.segments)]),
        para(f"Drawn from audio supplied when this report was generated ({source}). Green: segments where the mark was found.", SMALL),
    ]


def _x(seconds: float, duration: float, x0: float, width: float) -> float:
    return x0 + width * min(max(seconds / duration, 0.0), 1.0) if duration > 0 else x0


def _segment_strip(drawing: Drawing, segments: tuple[SegmentLine, ...], duration: float, x0: float, y: float, width: float, height: float) -> None:
    for s in segments:
        a, b = _x(s.start, duration, x0, width), _x(s.end, duration, x0, width)
        drawing.add(Rect(a, y, max(b - a, 0.5), height, fillColor=_MARKED if s.marked else _UNMARKED, strokeColor=colors.white, strokeWidth=0.4))


def _time_axis(drawing: Drawing, duration: float, x0: float, y: float, width: float) -> None:
    step = next((t for t in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300) if duration / t <= 12), 600)
    t = 0.0
    while t <= duration + 1e-9:
        x = _x(t, duration, x0, width)
        drawing.add(Line(x, y, x, y - 3, strokeWidth=0.5))
        drawing.add(String(x, y - 11, f"{t:g} s", fontSize=6.5, textAnchor="middle"))
        t += step


def _timeline_drawing(data: ForensicReportData) -> Flowable:
    if not data.segments:
        return para("No segments: the mark was not verified, so no segment map was computed.", SMALL)
    duration = max(data.duration_s, data.segments[-1].end)
    drawing = Drawing(FRAME_WIDTH, 46)
    x0, width = 4, FRAME_WIDTH - 8
    _segment_strip(drawing, data.segments, duration, x0, 22, width, 16)
    _time_axis(drawing, duration, x0, 22, width)
    marked = sum(s.marked for s in data.segments)
    drawing.add(String(x0, 40, f"{marked} of {len(data.segments)} segments marked (0.5 s each; green = marked, grey = not)", fontSize=7.5))
    return drawing


def _waveform_drawing(wave: Waveform, segments: tuple[SegmentLine, ...]) -> Flowable:
    height, x0, width = 90.0, 4.0, FRAME_WIDTH - 8
    drawing = Drawing(FRAME_WIDTH, height + 22)
    base, half = 22 + height / 2, height / 2 - 2
    for s in segments:
        if s.marked:
            a, b = _x(s.start, wave.duration_s, x0, width), _x(s.end, wave.duration_s, x0, width)
            drawing.add(Rect(a, 22, b - a, height, fillColor=colors.HexColor("#e3f4e8"), strokeColor=None))
    n = len(wave.low)
    xs = [x0 + width * (i + 0.5) / n for i in range(n)]
    upper = [v for x, hi in zip(xs, wave.high) for v in (x, base + hi * half)]
    lower = [v for x, lo in zip(reversed(xs), reversed(wave.low)) for v in (x, base + lo * half)]
    drawing.add(Polygon(upper + lower, fillColor=_WAVE, strokeColor=_WAVE, strokeWidth=0.3))
    _time_axis(drawing, wave.duration_s, x0, 22, width)
    return drawing


def _spectrogram_drawing(spec: Spectrogram, segments: tuple[SegmentLine, ...]) -> Flowable:
    height, x0, width = 110.0, 30.0, FRAME_WIDTH - 34
    drawing = Drawing(FRAME_WIDTH, height + 34)
    y0 = 32.0
    bands, frames = len(spec.levels), len(spec.levels[0]) if spec.levels else 0
    cell_w, cell_h = width / max(frames, 1), height / max(bands, 1)
    palette = [_heat(i / (SPECTROGRAM_LEVELS - 1)) for i in range(SPECTROGRAM_LEVELS)]
    drawing.add(Rect(x0, y0, width, height, fillColor=palette[0], strokeColor=None))
    for band, row in enumerate(spec.levels):
        start = 0
        for frame in range(1, frames + 1):  # one rectangle per run of equal level: a fraction of the cells
            if frame == frames or row[frame] != row[start]:
                if row[start] > 0:
                    drawing.add(Rect(x0 + start * cell_w, y0 + band * cell_h, (frame - start) * cell_w + 0.2, cell_h + 0.2, fillColor=palette[row[start]], strokeColor=None))
                start = frame
    for hz in range(0, int(spec.max_hz) + 1, 2000):
        y = y0 + height * hz / spec.max_hz
        drawing.add(String(x0 - 3, y - 2, f"{hz // 1000} kHz", fontSize=6.5, textAnchor="end"))
    _segment_strip(drawing, segments, spec.duration_s, x0, y0 - 6, width, 5)
    _time_axis(drawing, spec.duration_s, x0, y0 - 7, width)
    return drawing


def _heat(v: float) -> colors.Color:
    """Dark blue -> magenta -> yellow, monotone in lightness so it prints legibly in grey too."""
    stops = [(0.0, (0.05, 0.03, 0.2)), (0.5, (0.7, 0.15, 0.45)), (1.0, (1.0, 0.95, 0.35))]
    for (a, ca), (b, cb) in itertools.pairwise(stops):
        if v <= b:
            t = (v - a) / (b - a)
            return colors.Color(*(p + (q - p) * t for p, q in zip(ca, cb)))
    return colors.Color(*stops[-1][1])

