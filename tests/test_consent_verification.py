"""Consent checks: the owner must say the statement rendered for them, in the enrolled voice."""

import pytest

from governance.models import ConsentArtifact, IdentityVerification, VoiceChallenge, VoiceProfile
from tests.enrollment_helpers import (
    CHALLENGE_PHRASE,
    STATEMENT_PURPOSE,
    STATEMENT_VALID_UNTIL,
    client_for,
    draft_profile,
    post_sample,
    upload,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def enrolled(api, eager_jobs):
    profile = draft_profile()
    client = client_for(api, profile)
    for name in ("enrollment/sample1.flac", "enrollment/sample2.flac"):
        assert post_sample(client, profile, name, eager_jobs).status_code == 202
    profile.refresh_from_db()
    return profile, client


def _record(client, profile, recording, eager_jobs):
    body = {"recording": upload(recording), "purposes": [STATEMENT_PURPOSE], "valid_until": STATEMENT_VALID_UNTIL}
    with eager_jobs(execute=True):
        response = client.post(f"/api/v1/owners/{profile.owner.pk}/consents/", body, format="multipart")
    assert response.status_code == 202, response.content
    return ConsentArtifact.objects.get(pk=response.json()["id"])


def test_statement_spoken_in_the_enrolled_voice_verifies_consent_and_activates_profile(enrolled, eager_jobs):
    profile, client = enrolled
    consent = _record(client, profile, "enrollment/statement.flac", eager_jobs)
    assert consent.verification_status == ConsentArtifact.Verification.VERIFIED
    results = consent.verification_results["automated"]
    assert results["statement"]["wer"] <= results["statement"]["threshold"]
    assert results["speaker"]["score"] >= results["speaker"]["threshold"]
    profile.refresh_from_db()
    assert profile.status == VoiceProfile.Status.ACTIVE


def test_statement_text_is_rendered_for_the_owner_not_taken_from_the_client(enrolled, eager_jobs):
    profile, client = enrolled
    consent = _record(client, profile, "enrollment/statement.flac", eager_jobs)
    assert consent.statement_text.startswith("I, John Smith, consent to Northwind Bank")
    assert "December 31, 2030" in consent.statement_text


def test_wrong_statement_leaves_consent_unverified_with_the_reason(enrolled, eager_jobs):
    profile, client = enrolled
    consent = _record(client, profile, "enrollment/wrong_statement.flac", eager_jobs)
    assert consent.verification_status == ConsentArtifact.Verification.UNVERIFIED
    results = consent.verification_results["automated"]
    assert not results["passed"] and "words do not match" in results["reason"]
    assert results["statement"]["missing_required"]
    profile.refresh_from_db()
    assert profile.status == VoiceProfile.Status.PENDING


def test_statement_in_another_voice_fails_speaker_verification(enrolled, eager_jobs):
    profile, client = enrolled
    consent = _record(client, profile, "librispeech/1688-142285-0006.flac", eager_jobs)
    results = consent.verification_results["automated"]
    assert consent.verification_status == ConsentArtifact.Verification.UNVERIFIED
    assert not results["speaker"]["passed"] and "voice does not match" in results["reason"]


def test_consent_recording_before_any_enrolled_voice_is_unverified_with_reason(api, eager_jobs):
    profile = draft_profile()
    consent = _record(client_for(api, profile), profile, "enrollment/statement.flac", eager_jobs)
    assert consent.verification_status == ConsentArtifact.Verification.UNVERIFIED
    assert "no enrolled voice" in consent.verification_results["automated"]["reason"]


def test_passed_voice_challenge_verifies_identity(api, eager_jobs):
    profile = draft_profile(verified_identity=False)
    client = client_for(api, profile)
    for name in ("enrollment/sample1.flac", "enrollment/sample2.flac"):
        post_sample(client, profile, name, eager_jobs)
    issued = client.post(f"/api/v1/owners/{profile.owner.pk}/challenges/", {}, format="json")
    assert issued.status_code == 201, issued.content
    assert issued.json()["phrase"]
    VoiceChallenge.objects.filter(pk=issued.json()["id"]).update(phrase=CHALLENGE_PHRASE)  # the phrase the fixture says
    with eager_jobs(execute=True):
        answered = client.post(f"/api/v1/challenges/{issued.json()['id']}/response/", {"file": upload("enrollment/challenge.flac")}, format="multipart")
    assert answered.status_code == 202, answered.content
    challenge = VoiceChallenge.objects.get(pk=issued.json()["id"])
    assert challenge.status == VoiceChallenge.Status.PASSED, challenge.results
    assert challenge.identity_verification.method == IdentityVerification.Method.VOICE_CHALLENGE
    assert challenge.identity_verification.is_valid_at(challenge.created_at)


def test_challenge_answered_in_another_voice_fails(api, eager_jobs):
    profile = draft_profile(verified_identity=False)
    client = client_for(api, profile)
    post_sample(client, profile, "enrollment/sample1.flac", eager_jobs)
    challenge_id = client.post(f"/api/v1/owners/{profile.owner.pk}/challenges/", {}, format="json").json()["id"]
    with eager_jobs(execute=True):
        client.post(f"/api/v1/challenges/{challenge_id}/response/", {"file": upload("librispeech/1998-15444-0006.flac")}, format="multipart")
    challenge = VoiceChallenge.objects.get(pk=challenge_id)
    assert challenge.status == VoiceChallenge.Status.FAILED and challenge.identity_verification is None


def test_expired_challenge_is_410(api, eager_jobs):
    from datetime import timedelta

    from django.utils import timezone

    profile = draft_profile(verified_identity=False)
    client = client_for(api, profile)
    post_sample(client, profile, "enrollment/sample1.flac", eager_jobs)
    challenge_id = client.post(f"/api/v1/owners/{profile.owner.pk}/challenges/", {}, format="json").json()["id"]
    VoiceChallenge.objects.filter(pk=challenge_id).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.post(f"/api/v1/challenges/{challenge_id}/response/", {"file": upload("enrollment/challenge.flac")}, format="multipart")
    assert response.status_code == 410 and response.json()["error"]["code"] == "challenge_expired"


def test_challenge_before_enrollment_is_409(api):
    profile = draft_profile(verified_identity=False)
    response = client_for(api, profile).post(f"/api/v1/owners/{profile.owner.pk}/challenges/", {}, format="json")
    assert response.status_code == 409
