"""Compliance reports: the audit report, the owner dossier, the erasure certificate, and audit exports.

Each report is two steps: a service (`gather_...`) reads the database into a plain frozen dataclass,
and a pure `render_...(data) -> bytes` draws it with reportlab, so rendering is tested without the
database. The `issue_...` functions do both and write the "report.generated" audit event (invariant 3:
every export is audited) with the SHA-256 of the bytes handed out. PDFs are rendered with reportlab's
`invariant` mode, so the same data always gives the same bytes and that hash can be reproduced.

Nothing here reads biometric data: reports carry hashes, scores and counts, never audio, embeddings,
transcripts or keys.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from xml.sax.saxutils import escape

from django.db.models import Count, F
from django.db.models.fields.json import KT
from django.db.models.functions import TruncDate
from django.utils import timezone
from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from governance import audit
from governance.errors import GovernanceError
from governance.models import (
    AuditEvent,
    BiometricBlob,
    ConsentArtifact,
    ErasureRequest,
    IdentityVerification,
    Organization,
    VoiceOwner,
    VoiceProfile,
)
from synthesis.models import SynthesisRecord

EXPIRY_HORIZON = timedelta(days=30)
MAX_PERIOD_DAYS = 3660
PDF = "application/pdf"
EXPORT_FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
EXPORT_COLUMNS = ("sequence", "created_at", "actor", "action", "target", "data", "row_hash")


class CertificateNotIssued(GovernanceError):
    """The erasure has not completed, so there is no certificate to print."""

    code = "certificate_not_issued"


class InvalidReportRequest(GovernanceError):
    """An empty or over-long period, or an unknown export format (views validate first; services check too)."""

    code = "invalid_report_request"


# ---- data -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CountRow:
    label: str
    count: int


@dataclass(frozen=True)
class ChainResult:
    ok: bool
    rows_checked: int
    first_bad_sequence: int | None = None
    problem: str = ""


@dataclass(frozen=True)
class ConsentLine:
    consent_id: int
    profile: str
    owner_id: int
    purposes: tuple[str, ...]
    valid_until: datetime
    content_sha256: str


@dataclass(frozen=True)
class ErasureLine:
    request_id: int
    owner_id: int
    completed_at: datetime
    data_key_destroyed: bool
    certificate_sha256: str


@dataclass(frozen=True)
class AuditReportData:
    organization_id: int
    organization_name: str
    start: date  # inclusive
    end: date  # inclusive
    generated_at: datetime
    syntheses_total: int
    syntheses_by_profile: tuple[CountRow, ...]
    syntheses_by_key: tuple[CountRow, ...]
    syntheses_timeline: tuple[CountRow, ...]  # one row per day, week or month (see timeline_unit)
    timeline_unit: str
    decisions_allowed: int
    refusals_by_reason: tuple[CountRow, ...]
    consents_expiring: tuple[ConsentLine, ...]  # live now and lapsing within EXPIRY_HORIZON of generated_at
    consents_expired: tuple[ConsentLine, ...]  # window ended inside the period
    erasures: tuple[ErasureLine, ...]
    chain: ChainResult


@dataclass(frozen=True)
class IdentityLine:
    verification_id: int
    method: str
    status: str
    requested_at: datetime
    decided_at: datetime | None
    decided_by: str
    expires_at: datetime | None
    evidence_sha256: str


@dataclass(frozen=True)
class ConsentDossierLine:
    consent_id: int
    profile: str
    purposes: tuple[str, ...]
    valid_from: datetime
    valid_until: datetime
    status: str  # verification status, or "revoked"
    content_sha256: str
    statement_wer: float | None = None
    statement_threshold: float | None = None
    statement_passed: bool | None = None
    speaker_score: float | None = None
    speaker_threshold: float | None = None
    speaker_passed: bool | None = None
    officer_override: bool = False


@dataclass(frozen=True)
class LifecycleLine:
    profile: str
    from_status: str
    to_status: str
    at: datetime
    actor: str


@dataclass(frozen=True)
class UsageLine:
    profile: str
    purpose: str
    syntheses: int
    seconds: float


@dataclass(frozen=True)
class OwnerDossierData:
    owner_id: int
    display_name: str  # "erased owner #N" once erased
    email: str
    external_ref: str
    organization_name: str
    registered_at: datetime
    erased_at: datetime | None
    generated_at: datetime
    identity: tuple[IdentityLine, ...]
    consents: tuple[ConsentDossierLine, ...]
    profiles: tuple[CountRow, ...]  # label "name (#id): status"; count unused (0)
    lifecycle: tuple[LifecycleLine, ...]
    usage: tuple[UsageLine, ...]
    stored_biometric_objects: tuple[CountRow, ...]  # encrypted blobs held, by kind (counts only)
    erasures: tuple[ErasureLine, ...]


@dataclass(frozen=True)
class ErasureCertificateData:
    request_id: int
    owner_id: int
    organization_name: str
    requested_by: str
    certificate: dict[str, Any]  # the stored certificate, signature included
    certificate_sha256: str
    generated_at: datetime

    @property
    def canonical_json(self) -> str:
        """The text certificate_sha256 covers: the certificate without its signature, canonical JSON."""
        unsigned = {k: v for k, v in self.certificate.items() if k != "signature_hmac_sha256"}
        return json.dumps(unsigned, sort_keys=True, separators=(",", ":"))


# ---- periods ----------------------------------------------------------------------------------------


def period_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00, the day after end 00:00) in the current time zone; refuses an empty or huge period."""
    if end < start:
        raise InvalidReportRequest("the period ends before it starts")
    if (end - start).days >= MAX_PERIOD_DAYS:
        raise InvalidReportRequest(f"the period is longer than {MAX_PERIOD_DAYS} days")
    zone = timezone.get_current_timezone()
    return (
        timezone.make_aware(datetime.combine(start, time.min), zone),
        timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min), zone),
    )


