"""Consent lifecycle: record, verify (officer review until automated checks land), revoke, expire, remind, renew."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from governance import audit, lifecycle, profiles
from governance.errors import InvalidTransition
from governance.models import BiometricBlob, ConsentArtifact, VoiceProfile

logger = logging.getLogger(__name__)
SYSTEM_ACTOR = "system:consent-jobs"


def content_hash(statement_text: str, purposes: Iterable[str], valid_from: datetime, valid_until: datetime, recording_sha256: str) -> str:
    content = {
        "statement": statement_text,
        "purposes": sorted(purposes),
        "valid_from": valid_from.isoformat(),
        "valid_until": valid_until.isoformat(),
        "recording_sha256": recording_sha256,
    }
    return audit.sha256_hex(json.dumps(content, sort_keys=True))


def record_consent(
    profile: VoiceProfile,
    *,
    statement_text: str,
    purposes: list[str],
    valid_from: datetime,
    valid_until: datetime,
    actor: str,
    recording: BiometricBlob | None = None,
    recording_sha256: str = "",
) -> ConsentArtifact:
    if valid_until <= valid_from:
        raise ValueError("valid_until must be after valid_from")
    with transaction.atomic():
        consent = ConsentArtifact.objects.create(
            profile=profile,
            statement_text=statement_text,
            purposes=sorted(set(purposes)),
            valid_from=valid_from,
            valid_until=valid_until,
            recording=recording,
            content_sha256=content_hash(statement_text, purposes, valid_from, valid_until, recording_sha256),
        )
        audit.record(
            "consent.recorded",
            actor=actor,
            organization_id=profile.owner.organization_id,
            target=consent,
            data={"profile": profile.pk, "purposes": consent.purposes, "valid_until": valid_until.isoformat(), "content_sha256": consent.content_sha256},
        )
    return consent


def verify(consent: ConsentArtifact, *, actor: str, justification: str) -> ConsentArtifact:
    """An officer marks the consent verified; a verified consent renews an expired profile. Idempotent."""
    with transaction.atomic():
        locked = ConsentArtifact.objects.select_for_update().select_related("profile__owner").get(pk=consent.pk)
        if locked.revoked_at is not None or locked.valid_until <= timezone.now():
            raise InvalidTransition(f"consent {locked.pk} is revoked or has ended; record a new consent instead")
        if locked.verification_status == ConsentArtifact.Verification.VERIFIED:
            return locked
        locked.verification_status = ConsentArtifact.Verification.VERIFIED
        locked.verified_at = timezone.now()
        locked.verification_results = {**locked.verification_results, "officer_override": {"actor": actor, "justification": justification}}
        locked.save(update_fields=["verification_status", "verified_at", "verification_results"])
        audit.record(
            "consent.verified", actor=actor, organization_id=locked.profile.owner.organization_id, target=locked,
            data={"justification_sha256": audit.text_digest(justification)},
        )
        profiles.activate_when_ready(locked.profile, actor=actor)
    return locked


def revoke(consent: ConsentArtifact, *, actor: str, reason: str) -> ConsentArtifact:
    with transaction.atomic():
        updated = ConsentArtifact.objects.filter(pk=consent.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revocation_reason=reason[:300]
        )
        consent.refresh_from_db()
        if updated:
            audit.record(
                "consent.revoked", actor=actor, organization_id=consent.profile.owner.organization_id, target=consent,
                data={"reason_sha256": audit.text_digest(reason)},
            )
            _suspend_profile_without_live_consent(consent.profile, actor=actor)
    return consent


def expire_due(now: datetime | None = None) -> list[int]:
    """Mark consents past valid_until as expired and expire profiles left with no live consent. Idempotent."""
    moment = now or timezone.now()
    processed = []
    due = ConsentArtifact.objects.filter(valid_until__lte=moment, expired_at__isnull=True)
    for consent_id in due.values_list("pk", flat=True):
        with transaction.atomic():
            # Claim the row: a second worker running the same job updates nothing and skips it.
            if not ConsentArtifact.objects.filter(pk=consent_id, expired_at__isnull=True).update(expired_at=moment):
                continue
            consent = ConsentArtifact.objects.select_related("profile__owner").get(pk=consent_id)
            audit.record("consent.expired", actor=SYSTEM_ACTOR, organization_id=consent.profile.owner.organization_id, target=consent)
            _expire_profile_without_live_consent(consent.profile, moment)
            processed.append(consent_id)
    return processed


def send_reminders(now: datetime | None = None) -> list[int]:
    """E-mail owners whose consent ends within the reminder window, once per consent. Idempotent."""
    moment = now or timezone.now()
    horizon = moment + timedelta(days=settings.VOICEGATE_CONSENT_REMINDER_DAYS)
    sent = []
    due = ConsentArtifact.objects.filter(
        valid_until__gt=moment, valid_until__lte=horizon, reminder_sent_at__isnull=True, revoked_at__isnull=True,
        verification_status=ConsentArtifact.Verification.VERIFIED,
    )
    for consent_id in due.values_list("pk", flat=True):
        if not ConsentArtifact.objects.filter(pk=consent_id, reminder_sent_at__isnull=True).update(reminder_sent_at=moment):
            continue
        consent = ConsentArtifact.objects.select_related("profile__owner__organization").get(pk=consent_id)
        _send_reminder(consent)
        sent.append(consent_id)
    return sent


def _send_reminder(consent: ConsentArtifact) -> None:
    owner = consent.profile.owner
    if not owner.email or owner.is_erased:
        return
    send_mail(
        subject=f"Your voice consent with {owner.organization.name} ends on {consent.valid_until:%Y-%m-%d}",
        message=(
            f"Your consent for {owner.organization.name} to use a synthetic version of your voice "
            f"({', '.join(consent.purposes)}) ends on {consent.valid_until:%Y-%m-%d %H:%M} UTC.\n"
            "If you wish it to continue, record a new consent statement; otherwise nothing is needed: "
            "the voice stops being available on that date."
        ),
        from_email=None,
        recipient_list=[owner.email],
    )
    audit.record("consent.reminder_sent", actor=SYSTEM_ACTOR, organization_id=owner.organization_id, target=consent)


def _expire_profile_without_live_consent(profile: VoiceProfile, now: datetime) -> None:
    if not profile.live_consents(now).exists() and lifecycle.can_transition(profile.status, VoiceProfile.Status.EXPIRED):
        lifecycle.transition(profile, VoiceProfile.Status.EXPIRED, actor=SYSTEM_ACTOR, reason="consent expired")


def _suspend_profile_without_live_consent(profile: VoiceProfile, *, actor: str) -> None:
    if profile.status == VoiceProfile.Status.ACTIVE and not profile.live_consents(timezone.now()).exists():
        lifecycle.transition(profile, VoiceProfile.Status.SUSPENDED, actor=actor, reason="its last live consent was revoked")


