"""Invariant 1, against the database: decide_synthesis() refuses each broken condition with its reason."""

from datetime import timedelta

import pytest
from django.utils import timezone

from governance import apikeys, consents, erasure, lifecycle
from governance.models import ApiKey, AuditEvent, IdentityVerification, VoiceProfile
from governance.policy import Reason, decide_synthesis
from tests.factories import PURPOSE, ConsentFactory, VoiceProfileFactory, authorized_setup, make_key

pytestmark = pytest.mark.django_db
TEXT = "Your appointment is confirmed for Tuesday."


def _decide(a, *, key="default", profile=None, purpose=PURPOSE):
    return decide_synthesis(a.key if key == "default" else key, profile or a.profile, purpose, TEXT)


def test_fully_authorized_request_is_allowed():
    assert _decide(authorized_setup()).allowed


def test_missing_key_is_refused():
    assert _decide(authorized_setup(), key=None).reason is Reason.KEY_MISSING


def test_revoked_key_is_refused():
    a = authorized_setup()
    apikeys.revoke(a.key, actor="test", reason="leaked")
    assert _decide(a).reason is Reason.KEY_REVOKED


def test_expired_key_is_refused():
    a = authorized_setup(expires_at=timezone.now() - timedelta(seconds=1))
    assert _decide(a).reason is Reason.KEY_EXPIRED


def test_key_without_synthesize_scope_is_refused():
    a = authorized_setup()
    key, _ = make_key(a.organization, actions=[ApiKey.Action.DETECT], profiles=[a.profile])
    assert _decide(a, key=key).reason is Reason.KEY_ACTION_NOT_ALLOWED


def test_key_not_scoped_to_the_profile_is_refused():
    a = authorized_setup()
    other = VoiceProfileFactory(owner=a.owner)
    assert _decide(a, profile=other).reason is Reason.KEY_PROFILE_NOT_ALLOWED


def test_key_of_another_organization_is_refused_even_if_it_names_the_profile():
    a, b = authorized_setup(), authorized_setup()
    ApiKey.profiles.through.objects.create(apikey=b.key, voiceprofile=a.profile)  # forged scope row
    assert _decide(a, key=b.key).reason is Reason.KEY_PROFILE_NOT_ALLOWED


def test_key_not_scoped_to_the_purpose_is_refused():
    a = authorized_setup(purposes=["marketing"])
    assert _decide(a).reason is Reason.KEY_PURPOSE_NOT_ALLOWED


@pytest.mark.parametrize("status", [s for s in VoiceProfile.Status.values if s != VoiceProfile.Status.ACTIVE])
def test_profile_not_active_is_refused(status):
    a = authorized_setup()
    VoiceProfile.objects.filter(pk=a.profile.pk).update(status=status)
    a.profile.refresh_from_db()
    assert _decide(a).reason is Reason.PROFILE_NOT_ACTIVE


def test_unverified_identity_is_refused():
    a = authorized_setup()
    IdentityVerification.objects.filter(owner=a.owner).update(status=IdentityVerification.Status.REJECTED)
    assert _decide(a).reason is Reason.IDENTITY_NOT_VERIFIED


def test_expired_identity_verification_is_refused():
    a = authorized_setup()
    IdentityVerification.objects.filter(owner=a.owner).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert _decide(a).reason is Reason.IDENTITY_NOT_VERIFIED


def test_missing_consent_is_refused():
    a = authorized_setup()
    a.consent.delete()
    assert _decide(a).reason is Reason.CONSENT_MISSING


def test_expired_consent_refuses_synthesis_even_before_the_expiry_job_runs():
    a = authorized_setup()
    type(a.consent).objects.filter(pk=a.consent.pk).update(valid_until=timezone.now() - timedelta(seconds=1))
    assert _decide(a).reason is Reason.CONSENT_EXPIRED


def test_revoked_consent_is_refused():
    a = authorized_setup()
    consents.revoke(a.consent, actor="test", reason="owner withdrew")
    assert _decide(a).reason is Reason.CONSENT_REVOKED


def test_unverified_consent_is_refused():
    a = authorized_setup()
    type(a.consent).objects.filter(pk=a.consent.pk).update(verification_status="unverified")
    assert _decide(a).reason is Reason.CONSENT_UNVERIFIED


def test_consent_not_yet_valid_is_refused():
    a = authorized_setup()
    type(a.consent).objects.filter(pk=a.consent.pk).update(valid_from=timezone.now() + timedelta(days=1))
    assert _decide(a).reason is Reason.CONSENT_NOT_YET_VALID


def test_consent_for_another_purpose_does_not_cover():
    a = authorized_setup(purposes=[PURPOSE, "audiobooks"])
    assert _decide(a, purpose="audiobooks").reason is Reason.CONSENT_PURPOSE_NOT_COVERED


def test_a_second_live_consent_covers_when_the_first_was_revoked():
    a = authorized_setup()
    consents.revoke(a.consent, actor="test", reason="superseded")
    ConsentFactory(profile=a.profile)
    assert _decide(a).allowed


def test_erased_owner_is_refused():
    a = authorized_setup()
    other_profile = VoiceProfileFactory(owner=a.owner)
    a.key.profiles.add(other_profile)
    erasure.erase(a.owner, actor="test")
    a.profile.refresh_from_db()
    a.key.refresh_from_db()
    ApiKey.objects.filter(pk=a.key.pk).update(revoked_at=None)  # even a key someone un-revoked
    a.key.refresh_from_db()
    assert _decide(a).reason is Reason.OWNER_ERASED


def test_rate_limit_refuses_with_retry_after():
    a = authorized_setup(rate_limit_per_minute=3)
    assert all(_decide(a).allowed for _ in range(3))
    refused = _decide(a)
    assert refused.reason is Reason.RATE_LIMIT_EXCEEDED
    assert 1 <= refused.retry_after_seconds <= 61


def test_refusals_do_not_spend_rate_limit():
    a = authorized_setup(rate_limit_per_minute=1)
    assert _decide(a, purpose="not-covered").reason is Reason.KEY_PURPOSE_NOT_ALLOWED
    assert _decide(a).allowed


def test_every_decision_is_audited_with_text_hash_not_text():
    a = authorized_setup()
    lifecycle.transition(a.profile, VoiceProfile.Status.SUSPENDED, actor="test", reason="review")
    _decide(a)
    event = AuditEvent.objects.filter(action="synthesis.decision").get()
    assert event.data["allowed"] is False and event.data["reason"] == "profile_not_active"
    assert event.data["key_prefix"] == a.key.prefix
    assert TEXT not in str(event.data) and len(event.data["text_sha256"]) == 64
