"""Consent expiry, reminders and renewal, run by a real Celery worker where the jobs run in production.

The worker tests send the beat jobs (governance.tasks) through the configured broker and poll the
database for their effect; see tests/celery_worker.py for how the worker shares the test database.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from governance import audit, consents
from governance.models import AuditEvent, ConsentArtifact, VoiceProfile
from governance.tasks import expire_consents, send_consent_reminders
from tests.factories import PURPOSE, ConsentFactory, IdentityVerificationFactory, VoiceProfileFactory

worker_test = pytest.mark.celery_worker


def lapsed_consent(**kwargs: object) -> ConsentArtifact:
    """A verified consent whose window closed a minute ago, not yet processed by the expiry job."""
    now = timezone.now()
    return ConsentFactory(valid_from=now - timedelta(days=60), valid_until=now - timedelta(minutes=1), **kwargs)


def consent_ending_in(delta: timedelta, **kwargs: object) -> ConsentArtifact:
    return ConsentFactory(valid_until=timezone.now() + delta, **kwargs)


def events(action: str, target: object) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, target_type=target._meta.label, target_id=str(target.pk)))


def processed(consent: ConsentArtifact) -> bool:
    consent.refresh_from_db()
    return consent.expired_at is not None


def reminded(consent: ConsentArtifact) -> bool:
    consent.refresh_from_db()
    return consent.reminder_sent_at is not None


def mails_to(worker: object, address: str) -> list:
    return [mail for mail in worker.mails() if address in str(mail["To"])]


@worker_test
def test_expired_consent_expires_its_profile_via_worker(celery_worker_process):
    worker = celery_worker_process
    consent = lapsed_consent()
    profile = consent.profile

    expire_consents.delay()

    worker.wait_until(lambda: processed(consent), "the lapsed consent to be marked expired")
    profile.refresh_from_db()
    assert profile.status == VoiceProfile.Status.EXPIRED
    assert profile.status_reason == "consent expired"
    assert [e.actor for e in events("consent.expired", consent)] == [consents.SYSTEM_ACTOR]
    [change] = events("profile.status_changed", profile)
    assert (change.data["from"], change.data["to"]) == (VoiceProfile.Status.ACTIVE, VoiceProfile.Status.EXPIRED)
    assert change.organization_id == profile.owner.organization_id
    # The worker's audit rows chain onto ours under the same key.
    assert audit.verify_chain().ok


@worker_test
def test_profile_with_another_live_consent_stays_active_via_worker(celery_worker_process):
    worker = celery_worker_process
    consent = lapsed_consent()
    profile = consent.profile
    ConsentFactory(profile=profile)  # still in its window

    expire_consents.delay()

    worker.wait_until(lambda: processed(consent), "the lapsed consent to be marked expired")
    profile.refresh_from_db()
    assert profile.status == VoiceProfile.Status.ACTIVE
    assert len(events("consent.expired", consent)) == 1
    assert events("profile.status_changed", profile) == []


@worker_test
def test_consent_still_in_its_window_is_left_alone_via_worker(celery_worker_process):
    worker = celery_worker_process
    live = ConsentFactory()
    lapsed = lapsed_consent()

    worker.wait_for_task(expire_consents.delay())

    assert processed(lapsed)
    assert not processed(live)
    live.profile.refresh_from_db()
    assert live.profile.status == VoiceProfile.Status.ACTIVE


@worker_test
def test_expiry_job_run_twice_records_one_expiry_via_worker(celery_worker_process):
    worker = celery_worker_process
    consent = lapsed_consent()
    profile = consent.profile

    worker.wait_for_task(expire_consents.delay())
    worker.wait_until(lambda: processed(consent), "the lapsed consent to be marked expired")
    first_expired_at = consent.expired_at
    worker.wait_for_task(expire_consents.delay())

    consent.refresh_from_db()
    profile.refresh_from_db()
    assert consent.expired_at == first_expired_at
    assert profile.status == VoiceProfile.Status.EXPIRED
    assert len(events("consent.expired", consent)) == 1
    assert len(events("profile.status_changed", profile)) == 1
    assert audit.verify_chain().ok


@worker_test
def test_consent_ending_within_reminder_window_gets_one_reminder_naming_the_organization_via_worker(celery_worker_process):
    worker = celery_worker_process
    window = timedelta(days=settings.VOICEGATE_CONSENT_REMINDER_DAYS)
    ending = consent_ending_in(window - timedelta(days=1))
    later = consent_ending_in(window + timedelta(days=5))
    owner, organization = ending.profile.owner, ending.profile.owner.organization

    send_consent_reminders.delay()

    [mail] = worker.wait_until(lambda: mails_to(worker, owner.email), f"a reminder mail to {owner.email}")
    assert organization.name in mail["Subject"]
    assert organization.name in mail.get_content()
    assert ending.valid_until.strftime("%Y-%m-%d") in mail["Subject"]
    assert reminded(ending)
    assert [e.actor for e in events("consent.reminder_sent", ending)] == [consents.SYSTEM_ACTOR]
    assert not reminded(later)
    assert mails_to(worker, later.profile.owner.email) == []


@worker_test
def test_reminder_job_run_twice_sends_one_mail_via_worker(celery_worker_process):
    worker = celery_worker_process
    ending = consent_ending_in(timedelta(days=2))
    address = ending.profile.owner.email

    worker.wait_for_task(send_consent_reminders.delay())
    worker.wait_until(lambda: mails_to(worker, address), f"a reminder mail to {address}")
    worker.wait_for_task(send_consent_reminders.delay())

    assert len(mails_to(worker, address)) == 1
    assert len(worker.mails()) == 1
    assert len(events("consent.reminder_sent", ending)) == 1


@worker_test
def test_revoked_or_unverified_consent_gets_no_reminder_via_worker(celery_worker_process):
    worker = celery_worker_process
    revoked = consent_ending_in(timedelta(days=2), revoked_at=timezone.now(), revocation_reason="withdrawn")
    unverified = consent_ending_in(timedelta(days=2), verification_status=ConsentArtifact.Verification.UNVERIFIED)
    ending = consent_ending_in(timedelta(days=2))

    worker.wait_for_task(send_consent_reminders.delay())

    assert reminded(ending)
    assert not reminded(revoked)
    assert not reminded(unverified)
    assert [str(mail["To"]) for mail in worker.mails()] == [ending.profile.owner.email]


@pytest.mark.django_db
def test_new_verified_consent_renews_expired_profile():
    now = timezone.now()
    old = lapsed_consent()
    profile = old.profile
    IdentityVerificationFactory(owner=profile.owner)
    consents.expire_due()
    profile.refresh_from_db()
    assert profile.status == VoiceProfile.Status.EXPIRED

    renewal = consents.record_consent(
        profile,
        statement_text="I consent to a synthetic version of my voice for support calls for another year.",
        purposes=[PURPOSE],
        valid_from=now,
        valid_until=now + timedelta(days=365),
        actor="officer:test",
    )
    profile.refresh_from_db()
    assert profile.status == VoiceProfile.Status.EXPIRED  # recorded is not enough: it must be verified

    consents.verify(renewal, actor="officer:test", justification="statement and voice checked")

    profile.refresh_from_db()
    assert profile.status == VoiceProfile.Status.ACTIVE
    assert [(e.data["from"], e.data["to"]) for e in events("profile.status_changed", profile)] == [
        (VoiceProfile.Status.ACTIVE, VoiceProfile.Status.EXPIRED),
        (VoiceProfile.Status.EXPIRED, VoiceProfile.Status.ACTIVE),
    ]
    assert len(events("consent.verified", renewal)) == 1


@pytest.mark.django_db
def test_verifying_a_consent_leaves_a_suspended_profile_suspended():
    profile = VoiceProfileFactory(status=VoiceProfile.Status.SUSPENDED)
    consent = ConsentFactory(profile=profile, verification_status=ConsentArtifact.Verification.UNVERIFIED)

    consents.verify(consent, actor="officer:test", justification="checked")

    profile.refresh_from_db()
    assert profile.status == VoiceProfile.Status.SUSPENDED
