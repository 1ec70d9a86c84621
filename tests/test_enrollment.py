"""Enrollment: samples are judged at once, embedded by a job, and leave only an encrypted voiceprint behind."""

import numpy as np
import pytest
import soundfile as sf
import io

from governance import erasure, voiceprints
from governance.models import AuditEvent, BiometricBlob, EnrollmentSample, VoiceProfile
from tests.enrollment_helpers import audio_bytes, client_for as _client_for, draft_profile, post_sample as _post_sample
from voicegate.audio import embedding

pytestmark = pytest.mark.django_db




def test_accepted_sample_becomes_an_encrypted_voiceprint_and_its_audio_is_deleted(api, eager_jobs):
    profile = draft_profile()
    response = _post_sample(_client_for(api, profile), profile, "enrollment/sample1.flac", eager_jobs)
    assert response.status_code == 202, response.content
    assert response.json()["job_status"] == "queued"

    sample = EnrollmentSample.objects.get(pk=response.json()["id"])
    profile.refresh_from_db()
    assert (sample.job_status, sample.verdict) == ("succeeded", "accepted")
    assert sample.audio is None and not BiometricBlob.objects.filter(kind="sample_audio").exists()
    assert profile.embedding is not None and profile.status == VoiceProfile.Status.PENDING
    assert profile.enrollment_report["accepted_samples"] == 1


def test_profile_voiceprint_is_the_normalized_mean_of_its_samples(api, eager_jobs):
    profile = draft_profile()
    client = _client_for(api, profile)
    for name in ("enrollment/sample1.flac", "enrollment/sample2.flac"):
        assert _post_sample(client, profile, name, eager_jobs).status_code == 202
    profile.refresh_from_db()
    samples = list(profile.samples.select_related("embedding__owner"))
    vectors = voiceprints.load_many([s.embedding for s in samples], actor="test", purpose="test")
    expected = embedding.profile_embedding(vectors)
    actual = voiceprints.load(profile.embedding, actor="test", purpose="test")
    assert np.allclose(actual, expected, atol=1e-6) and abs(np.linalg.norm(actual) - 1) < 1e-5


def test_undecodable_sample_is_400_with_the_reason(api, eager_jobs):
    profile = draft_profile()
    from django.core.files.uploadedfile import SimpleUploadedFile

    bad = SimpleUploadedFile("voice.wav", b"RIFF\x00\x00\x00\x00WAVEjunk", content_type="audio/wav")
    response = _client_for(api, profile).post(f"/api/v1/owners/{profile.owner.pk}/samples/", {"file": bad}, format="multipart")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "audio_rejected" and response.json()["error"]["details"]["reason"]
    assert not EnrollmentSample.objects.exists() and not BiometricBlob.objects.exists()


def test_noisy_sample_is_422_naming_the_failed_check_and_by_how_much(api, eager_jobs):
    profile = draft_profile()
    clean, rate = sf.read(io.BytesIO(audio_bytes("enrollment/sample1.flac")), dtype="float32")
    noisy = clean + np.random.default_rng(0).normal(0, 0.2, clean.shape).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(noisy, -1, 1), rate, format="WAV")
    from django.core.files.uploadedfile import SimpleUploadedFile

    noisy_upload = SimpleUploadedFile("noisy.wav", buffer.getvalue(), content_type="audio/wav")
    response = _client_for(api, profile).post(f"/api/v1/owners/{profile.owner.pk}/samples/", {"file": noisy_upload}, format="multipart")
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    failed = {c["name"]: c for c in error["details"]["checks"] if not c["passed"]}
    assert "snr" in failed and failed["snr"]["shortfall"] > 0
    assert not BiometricBlob.objects.exists()


def test_oversize_upload_is_413(api, settings, eager_jobs):
    settings.VOICEGATE_AUDIO_MAX_BYTES = 10_000
    profile = draft_profile()
    response = _post_sample(_client_for(api, profile), profile, "enrollment/sample1.flac", eager_jobs)
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"


def test_retention_setting_keeps_sample_audio_until_the_purge_job(api, settings, eager_jobs):
    from datetime import timedelta

    from django.utils import timezone

    from governance import enrollment

    settings.VOICEGATE_SAMPLE_AUDIO_RETENTION_DAYS = 7
    profile = draft_profile()
    _post_sample(_client_for(api, profile), profile, "enrollment/sample1.flac", eager_jobs)
    sample = EnrollmentSample.objects.get()
    assert sample.audio is not None and sample.audio_retained_until is not None
    assert enrollment.purge_retained_audio(now=timezone.now()) == 0
    assert enrollment.purge_retained_audio(now=timezone.now() + timedelta(days=8)) == 1
    sample.refresh_from_db()
    assert sample.audio is None and sample.embedding is not None


def test_samples_are_refused_for_a_retired_profile(api, eager_jobs):
    profile = draft_profile()
    VoiceProfile.objects.filter(pk=profile.pk).update(status=VoiceProfile.Status.RETIRED)
    response = _post_sample(_client_for(api, profile), profile, "enrollment/sample1.flac", eager_jobs)
    assert response.status_code == 400  # the owner has no live profile to enroll into
    assert "profile" in response.json()["error"]["details"]


def test_every_biometric_read_during_enrollment_is_audited(api, eager_jobs):
    profile = draft_profile()
    _post_sample(_client_for(api, profile), profile, "enrollment/sample1.flac", eager_jobs)
    purposes = [e.data["purpose"] for e in AuditEvent.objects.filter(action="biometric.read")]
    assert "enrollment" in purposes and "profile voiceprint" in purposes


def test_erasure_drops_cached_voiceprints(api, eager_jobs):
    profile = draft_profile()
    _post_sample(_client_for(api, profile), profile, "enrollment/sample1.flac", eager_jobs)
    profile.refresh_from_db()
    voiceprints.load(profile.embedding, actor="test", purpose="warm the cache")
    cache_key = profile.embedding.ciphertext_sha256
    assert embedding.cache_get(profile.owner_id, cache_key) is not None
    certificate = erasure.erase(profile.owner, actor="test").certificate
    assert certificate["cached_voiceprints_dropped"] >= 1
    assert embedding.cache_get(profile.owner_id, cache_key) is None


def test_profile_detail_reports_quality_and_job_state(api, eager_jobs):
    profile = draft_profile()
    client = _client_for(api, profile)
    _post_sample(client, profile, "enrollment/sample1.flac", eager_jobs)
    body = client.get(f"/api/v1/profiles/{profile.pk}/").json()
    assert body["status"] == "pending"
    check_names = {c["name"] for c in body["samples"][0]["quality_report"]["checks"]}
    assert check_names == {"speech_duration", "snr", "clipping", "single_speaker"}
    assert body["samples"][0]["job_status"] == "succeeded"