# ---- gathering --------------------------------------------------------------------------------------


def gather_audit_report(organization: Organization, start: date, end: date) -> AuditReportData:
    since, until = period_bounds(start, end)
    now = timezone.now()
    syntheses = SynthesisRecord.objects.filter(organization=organization, created_at__gte=since, created_at__lt=until)
    decisions = AuditEvent.objects.filter(
        action="synthesis.decision", organization_id=organization.pk, created_at__gte=since, created_at__lt=until
    )
    unit, timeline = _timeline(syntheses, start, end)
    return AuditReportData(
        organization_id=organization.pk,
        organization_name=organization.name,
        start=start,
        end=end,
        generated_at=now,
        syntheses_total=syntheses.count(),
        syntheses_by_profile=_counts(syntheses, "profile_id", _profile_labels(organization)),
        syntheses_by_key=_counts(syntheses, "api_key__prefix", lambda prefix: f"{prefix}…" if prefix else "(no key)"),
        syntheses_timeline=timeline,
        timeline_unit=unit,
        decisions_allowed=decisions.filter(data__allowed=True).count(),
        refusals_by_reason=_counts(decisions.filter(data__allowed=False).annotate(reason=KT("data__reason")), "reason", str),
        consents_expiring=_consent_lines(
            _org_consents(organization).filter(
                revoked_at__isnull=True,
                verification_status=ConsentArtifact.Verification.VERIFIED,
                valid_until__gt=now,
                valid_until__lte=now + EXPIRY_HORIZON,
            )
        ),
        consents_expired=_consent_lines(
            _org_consents(organization)
            .filter(valid_until__gte=since, valid_until__lt=until)
            .exclude(revoked_at__lt=F("valid_until"))
        ),
        erasures=_erasure_lines(
            ErasureRequest.objects.filter(
                owner__organization=organization,
                status=ErasureRequest.Status.COMPLETED,
                completed_at__gte=since,
                completed_at__lt=until,
            )
        ),
        chain=_chain_result(),
    )


