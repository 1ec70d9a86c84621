"""Protected voices: enrolling a voice too close to one holds the profile for officer review, with the score."""

import pytest

from governance import protected_voices
from governance.models import VoiceProfile
from tests.enrollment_helpers import audio_bytes, client_for, draft_profile, post_sample, upload
from tests.factories import OrganizationFactory, officer_for

pytestmark = pytest.mark.django_db


def test_enrolling_a_protected_voice_holds_the_profile_for_review(api, eager_jobs):
    profile = draft_profile()
    protected_voices.register(
        profile.owner.organization, label="Chief Executive", samples=[(audio_bytes("enrollment/sample1.flac"), "s.flac")],
        applies_to_all_organizations=False, actor="test",
    )
    post_sample(client_for(api, profile), profile, "enrollment/sample2.flac", eager_jobs)
    profile.refresh_from_db()
    assert profile.held_for_review
    best = profile.enrollment_report["similar_voices"][0]
    assert best["name"] == "Chief Executive" and best["above_threshold"] and best["score"] >= 0.8


def test_other_organizations_protected_voice_is_scored_but_not_named(api, eager_jobs):
    profile = draft_profile()
    protected_voices.register(
        OrganizationFactory(), label="Their CEO", samples=[(audio_bytes("enrollment/sample1.flac"), "s.flac")],
        applies_to_all_organizations=True, actor="operator",
    )
    post_sample(client_for(api, profile), profile, "enrollment/sample2.flac", eager_jobs)
    profile.refresh_from_db()
    best = profile.enrollment_report["similar_voices"][0]
    assert profile.held_for_review and best["name"] == "(another organization's voice)" and best["id"] is None


def test_unrelated_voice_is_not_held(api, eager_jobs):
    profile = draft_profile()
    protected_voices.register(
        profile.owner.organization, label="Someone Else", samples=[(audio_bytes("librispeech/1688-142285-0006.flac"), "x.flac")],
        applies_to_all_organizations=False, actor="test",
    )
    post_sample(client_for(api, profile), profile, "enrollment/sample1.flac", eager_jobs)
    profile.refresh_from_db()
    assert not profile.held_for_review and profile.status == VoiceProfile.Status.PENDING, profile.enrollment_report


def test_officer_registers_a_protected_voice_through_the_api(api):
    organization = OrganizationFactory()
    api.force_authenticate(officer_for(organization))
    response = api.post(
        "/api/v1/protected-voices/",
        {"label": "Board Chair", "files": [upload("enrollment/sample1.flac")], "organization": organization.pk},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    assert response.json()["label"] == "Board Chair"


def test_only_the_operator_protects_a_voice_across_all_organizations(api):
    organization = OrganizationFactory()
    api.force_authenticate(officer_for(organization))
    response = api.post(
        "/api/v1/protected-voices/",
        {"label": "X", "files": [upload("enrollment/sample1.flac")], "applies_to_all_organizations": True},
        format="multipart",
    )
    assert response.status_code == 403
