"""Reports and exports: what the PDFs say (read back as text), what they never hold, who may fetch them.

Render functions are tested on hand-made dataclasses without the database; the gathering services
and the API against it. Every report and export writes a "report.generated" audit event.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
import soundfile
from django.conf import settings
from django.db import connection
from django.urls import include, path
from django.utils import timezone
from pypdf import PdfReader

from detection import reports as forensic
from detection.models import Detection
from detection.services import check_clip
from governance import audit, biometrics, erasure, lifecycle, policy, reports
from governance.models import ApiKey, AuditEvent, BiometricBlob, ErasureRequest, VoiceProfile
from synthesis.models import SynthesisRecord
from tests.api_helpers import as_key as _as_key, error_of as _error
from tests.factories import (
    ConsentFactory,
    IdentityVerificationFactory,
    OrganizationFactory,
    VoiceOwnerFactory,
    VoiceProfileFactory,
    authorized_setup,
    make_key,
    officer_for,
)
from voicegate import api_errors, crypto
from voicegate import urls as project_urls
from voicegate.audio import watermark

# Until voicegate.urls includes voicegate.report_urls, API tests route through this module (a duplicate
# include afterwards is harmless: the first match wins and it is the same view).
urlpatterns = [*project_urls.urlpatterns, path("api/v1/", include("voicegate.report_urls"))]
handler404, handler500, handler400 = api_errors.not_found, api_errors.server_error, api_errors.bad_request
api_urls = pytest.mark.urls(__name__)

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
HASH_A, HASH_B, HASH_C, HASH_D = ("a1" * 32), ("b2" * 32), ("c3" * 32), ("d4" * 32)


def pdf_text(content: bytes) -> str:
    assert content.startswith(b"%PDF-")
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(content)).pages)


def flat(text: str) -> str:
    """Text without whitespace: a long hash may wrap across lines in a table cell."""
    return "".join(text.split())




def _synthesis(profile, key=None, *, purpose="support-calls", at=None, **fields):
    return SynthesisRecord.objects.create(
        organization=profile.owner.organization, api_key=key, profile=profile, purpose=purpose, engine="offline",
        text_sha256=fields.pop("text_sha256", HASH_C), output_sha256=fields.pop("output_sha256", HASH_D),
        watermark_key_id="wmk1", duration_s=2.5, outcome=SynthesisRecord.Outcome.COMPLETED,
        created_at=at or timezone.now(), **fields,
    )


def _detection(record=None, organization=None, **watermark_fields):
    verdict = {
        "marked": record is not None, "record_id": record.pk if record else None, "key_id": "wmk1" if record else None,
        "confidence_z": 9.5 if record else 1.2, "marked_fraction": 0.75 if record else 0.0,
        "segments": [{"start": 0.5 * i, "end": 0.5 * (i + 1), "marked": i != 2, "score": 0.9 if i != 2 else 0.1} for i in range(4)] if record else [],
        "false_positive_bound": 6 * 2.0**-24, **watermark_fields,
    }
    return Detection.objects.create(
        organization=organization or (record.organization if record else OrganizationFactory()), submitted_by="api-key:abc",
        file_sha256=HASH_A, file_bytes=64000, duration_s=2.0, watermark=verdict, synthesis_record=record,
    )


def _report_events(kind):
    return list(AuditEvent.objects.filter(action="report.generated", data__kind=kind))


# ---- render functions on hand-made data (no database) -----------------------------------------------


def _audit_data(**overrides) -> reports.AuditReportData:
    base = reports.AuditReportData(
        organization_id=7, organization_name="Acme Voices", start=date(2026, 3, 1), end=date(2026, 3, 31), generated_at=T0,
        syntheses_total=12,
        syntheses_by_profile=(reports.CountRow("Narrator (#3)", 9), reports.CountRow("Support (#4)", 3)),
        syntheses_by_key=(reports.CountRow("vg_k1…", 12),),
        syntheses_timeline=tuple(reports.CountRow(f"03-{d:02d}", d % 3) for d in range(1, 32)), timeline_unit="day",
        decisions_allowed=12,
        refusals_by_reason=(reports.CountRow("consent_expired", 5), reports.CountRow("key_purpose_not_allowed", 2)),
        consents_expiring=(reports.ConsentLine(21, "Narrator (#3)", 2, ("support-calls",), T0 + timedelta(days=9), HASH_A),),
        consents_expired=(reports.ConsentLine(20, "Support (#4)", 2, ("ads",), T0 - timedelta(days=3), HASH_B),),
        erasures=(reports.ErasureLine(5, 9, T0, True, HASH_C),),
        chain=reports.ChainResult(True, 1234),
    )
    return replace(base, **overrides)


def test_audit_report_renders_counts_reasons_consents_erasures_and_chain():
    text = pdf_text(reports.render_audit_report(_audit_data()))
    assert "Acme Voices" in text and "2026-03-01 to 2026-03-31" in text
    assert "consent_expired" in text and "key_purpose_not_allowed" in text
    assert "Narrator (#3)" in text and "Support (#4)" in text and "vg_k1" in text
    assert "12 allowed, 7 refused" in text
    assert "VERIFIED: 1234 rows" in text and "FAILED" not in text
    for digest in (HASH_A, HASH_B, HASH_C):
        assert digest in flat(text)


def test_audit_report_shows_a_broken_chain_as_failed_with_its_sequence():
    broken = reports.ChainResult(False, 41, 42, "row content does not match its hash: the row was edited")
    text = pdf_text(reports.render_audit_report(_audit_data(chain=broken)))
    assert "FAILED at sequence 42" in text and "the row was edited" in text and "VERIFIED" not in text


def test_audit_report_without_activity_still_renders():
    empty = _audit_data(syntheses_total=0, syntheses_by_profile=(), syntheses_by_key=(), syntheses_timeline=(),
                        refusals_by_reason=(), consents_expiring=(), consents_expired=(), erasures=())
    text = pdf_text(reports.render_audit_report(empty))
    assert "none in this period" in text and "None." in text


def test_rendering_is_deterministic_so_the_audited_hash_can_be_reproduced():
    assert reports.render_audit_report(_audit_data()) == reports.render_audit_report(_audit_data())


def test_owner_dossier_renders_identity_consent_scores_lifecycle_and_usage():
    data = reports.OwnerDossierData(
        owner_id=9, display_name="Grace Hopper", email="grace@example.org", external_ref="HR-77", organization_name="Acme Voices",
        registered_at=T0, erased_at=None, generated_at=T0,
        identity=(reports.IdentityLine(1, "Officer-attested document", "approved", T0, T0, "officer1", None, HASH_A),),
        consents=(reports.ConsentDossierLine(
            11, "Narrator (#3)", ("support-calls",), T0, T0 + timedelta(days=90), "verified", HASH_B,
            statement_wer=0.083, statement_threshold=0.25, statement_passed=True,
            speaker_score=0.812, speaker_threshold=0.75, speaker_passed=True,
        ),),
        profiles=(reports.CountRow("Narrator (#3): active", 0),),
        lifecycle=(reports.LifecycleLine("Narrator (#3)", "pending", "active", T0, "system"),),
        usage=(reports.UsageLine("Narrator (#3)", "support-calls", 14, 35.0),),
        stored_biometric_objects=(reports.CountRow("embedding", 2),),
        erasures=(),
    )
    text = pdf_text(reports.render_owner_dossier(data))
    assert "Grace Hopper" in text and "Officer-attested document" in text and "officer1" in text
    assert HASH_A in flat(text) and HASH_B in flat(text)
    assert "WER 0.083" in text and "0.250" in text and "score 0.812" in text and "0.750" in text
    assert "pending" in text and "active" in text and "support-calls" in text and "14" in text


def test_erasure_certificate_renders_its_hash_signature_and_canonical_text():
    certificate = {"certificate": "voicegate-erasure-v1", "erasure_request": 5, "owner": 9, "organization": 7,
                   "requested_at": "2026-03-02T09:00:00+00:00", "completed_at": "2026-03-02T09:00:01+00:00",
                   "data_key_destroyed": True, "personal_fields_scrubbed": ["full_name", "email", "external_ref"],
                   "profiles_erased": [3], "api_keys_revoked": ["vg_k1"], "blobs_deleted": [{"id": 1}, {"id": 2}],
                   "cached_voiceprints_dropped": 1, "signature_hmac_sha256": HASH_D}
    data = reports.ErasureCertificateData(5, 9, "Acme Voices", "user:1:officer", certificate, HASH_C, T0)
    text = pdf_text(reports.render_erasure_certificate(data))
    assert "Erasure completed" in text and "crypto-shredded" in text
    assert HASH_C in flat(text) and HASH_D in flat(text)
    assert '"erasure_request":5' in flat(text) and "signature_hmac_sha256" not in data.canonical_json


def _tone(seconds=2.0, sr=16000):
    t = np.arange(int(seconds * sr)) / sr
    return (0.4 * np.sin(2 * np.pi * 440 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 1.5 * t))).astype(np.float32), sr


def _forensic_data(**overrides) -> forensic.ForensicReportData:
    samples, sr = _tone()
    base = forensic.ForensicReportData(
        detection_id=31, checked_at=T0, submitted_by="api-key:vg_det", organization_name="Acme Voices", file_sha256=HASH_A,
        file_bytes=64044, duration_s=2.0, marked=True, record_id=77, watermark_key_id="wmk1", confidence_z=11.25,
        marked_fraction=0.75, false_positive_bound=3.6e-7,
        segments=tuple(forensic.SegmentLine(0.5 * i, 0.5 * (i + 1), i != 1, 0.9) for i in range(4)),
        provenance=forensic.ProvenanceLine(77, T0, "Narrator (#3)", "support-calls", "offline", "vg_k1…", HASH_B, HASH_C, "completed", "wmk1"),
        provenance_withheld=False, codec_version="wm-test-1", software_version="voicegate 0.1.0", generated_at=T0,
        waveform=forensic.waveform(samples, sr), spectrogram=forensic.spectrogram(samples, sr), audio_verified=True,
    )
    return replace(base, **overrides)


def test_forensic_report_renders_verdict_scores_provenance_hashes_and_versions():
    text = pdf_text(forensic.render_forensic_report(_forensic_data()))
    assert "VERDICT: MARKED" in text and "synthesis record #77" in text
    assert "11.25" in text and "75.0%" in text and "3.6e-07" in text
    assert "3 of 4 segments marked" in text
    assert all(h in flat(text) for h in (HASH_A, HASH_B, HASH_C))
    assert "vg_k1" in text and "Narrator (#3)" in text and "wm-test-1" in text
    assert "Spectrogram" in text and "matches the file hash" in text


def test_forensic_report_without_audio_or_mark_says_so():
    data = _forensic_data(marked=False, record_id=None, segments=(), provenance=None, waveform=None, spectrogram=None, audio_verified=False)
    text = pdf_text(forensic.render_forensic_report(data))
    assert "VERDICT: NOT MARKED" in text and "No synthesis record" in text
    assert "not drawn" in text and "does not keep submitted audio" in text


def test_spectrogram_and_waveform_are_small_summaries_of_the_audio():
    samples, sr = _tone(seconds=30.0)
    spec, wave = forensic.spectrogram(samples, sr), forensic.waveform(samples, sr)
    assert len(spec.levels) == forensic.SPECTROGRAM_BANDS and len(spec.levels[0]) == forensic.SPECTROGRAM_FRAMES
    loudest_band = int(np.argmax([sum(row) for row in spec.levels]))
    assert abs((loudest_band + 0.5) * spec.max_hz / forensic.SPECTROGRAM_BANDS - 440) < 200
    assert len(wave.low) == forensic.WAVEFORM_COLUMNS and max(wave.high) == pytest.approx(0.4, abs=0.01)


# ---- gathering from the database --------------------------------------------------------------------


@pytest.mark.django_db
def test_gathered_audit_report_counts_syntheses_refusals_consents_and_erasures():
    a = authorized_setup()
    other_profile = VoiceProfileFactory(owner__organization=a.organization, name="Other voice")
    for _ in range(3):
        _synthesis(a.profile, a.key)
    _synthesis(other_profile)
    _synthesis(VoiceProfileFactory())  # another organization's: not counted
    policy.decide_synthesis(a.key, a.profile, "advertising", "hello")  # purpose not on the key
    policy.decide_synthesis(a.key, other_profile, "support-calls", "hello")  # profile not on the key
    policy.decide_synthesis(a.key, other_profile, "support-calls", "hello")
    expiring = ConsentFactory(profile=a.profile, valid_until=timezone.now() + timedelta(days=10), content_sha256=HASH_A)
    expired = ConsentFactory(profile=other_profile, valid_from=timezone.now() - timedelta(days=30),
                             valid_until=timezone.now() - timedelta(hours=1), content_sha256=HASH_B)
    ConsentFactory(profile=a.profile, valid_until=timezone.now() + timedelta(days=300))  # not expiring soon
    erased = erasure.erase(VoiceOwnerFactory(organization=a.organization), actor="test")
    today = timezone.localdate()

    data = reports.gather_audit_report(a.organization, today - timedelta(days=2), today)

    assert data.syntheses_total == 4
    assert {r.label: r.count for r in data.syntheses_by_profile} == {f"{a.profile.name} (#{a.profile.pk})": 3, f"Other voice (#{other_profile.pk})": 1}
    assert {r.label: r.count for r in data.syntheses_by_key} == {f"{a.key.prefix}…": 3, "(no key)": 1}
    assert sum(r.count for r in data.syntheses_timeline) == 4 and data.timeline_unit == "day" and len(data.syntheses_timeline) == 3
    assert {r.label: r.count for r in data.refusals_by_reason} == {"key_purpose_not_allowed": 1, "key_profile_not_allowed": 2}
    assert [c.consent_id for c in data.consents_expiring] == [expiring.pk, a.consent.pk]  # soonest first; the factory consent lapses in 30 days
    assert [c.consent_id for c in data.consents_expired] == [expired.pk]
    assert [(e.request_id, e.certificate_sha256, e.data_key_destroyed) for e in data.erasures] == [(erased.pk, erased.certificate_sha256, True)]
    assert data.chain.ok

    text = pdf_text(reports.render_audit_report(data))
    assert "key_profile_not_allowed" in text and "key_purpose_not_allowed" in text
    assert erased.certificate_sha256 in flat(text) and HASH_A in flat(text) and HASH_B in flat(text)


@pytest.mark.django_db
def test_period_outside_the_activity_counts_nothing():
    a = authorized_setup()
    _synthesis(a.profile, a.key, at=timezone.now() - timedelta(days=40))
    today = timezone.localdate()
    assert reports.gather_audit_report(a.organization, today - timedelta(days=7), today).syntheses_total == 0


@pytest.mark.django_db
def test_tampered_audit_chain_shows_as_failed_with_the_sequence_in_the_report():
    org = OrganizationFactory()
    events = [audit.record(f"test.event{i}", actor="test", organization_id=org.pk, data={"n": i}) for i in range(5)]
    target = events[2].sequence
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {AuditEvent._meta.db_table} SET data = %s WHERE sequence = %s", [json.dumps({"n": 999}), target])
    today = timezone.localdate()

    text = pdf_text(reports.render_audit_report(reports.gather_audit_report(org, today, today)))

    assert f"FAILED at sequence {target}" in text and "edited" in text


@pytest.mark.django_db
def test_dossier_holds_no_biometric_bytes_nor_the_owners_wrapped_key():
    a = authorized_setup()
    marker = b"BIOMETRIC-MARKER-" + hashlib.sha256(b"dossier").hexdigest()[:16].encode()
    blob = biometrics.store(a.owner, BiometricBlob.Kind.EMBEDDING, marker)
    a.owner.refresh_from_db()
    wrapped = bytes(a.owner.wrapped_data_key)
    transcript_hash = "e5" * 32
    a.consent.verification_results = {"automated": {
        "passed": True, "statement": {"wer": 0.1, "threshold": 0.25, "passed": True, "transcript_sha256": transcript_hash},
        "speaker": {"score": 0.83, "threshold": 0.75, "passed": True},
    }}
    a.consent.save()

    content = reports.issue_owner_dossier(a.owner, actor="test")
    text = pdf_text(content)

    assert marker not in content and marker.decode() not in text
    assert wrapped not in content and wrapped.hex() not in flat(text)
    assert blob.storage_name not in text and blob.ciphertext_sha256 not in flat(text) and transcript_hash not in flat(text)
    assert "WER 0.100" in text and "score 0.830" in text and "embedding" in text


@pytest.mark.django_db
def test_dossier_lists_identity_consents_lifecycle_and_usage():
    profile = VoiceProfileFactory(status=VoiceProfile.Status.PENDING)
    owner = profile.owner
    IdentityVerificationFactory(owner=owner, evidence_sha256=HASH_A)
    consent = ConsentFactory(profile=profile, content_sha256=HASH_B)
    lifecycle.transition(profile, VoiceProfile.Status.ACTIVE, actor="test", reason="ready")
    lifecycle.transition(profile, VoiceProfile.Status.SUSPENDED, actor="test", reason="review")
    _synthesis(profile, purpose="audiobooks")
    _synthesis(profile, purpose="audiobooks")

    data = reports.gather_owner_dossier(owner)

    assert [(l.from_status, l.to_status) for l in data.lifecycle] == [("pending", "active"), ("active", "suspended")]
    assert [(u.purpose, u.syntheses) for u in data.usage] == [("audiobooks", 2)]
    assert data.consents[0].consent_id == consent.pk and data.consents[0].speaker_score is None
    text = pdf_text(reports.render_owner_dossier(data))
    assert owner.full_name in text and HASH_A in flat(text) and HASH_B in flat(text)
    assert "suspended" in text and "audiobooks" in text and "not run" in text


@pytest.mark.django_db
def test_erasure_certificate_prints_the_stored_certificate_hash():
    owner = VoiceOwnerFactory()
    completed = erasure.erase(owner, actor="test")

    data = reports.gather_erasure_certificate(completed)
    text = pdf_text(reports.issue_erasure_certificate(completed, actor="test"))

    assert audit.sha256_hex(data.canonical_json) == completed.certificate_sha256
    assert completed.certificate_sha256 in flat(text) and completed.certificate["signature_hmac_sha256"] in flat(text)
    assert "Erasure completed" in text and f"owner #{owner.pk}" in text


@pytest.mark.django_db
def test_no_certificate_for_an_erasure_not_completed():
    request = ErasureRequest.objects.create(owner=VoiceOwnerFactory(), requested_by="test")
    with pytest.raises(reports.CertificateNotIssued):
        reports.gather_erasure_certificate(request)


@pytest.mark.django_db
def test_forensic_report_of_a_marked_detection_shows_its_provenance():
    a = authorized_setup()
    record = _synthesis(a.profile, a.key, text_sha256=HASH_B, output_sha256=HASH_C)
    detection = _detection(record)

    text = pdf_text(forensic.issue_forensic_report(detection, actor="test"))

    assert "VERDICT: MARKED" in text and f"synthesis record #{record.pk}" in text
    assert all(h in flat(text) for h in (HASH_A, HASH_B, HASH_C))
    assert a.key.prefix in text and a.profile.name in text and "3 of 4 segments marked" in text
    assert forensic.WATERMARK_CODEC_VERSION.split()[0] in text and "not drawn" in text


@pytest.mark.django_db
def test_forensic_report_states_how_a_marked_clip_was_altered_since_issue():
    a = authorized_setup()
    detection = _detection(_synthesis(a.profile, a.key), time_scale=1.0526, echo={"delay_s": 0.15, "gain": 0.35})

    text = pdf_text(forensic.issue_forensic_report(detection, actor="test"))

    assert "95.0% of its issued speed" in text and "150 ms" in text and "0.35" in text
    plain = pdf_text(forensic.issue_forensic_report(_detection(_synthesis(a.profile, a.key), time_scale=1.0), actor="test"))
    assert "none found" in plain


@pytest.mark.django_db
def test_forensic_report_withholds_another_organizations_provenance():
    a = authorized_setup()
    record = _synthesis(a.profile, a.key, text_sha256=HASH_B, output_sha256=HASH_C)
    detection = _detection(record, organization=OrganizationFactory())

    text = pdf_text(forensic.render_forensic_report(forensic.gather_forensic_report(detection)))

    assert "not disclosed" in text and HASH_B not in flat(text) and a.key.prefix not in text


# ---- exports ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_csv_export_parses_and_has_the_organizations_rows():
    org, other = OrganizationFactory(), OrganizationFactory()
    audit.record("test.one", actor="alice", organization_id=org.pk, data={"n": 1, "note": 'a "quoted", text'})
    audit.record("test.two", actor="bob", organization_id=org.pk, target=org)
    audit.record("test.other", actor="eve", organization_id=other.pk)
    today = timezone.localdate()

    content, content_type = reports.export_audit_events(org, today, today, "csv", actor="test")

    rows = list(csv.DictReader(io.StringIO(content.decode())))
    assert content_type.startswith("text/csv")
    assert [r["action"] for r in rows] == ["test.one", "test.two"]
    assert json.loads(rows[0]["data"]) == {"n": 1, "note": 'a "quoted", text'}
    assert rows[1]["target"] == f"governance.Organization:{org.pk}" and rows[1]["actor"] == "bob"
    assert int(rows[0]["sequence"]) < int(rows[1]["sequence"]) and len(rows[0]["row_hash"]) == 64


@pytest.mark.django_db
def test_json_export_parses_and_has_the_rows():
    org = OrganizationFactory()
    event = audit.record("test.one", actor="alice", organization_id=org.pk, data={"n": 1})
    today = timezone.localdate()

    content, content_type = reports.export_audit_events(org, today, today, "json", actor="test")

    body = json.loads(content)
    assert content_type == "application/json" and body["organization"] == org.pk
    assert body["events"] == [{"sequence": event.sequence, "created_at": event.created_at.isoformat(), "actor": "alice",
                               "action": "test.one", "target": "", "data": {"n": 1}, "row_hash": event.row_hash}]


@pytest.mark.django_db
def test_every_report_and_export_writes_an_audit_event_with_its_hash():
    a = authorized_setup()
    completed = erasure.erase(VoiceOwnerFactory(organization=a.organization), actor="test")
    today = timezone.localdate()
    made = {
        "audit_report": reports.issue_audit_report(a.organization, today, today, actor="officer"),
        "audit_events_csv": reports.export_audit_events(a.organization, today, today, "csv", actor="officer")[0],
        "audit_events_json": reports.export_audit_events(a.organization, today, today, "json", actor="officer")[0],
        "owner_dossier": reports.issue_owner_dossier(a.owner, actor="officer"),
        "erasure_certificate": reports.issue_erasure_certificate(completed, actor="officer"),
        "forensic_report": forensic.issue_forensic_report(_detection(_synthesis(a.profile, a.key)), actor="officer"),
    }
    for kind, content in made.items():
        [event] = _report_events(kind)
        assert event.data["sha256"] == hashlib.sha256(content).hexdigest(), kind
        assert event.actor == "officer" and event.organization_id == a.organization.pk
    assert audit.verify_chain().ok


# ---- the API ----------------------------------------------------------------------------------------


@pytest.mark.django_db
@api_urls
def test_officer_gets_the_audit_report_as_pdf(api):
    org = OrganizationFactory(name="Acme Voices")
    api.force_authenticate(officer_for(org))
    response = api.get("/api/v1/reports/audit", {"organization": org.pk, "start": "2026-01-01", "end": "2026-01-31", "format": "pdf"},
                       HTTP_ACCEPT="application/pdf")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/pdf" and "attachment" in response["Content-Disposition"]
    assert "Acme Voices" in pdf_text(response.content)
    assert len(_report_events("audit_report")) == 1


@pytest.mark.django_db
@api_urls
def test_read_audit_key_exports_its_organizations_events_as_csv_and_json(api):
    org = OrganizationFactory()
    _, secret = make_key(org, actions=[ApiKey.Action.READ_AUDIT])
    today = timezone.localdate().isoformat()
    csv_response = _as_key(api, secret).get("/api/v1/reports/audit", {"start": today, "end": today, "format": "csv"})
    assert csv_response.status_code == 200, csv_response.content
    actions = [r["action"] for r in csv.DictReader(io.StringIO(csv_response.content.decode()))]
    assert actions == ["api_key.created"]  # the key's own creation: the organization's only event so far
    json_response = api.get("/api/v1/reports/audit", {"start": today, "end": today, "format": "json"})
    assert json_response.status_code == 200 and json.loads(json_response.content)["organization"] == org.pk


@pytest.mark.django_db
@api_urls
def test_audit_report_needs_the_read_audit_scope(api):
    org = OrganizationFactory()
    _, secret = make_key(org, actions=[ApiKey.Action.DETECT])
    _error(_as_key(api, secret).get("/api/v1/reports/audit", {"start": "2026-01-01", "end": "2026-01-02"}), 403, "permission_denied")


@pytest.mark.django_db
@api_urls
def test_another_organizations_audit_report_is_404(api):
    org, other = OrganizationFactory(), OrganizationFactory()
    _, secret = make_key(org, actions=[ApiKey.Action.READ_AUDIT])
    query = {"organization": other.pk, "start": "2026-01-01", "end": "2026-01-02"}
    _error(_as_key(api, secret).get("/api/v1/reports/audit", query), 404, "not_found")
    assert _report_events("audit_report") == []


@pytest.mark.django_db
@api_urls
@pytest.mark.parametrize("query, field", [
    ({"start": "2026-02-30", "end": "2026-03-01"}, "start"),
    ({"start": "yesterday", "end": "2026-03-01"}, "start"),
    ({"start": "2026-03-05", "end": "2026-03-01"}, "end"),
    ({"start": "2026-03-01"}, "end"),
    ({"start": "2026-03-01", "end": "2026-03-02", "format": "xlsx"}, "format"),
    ({"start": "2000-01-01", "end": "2026-03-02"}, "end"),
])
def test_bad_dates_ranges_and_formats_are_400_in_the_error_shape(api, query, field):
    org = OrganizationFactory()
    api.force_authenticate(officer_for(org))
    error = _error(api.get("/api/v1/reports/audit", query), 400, "invalid")
    assert field in error["details"]


@pytest.mark.django_db
@api_urls
def test_officer_of_several_organizations_must_name_one(api):
    api.force_authenticate(officer_for(OrganizationFactory(), OrganizationFactory()))
    error = _error(api.get("/api/v1/reports/audit", {"start": "2026-03-01", "end": "2026-03-02"}), 400, "invalid")
    assert "organization" in error["details"]


@pytest.mark.django_db
@api_urls
def test_officer_gets_the_dossier_and_another_organizations_owner_is_404(api):
    a, b = authorized_setup(), authorized_setup()
    api.force_authenticate(officer_for(a.organization))
    response = api.get(f"/api/v1/reports/owners/{a.owner.pk}/dossier")
    assert response.status_code == 200 and a.owner.full_name in pdf_text(response.content)
    _error(api.get(f"/api/v1/reports/owners/{b.owner.pk}/dossier"), 404, "not_found")
    _error(api.get("/api/v1/reports/owners/999999/dossier"), 404, "not_found")
    assert len(_report_events("owner_dossier")) == 1


@pytest.mark.django_db
@api_urls
def test_dossier_is_for_officers_only(api):
    a = authorized_setup()
    _, secret = make_key(a.organization, actions=[ApiKey.Action.READ_AUDIT, ApiKey.Action.ENROLL])
    _error(_as_key(api, secret).get(f"/api/v1/reports/owners/{a.owner.pk}/dossier"), 403, "permission_denied")


@pytest.mark.django_db
@api_urls
def test_erasure_certificate_api_is_scoped_and_refuses_an_open_erasure(api):
    a, b = authorized_setup(), authorized_setup()
    mine = erasure.erase(VoiceOwnerFactory(organization=a.organization), actor="test")
    theirs = erasure.erase(VoiceOwnerFactory(organization=b.organization), actor="test")
    open_request = ErasureRequest.objects.create(owner=VoiceOwnerFactory(organization=a.organization), requested_by="test")
    client = _as_key(api, a.secret)
    response = client.get(f"/api/v1/reports/erasures/{mine.pk}/certificate")
    assert response.status_code == 200 and mine.certificate_sha256 in flat(pdf_text(response.content))
    _error(client.get(f"/api/v1/reports/erasures/{theirs.pk}/certificate"), 404, "not_found")
    refused = api_errors._domain_status(reports.CertificateNotIssued(""))  # 400 unless mapped (409 is proposed)
    _error(client.get(f"/api/v1/reports/erasures/{open_request.pk}/certificate"), refused, "certificate_not_issued")


@pytest.mark.django_db
@api_urls
def test_forensic_report_api_needs_detect_scope_and_is_scoped(api):
    a, b = authorized_setup(), authorized_setup()
    mine, theirs = _detection(_synthesis(a.profile, a.key)), _detection(_synthesis(b.profile, b.key))
    _, detect_secret = make_key(a.organization, actions=[ApiKey.Action.DETECT])
    _error(_as_key(api, a.secret).get(f"/api/v1/reports/detections/{mine.pk}/forensic"), 403, "permission_denied")
    client = _as_key(api, detect_secret)
    response = client.get(f"/api/v1/reports/detections/{mine.pk}/forensic")
    assert response.status_code == 200 and "VERDICT: MARKED" in pdf_text(response.content)
    _error(client.get(f"/api/v1/reports/detections/{theirs.pk}/forensic"), 404, "not_found")


def _wav(samples: np.ndarray, sr: int) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, sr, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


@pytest.mark.django_db
@api_urls
def test_watermarked_clip_checked_then_reported_with_its_waveform(api):
    a = authorized_setup()
    record = _synthesis(a.profile, a.key, text_sha256=HASH_B, output_sha256=HASH_C)
    rng = np.random.default_rng(5)
    speechlike = (rng.standard_normal(16000 * 4) * 0.1).astype(np.float32)
    clip = _wav(np.clip(watermark.embed(speechlike, 16000, record.pk, settings.VOICEGATE_WATERMARK_KEY), -1, 1), 16000)
    _, detect_secret = make_key(a.organization, actions=[ApiKey.Action.DETECT])
    result = check_clip(clip, "clip.wav", actor="test", organization_ids=frozenset({a.organization.pk}))
    assert result["watermark"]["marked"], result["watermark"]
    client = _as_key(api, detect_secret)

    response = client.post(f"/api/v1/reports/detections/{result['detection']}/forensic", {"file": io.BytesIO(clip)}, format="multipart")

    assert response.status_code == 200, response.content
    text = pdf_text(response.content)
    assert f"synthesis record #{record.pk}" in text and hashlib.sha256(clip).hexdigest() in flat(text)
    assert "Spectrogram" in text and "matches the file hash" in text
    assert crypto.key_id(settings.VOICEGATE_WATERMARK_KEY) in text
    wrong = _wav(speechlike, 16000)
    _error(client.post(f"/api/v1/reports/detections/{result['detection']}/forensic", {"file": io.BytesIO(wrong)}, format="multipart"), 400, "audio_mismatch")