def gather_owner_dossier(owner: VoiceOwner) -> OwnerDossierData:
    profiles = list(VoiceProfile.objects.filter(owner=owner).order_by("pk"))
    names = {p.pk: _profile_label(p) for p in profiles}
    return OwnerDossierData(
        owner_id=owner.pk,
        display_name=str(owner),
        email=owner.email,
        external_ref=owner.external_ref,
        organization_name=owner.organization.name,
        registered_at=owner.created_at,
        erased_at=owner.erased_at,
        generated_at=timezone.now(),
        identity=tuple(_identity_line(v) for v in owner.identity_verifications.select_related("decided_by").order_by("pk")),
        consents=tuple(
            _consent_dossier_line(c, names[c.profile_id])
            for c in ConsentArtifact.objects.filter(profile__owner=owner).order_by("pk")
        ),
        profiles=tuple(CountRow(f"{names[p.pk]}: {p.status}", 0) for p in profiles),
        lifecycle=_lifecycle(names),
        usage=_usage(owner, names),
        stored_biometric_objects=_counts(BiometricBlob.objects.filter(owner=owner), "kind", str),
        erasures=_erasure_lines(owner.erasure_requests.filter(status=ErasureRequest.Status.COMPLETED)),
    )


def gather_erasure_certificate(request: ErasureRequest) -> ErasureCertificateData:
    if request.status != ErasureRequest.Status.COMPLETED or not request.certificate_sha256:
        raise CertificateNotIssued(f"erasure #{request.pk} has not completed; no certificate was issued")
    return ErasureCertificateData(
        request_id=request.pk,
        owner_id=request.owner_id,
        organization_name=request.owner.organization.name,
        requested_by=request.requested_by,
        certificate=dict(request.certificate),
        certificate_sha256=request.certificate_sha256,
        generated_at=timezone.now(),
    )


def _org_consents(organization: Organization) -> Any:
    return ConsentArtifact.objects.filter(profile__owner__organization=organization).select_related("profile")


def _profile_label(profile: VoiceProfile) -> str:
    return f"{profile.name} (#{profile.pk})"


def _profile_labels(organization: Organization) -> Callable[[Any], str]:
    names = dict(VoiceProfile.objects.filter(owner__organization=organization).values_list("pk", "name"))
    return lambda pk: f"{names.get(pk, '?')} (#{pk})"


def _counts(queryset: Any, field: str, label: Callable[[Any], str]) -> tuple[CountRow, ...]:
    """Rows grouped by `field`, largest first (ties by label, so output is stable)."""
    rows = queryset.order_by().values(field).annotate(n=Count("pk"))
    found = [CountRow(label(row[field]), row["n"]) for row in rows]
    return tuple(sorted(found, key=lambda r: (-r.count, r.label)))


def _timeline(syntheses: Any, start: date, end: date) -> tuple[str, tuple[CountRow, ...]]:
    """Syntheses per day (periods up to a month), per week (up to half a year) or per month, zeros included."""
    per_day = dict(syntheses.annotate(day=TruncDate("created_at")).order_by().values("day").annotate(n=Count("pk")).values_list("day", "n"))
    span = (end - start).days + 1
    unit, bucket = (
        ("day", lambda d: d)
        if span <= 31
        else ("week", lambda d: d - timedelta(days=d.weekday()))
        if span <= 183
        else ("month", lambda d: d.replace(day=1))
    )
    totals: dict[date, int] = {}
    for offset in range(span):
        day = start + timedelta(days=offset)
        totals[bucket(day)] = totals.get(bucket(day), 0) + per_day.get(day, 0)
    fmt = "%Y-%m" if unit == "month" else "%m-%d"
    return unit, tuple(CountRow(key.strftime(fmt), n) for key, n in sorted(totals.items()))


def _consent_lines(consents: Iterable[ConsentArtifact]) -> tuple[ConsentLine, ...]:
    return tuple(
        ConsentLine(c.pk, _profile_label(c.profile), c.profile.owner_id, tuple(c.purposes), c.valid_until, c.content_sha256)
        for c in sorted(consents, key=lambda c: (c.valid_until, c.pk))
    )


def _erasure_lines(requests: Iterable[ErasureRequest]) -> tuple[ErasureLine, ...]:
    return tuple(
        ErasureLine(r.pk, r.owner_id, r.completed_at, bool(r.certificate.get("data_key_destroyed")), r.certificate_sha256)
        for r in sorted(requests, key=lambda r: (r.completed_at, r.pk))
    )


