from datetime import timedelta

import pytest
from django.utils import timezone

from governance import consents, identity
from governance.errors import InvalidTransition
from governance.models import AuditEvent, ConsentArtifact, IdentityVerification, VoiceProfile
from tests.factories import ConsentFactory, IdentityVerificationFactory, UserFactory, authorized_setup

pytestmark = pytest.mark.django_db


def test_revoking_the_last_live_consent_suspends_the_profile():
    a = authorized_setup()
    consents.revoke(a.consent, actor="test", reason="owner withdrew by phone")
    a.profile.refresh_from_db()
    assert a.profile.status == VoiceProfile.Status.SUSPENDED


def test_revoking_one_of_two_live_consents_keeps_the_profile_active():
    a = authorized_setup()
    ConsentFactory(profile=a.profile)
    consents.revoke(a.consent, actor="test", reason="superseded")
    a.profile.refresh_from_db()
    assert a.profile.status == VoiceProfile.Status.ACTIVE


def test_a_revoked_consent_cannot_be_verified():
    a = authorized_setup()
    consents.revoke(a.consent, actor="test", reason="withdrawn")
    with pytest.raises(InvalidTransition, match="revoked or has ended"):
        consents.verify(a.consent, actor="test", justification="oops")


def test_verifying_twice_is_audited_once():
    consent = ConsentFactory(verification_status=ConsentArtifact.Verification.UNVERIFIED)
    consents.verify(consent, actor="test", justification="checked")
    consents.verify(consent, actor="test", justification="checked again")
    assert AuditEvent.objects.filter(action="consent.verified").count() == 1


def test_renewal_does_not_reactivate_a_profile_whose_owner_is_no_longer_verified():
    profile = ConsentFactory(valid_until=timezone.now() + timedelta(seconds=1)).profile
    VoiceProfile.objects.filter(pk=profile.pk).update(status=VoiceProfile.Status.EXPIRED)
    renewal = ConsentFactory(profile=profile, verification_status=ConsentArtifact.Verification.UNVERIFIED)
    consents.verify(renewal, actor="test", justification="statement checked")
    profile.refresh_from_db()
    assert profile.status == VoiceProfile.Status.EXPIRED
    IdentityVerificationFactory(owner=profile.owner)
    renewal2 = ConsentFactory(profile=profile, verification_status=ConsentArtifact.Verification.UNVERIFIED)
    consents.verify(renewal2, actor="test", justification="statement checked")
    profile.refresh_from_db()
    assert profile.status == VoiceProfile.Status.ACTIVE


def test_approved_identity_expires_after_the_configured_period(settings):
    settings.VOICEGATE_IDENTITY_VALID_DAYS = 30
    pending = IdentityVerificationFactory(status=IdentityVerification.Status.PENDING)
    approved = identity.decide(pending, approve=True, officer=UserFactory(), note="passport seen")
    assert timedelta(days=29) < approved.expires_at - timezone.now() <= timedelta(days=30)


def test_free_text_enters_the_audit_log_only_as_a_hash():
    a = authorized_setup()
    consents.revoke(a.consent, actor="test", reason="Jane Doe called from +44 20 7946 0000")
    logged = str(list(AuditEvent.objects.values_list("data", flat=True)))
    assert "Jane Doe" not in logged and "reason_sha256" in logged
