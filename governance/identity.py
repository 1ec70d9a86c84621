"""Identity verification: evidence is recorded (encrypted when it is a scan) and an officer decides."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from governance import audit, biometrics
from governance.errors import InvalidTransition
from governance.models import BiometricBlob, IdentityVerification, VoiceOwner


def request_verification(
    owner: VoiceOwner, *, method: str, actor: str, evidence: bytes | None = None, evidence_content_type: str = ""
) -> IdentityVerification:
    if method not in IdentityVerification.Method.values:
        raise ValueError(f"unknown verification method {method!r}")
    with transaction.atomic():
        blob = biometrics.store(owner, BiometricBlob.Kind.ID_SCAN, evidence, content_type=evidence_content_type) if evidence else None
        verification = IdentityVerification.objects.create(
            owner=owner, method=method, evidence=blob, evidence_sha256=audit.sha256_hex(evidence) if evidence else ""
        )
        audit.record(
            "identity.requested", actor=actor, organization_id=owner.organization_id, target=verification,
            data={"owner": owner.pk, "method": method, "evidence_sha256": verification.evidence_sha256},
        )
    return verification


def decide(
    verification: IdentityVerification, *, approve: bool, officer: object, note: str, expires_at: datetime | None = None
) -> IdentityVerification:
    """An officer approves or rejects a pending verification; a decided one cannot be decided again."""
    with transaction.atomic():
        locked = IdentityVerification.objects.select_for_update().select_related("owner").get(pk=verification.pk)
        if locked.status != IdentityVerification.Status.PENDING:
            raise InvalidTransition(f"identity verification {locked.pk} is already {locked.status}")
        locked.status = IdentityVerification.Status.APPROVED if approve else IdentityVerification.Status.REJECTED
        locked.decided_by, locked.decided_at, locked.decision_note = officer, timezone.now(), note
        if approve and expires_at is None:
            expires_at = timezone.now() + timedelta(days=settings.VOICEGATE_IDENTITY_VALID_DAYS)
        locked.expires_at = expires_at
        locked.save(update_fields=["status", "decided_by", "decided_at", "decision_note", "expires_at"])
        audit.record(
            f"identity.{locked.status}", actor=audit.actor_for_user(officer), organization_id=locked.owner.organization_id,
            target=locked, data={"method": locked.method, "note_sha256": audit.text_digest(note)},
        )
    return locked