def _chain_result() -> ChainResult:
    # The chain is one for the whole installation: a break anywhere makes every organization's log suspect.
    found = audit.verify_chain()
    return ChainResult(found.ok, found.rows_checked, found.first_bad_sequence, found.problem)


def _identity_line(v: IdentityVerification) -> IdentityLine:
    return IdentityLine(
        verification_id=v.pk,
        method=v.get_method_display(),
        status=v.status,
        requested_at=v.created_at,
        decided_at=v.decided_at,
        decided_by=v.decided_by.get_username() if v.decided_by is not None else "",
        expires_at=v.expires_at,
        evidence_sha256=v.evidence_sha256,
    )


def _consent_dossier_line(c: ConsentArtifact, profile: str) -> ConsentDossierLine:
    # Only the numbers of the automated check: its transcript (and the transcript's hash) stay out.
    automated = c.verification_results.get("automated") or {}
    words, voice = automated.get("statement") or {}, automated.get("speaker") or {}
    return ConsentDossierLine(
        consent_id=c.pk,
        profile=profile,
        purposes=tuple(c.purposes),
        valid_from=c.valid_from,
        valid_until=c.valid_until,
        status="revoked" if c.revoked_at is not None else c.verification_status,
        content_sha256=c.content_sha256,
        statement_wer=_number(words.get("wer")),
        statement_threshold=_number(words.get("threshold")),
        statement_passed=words.get("passed"),
        speaker_score=_number(voice.get("score")),
        speaker_threshold=_number(voice.get("threshold")),
        speaker_passed=voice.get("passed"),
        officer_override="officer_override" in c.verification_results,
    )


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _lifecycle(names: dict[int, str]) -> tuple[LifecycleLine, ...]:
    events = AuditEvent.objects.filter(
        action="profile.status_changed", target_type=VoiceProfile._meta.label, target_id__in=[str(pk) for pk in names]
    ).order_by("sequence")
    return tuple(
        LifecycleLine(names[int(e.target_id)], str(e.data.get("from", "")), str(e.data.get("to", "")), e.created_at, e.actor)
        for e in events
    )


def _usage(owner: VoiceOwner, names: dict[int, str]) -> tuple[UsageLine, ...]:
    totals: dict[tuple[int, str], list[float]] = defaultdict(lambda: [0, 0.0])
    for profile_id, purpose, seconds in SynthesisRecord.objects.filter(profile__owner=owner).values_list("profile_id", "purpose", "duration_s"):
        totals[(profile_id, purpose)][0] += 1
        totals[(profile_id, purpose)][1] += seconds or 0.0
    return tuple(
        UsageLine(names.get(pid, f"#{pid}"), purpose, int(n), round(s, 1)) for (pid, purpose), (n, s) in sorted(totals.items())
    )


# ---- exports ----------------------------------------------------------------------------------------


def export_audit_events(organization: Organization, start: date, end: date, fmt: str, *, actor: str) -> tuple[bytes, str]:
    """The organization's audit events in the period as CSV or JSON; the export itself is audited."""
    if fmt not in EXPORT_FORMATS:
        raise InvalidReportRequest(f"unknown export format {fmt!r}; use one of {sorted(EXPORT_FORMATS)}")
    since, until = period_bounds(start, end)
    events = AuditEvent.objects.filter(organization_id=organization.pk, created_at__gte=since, created_at__lt=until).order_by("sequence")
    rows = [_export_row(e) for e in events.iterator(chunk_size=2000)]
    if fmt == "csv":
        content = _csv(rows)
    else:
        header = {"organization": organization.pk, "start": start.isoformat(), "end": end.isoformat()}
        content = json.dumps({**header, "events": rows}, indent=1, sort_keys=True).encode()
    record_issue(f"audit_events_{fmt}", content, actor=actor, organization_id=organization.pk, data={"start": start.isoformat(), "end": end.isoformat(), "rows": len(rows)})
    return content, EXPORT_FORMATS[fmt]


def _export_row(event: AuditEvent) -> dict[str, Any]:
    return {
        "sequence": event.sequence,
        "created_at": event.created_at.isoformat(),
        "actor": event.actor,
        "action": event.action,
        "target": f"{event.target_type}:{event.target_id}" if event.target_type else "",
        "data": event.data,
        "row_hash": event.row_hash,
    }


