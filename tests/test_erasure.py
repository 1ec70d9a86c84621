"""GDPR erasure: afterwards no byte of the owner's biometric data is readable anywhere the service stores data."""

import os
from pathlib import Path

import pytest
from django.db import connection

from governance import biometrics, erasure, identity, keyring
from governance.models import ApiKey, AuditEvent, BiometricBlob, ConsentArtifact, ErasureRequest, VoiceProfile
from tests.factories import VoiceProfileFactory, authorized_setup, make_key

pytestmark = pytest.mark.django_db

MARKERS = {
    BiometricBlob.Kind.SAMPLE_AUDIO: b"SAMPLE-AUDIO-MARKER-" + os.urandom(16),
    BiometricBlob.Kind.EMBEDDING: b"EMBEDDING-MARKER-" + os.urandom(16),
    BiometricBlob.Kind.CONSENT_RECORDING: b"CONSENT-RECORDING-MARKER-" + os.urandom(16),
}
ID_SCAN = b"ID-SCAN-MARKER-" + os.urandom(16)


def _all_database_bytes() -> bytes:
    """Every value of every row of every table, as bytes (text as UTF-8, binaries raw)."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, memoryview):
                        value = value.tobytes()
                    chunks.append(value if isinstance(value, bytes) else str(value).encode())
    return b"\x00".join(chunks)


def _all_media_bytes(media_root: str) -> bytes:
    return b"\x00".join(p.read_bytes() for p in Path(media_root).rglob("*") if p.is_file())


@pytest.fixture
def enrolled():
    a = authorized_setup()
    for kind, marker in MARKERS.items():
        biometrics.store(a.owner, kind, marker * 50)
    identity.request_verification(a.owner, method="document", actor="test", evidence=ID_SCAN * 50)
    return a


def test_erasure_leaves_no_biometric_byte_in_database_or_storage(enrolled, settings):
    ciphertexts = [(Path(settings.MEDIA_ROOT) / b.storage_name).read_bytes() for b in BiometricBlob.objects.all()]
    data_key = keyring.data_key_for(enrolled.owner)
    enrolled.owner.refresh_from_db()
    wrapped = bytes(enrolled.owner.wrapped_data_key)
    personal = (enrolled.owner.full_name.encode(), enrolled.owner.email.encode())

    erasure.erase(enrolled.owner, actor="test")

    database, media = _all_database_bytes(), _all_media_bytes(settings.MEDIA_ROOT)
    for secret in [*MARKERS.values(), ID_SCAN, data_key, wrapped, *(c[40:80] for c in ciphertexts)]:
        assert secret not in database
        assert secret not in media
    assert all(value not in database for value in personal)
    assert not BiometricBlob.objects.exists()


def test_erasure_retires_profiles_and_revokes_keys_bound_only_to_the_owner(enrolled):
    shared_profile = VoiceProfileFactory(owner__organization=enrolled.organization)
    shared_key, _ = make_key(enrolled.organization, actions=["synthesize"], profiles=[enrolled.profile, shared_profile])

    erasure.erase(enrolled.owner, actor="test")

    enrolled.profile.refresh_from_db()
    assert enrolled.profile.status == VoiceProfile.Status.ERASED
    assert ApiKey.objects.get(pk=enrolled.key.pk).revoked_at is not None
    assert ApiKey.objects.get(pk=shared_key.pk).revoked_at is None
    assert ConsentArtifact.objects.get(pk=enrolled.consent.pk).statement_text == ""


def test_erasure_certificate_lists_what_was_deleted_and_is_hashed(enrolled):
    request = erasure.erase(enrolled.owner, actor="user:1:officer", reason="owner request")
    certificate = request.certificate
    assert request.status == ErasureRequest.Status.COMPLETED
    assert certificate["data_key_destroyed"] is True
    assert sorted(b["kind"] for b in certificate["blobs_deleted"]) == sorted([*MARKERS, "id_scan"])
    assert certificate["profiles_erased"] == [enrolled.profile.pk]
    assert certificate["api_keys_revoked"] == [enrolled.key.prefix]
    assert len(request.certificate_sha256) == 64 and len(certificate["signature_hmac_sha256"]) == 64


def test_erasure_is_idempotent_and_audited_once(enrolled):
    first = erasure.erase(enrolled.owner, actor="test")
    second = erasure.erase(enrolled.owner, actor="test")
    assert first.pk == second.pk
    assert AuditEvent.objects.filter(action="erasure.completed").count() == 1


def test_audit_keeps_only_non_biometric_facts_after_erasure(enrolled):
    name = enrolled.owner.full_name.encode()
    erasure.erase(enrolled.owner, actor="test")
    audit_bytes = b"".join(str((e.actor, e.action, e.data)).encode() for e in AuditEvent.objects.all())
    assert name not in audit_bytes
    assert all(marker not in audit_bytes for marker in MARKERS.values())
    assert AuditEvent.objects.filter(action="erasure.completed").exists()


def test_erasure_leaves_no_byte_of_synthesis_job_audio_or_text(settings):
    from synthesis import jobs
    from tests.test_synthesis_jobs import TEXT, ready_voice

    a = ready_voice(settings)
    job = jobs.run(jobs.submit(a.key, a.profile, TEXT, "support-calls", None, "pcm").pk)
    pcm = biometrics.decrypt(job.audio)
    ciphertext = (Path(settings.MEDIA_ROOT) / job.audio.storage_name).read_bytes()

    certificate = erasure.erase(a.owner, actor="test").certificate

    database, media = _all_database_bytes(), _all_media_bytes(settings.MEDIA_ROOT)
    for secret in (pcm[len(pcm) // 2 : len(pcm) // 2 + 64], ciphertext[40:80], TEXT.encode()):
        assert secret not in database
        assert secret not in media
    job.refresh_from_db()
    assert job.audio_id is None
    assert jobs.AUDIO_KIND in [blob["kind"] for blob in certificate["blobs_deleted"]]