def _csv(rows: Sequence[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "data": json.dumps(row["data"], sort_keys=True)})
    return buffer.getvalue().encode()


# ---- issuing (gather + render + audit) --------------------------------------------------------------


def issue_audit_report(organization: Organization, start: date, end: date, *, actor: str) -> bytes:
    content = render_audit_report(gather_audit_report(organization, start, end))
    record_issue("audit_report", content, actor=actor, organization_id=organization.pk, data={"start": start.isoformat(), "end": end.isoformat()})
    return content


def issue_owner_dossier(owner: VoiceOwner, *, actor: str) -> bytes:
    content = render_owner_dossier(gather_owner_dossier(owner))
    record_issue("owner_dossier", content, actor=actor, organization_id=owner.organization_id, target=owner)
    return content


def issue_erasure_certificate(request: ErasureRequest, *, actor: str) -> bytes:
    content = render_erasure_certificate(gather_erasure_certificate(request))
    record_issue(
        "erasure_certificate", content, actor=actor, organization_id=request.owner.organization_id, target=request,
        data={"certificate_sha256": request.certificate_sha256},
    )
    return content


def record_issue(kind: str, content: bytes, *, actor: str, organization_id: int | None, target: Any = None, data: dict[str, Any] | None = None) -> None:
    """The one shape of the "report.generated" event (detection.reports writes it too)."""
    audit.record(
        "report.generated",
        actor=actor,
        organization_id=organization_id,
        target=target,
        data={"kind": kind, "sha256": audit.sha256_hex(content), "bytes": len(content), **(data or {})},
    )



# ---- rendering helpers (shared with detection.reports) ----------------------------------------------

_STYLES = getSampleStyleSheet()
H1 = ParagraphStyle("vg-h1", parent=_STYLES["Heading1"], fontSize=16, spaceAfter=4)
H2 = ParagraphStyle("vg-h2", parent=_STYLES["Heading2"], fontSize=12, spaceBefore=10, spaceAfter=4)
BODY = ParagraphStyle("vg-body", parent=_STYLES["BodyText"], fontSize=9, leading=11.5)
SMALL = ParagraphStyle("vg-small", parent=BODY, fontSize=7.5, leading=9.5, textColor=colors.HexColor("#444444"))
MONO = ParagraphStyle("vg-mono", parent=BODY, fontName="Courier", fontSize=7.5, leading=9)
OK_COLOR, BAD_COLOR, ACCENT = colors.HexColor("#1b7f3b"), colors.HexColor("#b3261e"), colors.HexColor("#2f5d8a")
FRAME_WIDTH = A4[0] - 36 * mm


def when(moment: datetime | date | None) -> str:
    if moment is None:
        return "—"
    if isinstance(moment, datetime):
        return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S %Z") if timezone.is_aware(moment) else moment.strftime("%Y-%m-%d %H:%M:%S")
    return moment.isoformat()


def para(text: str, style: ParagraphStyle = BODY) -> Paragraph:
    """A paragraph of plain text (escaped: data never becomes markup)."""
    return Paragraph(escape(text), style)


def markup(text: str, style: ParagraphStyle = BODY) -> Paragraph:
    """A paragraph of trusted reportlab markup (only for fixed strings built here)."""
    return Paragraph(text, style)


def kv_table(rows: Sequence[tuple[str, str]]) -> Table:
    """Label/value rows; values that are hex digests are set in Courier so they read unambiguously."""
    body = [[para(k, SMALL), para(v, MONO if _is_digest(v) else BODY)] for k, v in rows]
    table = Table(body, colWidths=[42 * mm, FRAME_WIDTH - 42 * mm], hAlign="LEFT")
    table.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#dddddd")),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
    ]))
    return table


def _is_digest(value: str) -> bool:
    return len(value) >= 32 and all(c in "0123456789abcdef" for c in value)


def data_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[float], *, details: Sequence[str] | None = None, detail_label: str = ""
) -> Flowable:
    """A table with a header row (widths in mm). `details` (one per row, e.g. a hash) go on a full-width line below each row."""
    if not rows:
        return para("None.", SMALL)
    body: list[list[Any]] = [[para(h, SMALL) for h in header]]
    style: list[tuple[Any, ...]] = [
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef5")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
    ]
    for i, row in enumerate(rows):
        body.append([para(cell, SMALL) for cell in row])
        if details is not None:
            body.append([markup(f'<font size="6.5" color="#666666">{escape(detail_label)}:</font> <font face="Courier">{escape(details[i])}</font>', SMALL)] + [""] * (len(header) - 1))
            style += [("SPAN", (0, len(body) - 1), (-1, len(body) - 1)), ("TOPPADDING", (0, len(body) - 1), (-1, len(body) - 1), 0)]
        style.append(("LINEBELOW", (0, len(body) - 1), (-1, len(body) - 1), 0.25, colors.HexColor("#cccccc")))
    table = Table(body, colWidths=[w * mm for w in widths], hAlign="LEFT", repeatRows=1)
    table.setStyle(TableStyle(style))
    return table


def bar_chart(title: str, rows: Sequence[CountRow], *, color: colors.Color = ACCENT, height: float = 170) -> Flowable:
    """A vertical bar chart of counts; a line of text instead when there is nothing to draw."""
    if not rows or not any(r.count for r in rows):
        return para(f"{title}: none in this period.", SMALL)
    drawing = Drawing(FRAME_WIDTH, height)
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 32, 48, FRAME_WIDTH - 44, height - 70
    chart.data = [[r.count for r in rows]]
    chart.categoryAxis.categoryNames = [_short(r.label, 22 if len(rows) > 6 else 34) for r in rows]
    chart.categoryAxis.labels.angle = 35 if len(rows) > 6 else 0
    chart.categoryAxis.labels.boxAnchor = "ne" if len(rows) > 6 else "n"
    chart.categoryAxis.labels.fontSize = 6.5 if len(rows) > 14 else 7.5
    top = max(r.count for r in rows)
    step = max(1, math.ceil(top / 5))
    chart.valueAxis.valueMin, chart.valueAxis.valueMax, chart.valueAxis.valueStep = 0, step * math.ceil(top / step + 0.2), step
    chart.valueAxis.labels.fontSize = 7
    chart.bars[0].fillColor = color
    chart.bars[0].strokeColor = None
    if len(rows) <= 20:
        chart.barLabelFormat = "%d"
        chart.barLabels.fontSize = 7
        chart.barLabels.nudge = 6
    drawing.add(chart)
    drawing.add(String(0, height - 10, title, fontName="Helvetica-Bold", fontSize=9))
    return drawing


def _short(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def build_pdf(title: str, subtitle: str, story: list[Flowable]) -> bytes:
    """Lay out the story on A4 with a running footer. Deterministic: same story, same bytes."""
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm, bottomMargin=18 * mm,
        title=title, author="Voicegate", subject=subtitle, creator="Voicegate reports", invariant=1,
    )

    def footer(canvas: Canvas, document: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.setFillColor(colors.HexColor("#666666"))
        canvas.drawString(18 * mm, 10 * mm, f"Voicegate · {title} · {subtitle}")
        canvas.drawRightString(A4[0] - 18 * mm, 10 * mm, f"page {document.page}")
        canvas.restoreState()

    doc.build([markup(escape(title), H1), para(subtitle, SMALL), Spacer(1, 4 * mm), *story], onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()


def verdict_line(ok: bool, ok_text: str, bad_text: str) -> Paragraph:
    color = OK_COLOR if ok else BAD_COLOR
    return markup(f'<font color="{color.hexval()}"><b>{escape(ok_text if ok else bad_text)}</b></font>', H2)


# ---- rendering: audit report ------------------------------------------------------------------------


def render_audit_report(data: AuditReportData) -> bytes:
    refused = sum(r.count for r in data.refusals_by_reason)
    story: list[Flowable] = [
        kv_table([
            ("Organization", f"{data.organization_name} (#{data.organization_id})"),
            ("Period", f"{data.start.isoformat()} to {data.end.isoformat()} (inclusive)"),
            ("Generated", when(data.generated_at)),
            ("Syntheses", str(data.syntheses_total)),
            ("Decisions", f"{data.decisions_allowed} allowed, {refused} refused"),
            ("Erasures completed", str(len(data.erasures))),
        ]),
        markup("Audit chain", H2),
        *_chain_section(data.chain),
        markup("Syntheses", H2),
        bar_chart(f"Syntheses per {data.timeline_unit}", data.syntheses_timeline),
        data_table(["Profile", "Syntheses"], [(r.label, str(r.count)) for r in data.syntheses_by_profile], [120, 30]),
        Spacer(1, 3 * mm),
        data_table(["API key", "Syntheses"], [(r.label, str(r.count)) for r in data.syntheses_by_key], [120, 30]),
        markup("Refusals by reason", H2),
        bar_chart("Refused synthesis decisions by reason", data.refusals_by_reason, color=BAD_COLOR),
        data_table(["Reason", "Refusals"], [(r.label, str(r.count)) for r in data.refusals_by_reason], [120, 30]),
        markup("Consents expiring within 30 days of generation", H2),
        _consent_table(data.consents_expiring),
        markup("Consents expired in the period", H2),
        _consent_table(data.consents_expired),
        markup("Erasures completed in the period", H2),
        _erasure_table(data.erasures),
    ]
    return build_pdf("Audit report", f"{data.organization_name} · {data.start.isoformat()} to {data.end.isoformat()}", story)


def _chain_section(chain: ChainResult) -> list[Flowable]:
    if chain.ok:
        return [verdict_line(True, f"VERIFIED: {chain.rows_checked} rows, every link, hash and HMAC intact", "")]
    return [
        verdict_line(False, "", f"FAILED at sequence {chain.first_bad_sequence}"),
        para(f"Problem: {chain.problem}. {chain.rows_checked} rows before it verified.", BODY),
        para("The chain covers every organization's events; a break anywhere means this report's events cannot be trusted.", SMALL),
    ]


def _consent_table(lines: Sequence[ConsentLine]) -> Flowable:
    return data_table(
        ["Consent", "Profile", "Owner", "Purposes", "Valid until"],
        [(f"#{c.consent_id}", c.profile, f"#{c.owner_id}", ", ".join(c.purposes), when(c.valid_until)) for c in lines],
        [18, 48, 18, 46, 44], details=[c.content_sha256 for c in lines], detail_label="Content SHA-256",
    )


def _erasure_table(lines: Sequence[ErasureLine]) -> Flowable:
    return data_table(
        ["Erasure request", "Owner", "Completed", "Data key destroyed"],
        [(f"#{e.request_id}", f"#{e.owner_id}", when(e.completed_at), "yes" if e.data_key_destroyed else "NO") for e in lines],
        [30, 30, 60, 54], details=[e.certificate_sha256 for e in lines], detail_label="Certificate SHA-256",
    )


# ---- rendering: owner dossier -----------------------------------------------------------------------


def render_owner_dossier(data: OwnerDossierData) -> bytes:
    story: list[Flowable] = [
        kv_table([
            ("Owner", f"{data.display_name} (#{data.owner_id})"),
            ("Email", data.email or "—"),
            ("External reference", data.external_ref or "—"),
            ("Organization", data.organization_name),
            ("Registered", when(data.registered_at)),
            ("Erased", when(data.erased_at) if data.erased_at else "no"),
            ("Generated", when(data.generated_at)),
        ]),
        para("This dossier holds no biometric data: no audio, embeddings, transcripts or keys; only hashes, scores and counts.", SMALL),
        markup("Identity verifications", H2),
        data_table(
            ["#", "Method", "Status", "Decided", "By", "Expires"],
            [(str(v.verification_id), v.method, v.status, when(v.decided_at), v.decided_by or "—", when(v.expires_at)) for v in data.identity],
            [10, 44, 18, 36, 30, 36], details=[v.evidence_sha256 or "—" for v in data.identity], detail_label="Evidence SHA-256",
        ),
        markup("Consent artifacts", H2),
        *_consent_dossier_tables(data.consents),
        markup("Profiles and lifecycle", H2),
        data_table(["Profile: current status"], [(p.label,) for p in data.profiles], [174]),
        Spacer(1, 2 * mm),
        data_table(
            ["Profile", "From", "To", "When", "By"],
            [(l.profile, l.from_status, l.to_status, when(l.at), l.actor) for l in data.lifecycle],
            [40, 20, 20, 40, 54],
        ),
        markup("Usage", H2),
        data_table(["Profile", "Purpose", "Syntheses", "Seconds"], [(u.profile, u.purpose, str(u.syntheses), f"{u.seconds:.1f}") for u in data.usage], [60, 60, 25, 25]),
        markup("Encrypted biometric objects held", H2),
        data_table(["Kind", "Count"], [(r.label, str(r.count)) for r in data.stored_biometric_objects], [60, 25]),
        markup("Erasures", H2),
        _erasure_table(data.erasures),
    ]
    return build_pdf("Owner dossier", f"owner #{data.owner_id} · {data.organization_name}", story)


def _consent_dossier_tables(consents: Sequence[ConsentDossierLine]) -> list[Flowable]:
    if not consents:
        return [para("None.", SMALL)]
    out: list[Flowable] = []
    for c in consents:
        out.append(kv_table([
            ("Consent", f"#{c.consent_id} · {c.profile} · {c.status}" + (" (verified by officer override)" if c.officer_override else "")),
            ("Purposes", ", ".join(c.purposes)),
            ("Window", f"{when(c.valid_from)} to {when(c.valid_until)}"),
            ("Content SHA-256", c.content_sha256),
            ("Statement check", _score(c.statement_wer, c.statement_threshold, c.statement_passed, "WER", "<=")),
            ("Speaker check", _score(c.speaker_score, c.speaker_threshold, c.speaker_passed, "score", ">=")),
        ]))
        out.append(Spacer(1, 2 * mm))
    return out


def _score(value: float | None, threshold: float | None, passed: bool | None, name: str, relation: str) -> str:
    if value is None:
        return "not run"
    limit = f" (threshold {relation} {threshold:.3f})" if threshold is not None else ""
    outcome = {True: "passed", False: "FAILED", None: ""}[passed]
    return f"{name} {value:.3f}{limit} {outcome}".strip()


# ---- rendering: erasure certificate -----------------------------------------------------------------


def render_erasure_certificate(data: ErasureCertificateData) -> bytes:
    cert = data.certificate
    facts = [
        ("Erasure request", f"#{data.request_id}"),
        ("Data subject", f"owner #{data.owner_id} (personal fields scrubbed: {', '.join(cert.get('personal_fields_scrubbed', []))})"),
        ("Organization", data.organization_name),
        ("Requested by", data.requested_by),
        ("Requested at", str(cert.get("requested_at", "—"))),
        ("Completed at", str(cert.get("completed_at", "—"))),
        ("Data key destroyed", "yes (crypto-shredded)" if cert.get("data_key_destroyed") else "NO"),
        ("Encrypted objects deleted", str(len(cert.get("blobs_deleted", []) or []))),
        ("Cached voiceprints dropped", str(cert.get("cached_voiceprints_dropped", "—"))),
        ("Profiles erased", ", ".join(f"#{p}" for p in cert.get("profiles_erased", [])) or "none"),
        ("API keys revoked", ", ".join(str(k) for k in cert.get("api_keys_revoked", [])) or "none"),
    ]
    story: list[Flowable] = [
        verdict_line(bool(cert.get("data_key_destroyed")), "Erasure completed", "Erasure INCOMPLETE: data key still present"),
        kv_table(facts),
        markup("Integrity", H2),
        kv_table([
            ("Certificate SHA-256", data.certificate_sha256),
            ("Signature (HMAC-SHA256)", str(cert.get("signature_hmac_sha256", "—"))),
            ("Format", str(cert.get("certificate", "—"))),
        ]),
        para(
            "The SHA-256 covers the canonical JSON below (keys sorted, no spaces, signature excluded); the signature is an "
            "HMAC of the same text under the service's audit key.", SMALL,
        ),
        Spacer(1, 2 * mm),
        para(data.canonical_json, MONO),
        Spacer(1, 4 * mm),
        para(f"Printed {when(data.generated_at)}.", SMALL),
    ]
    return build_pdf("Erasure certificate", f"erasure #{data.request_id} · owner #{data.owner_id}", story)

