"""GDPR erasure by crypto-shredding: destroy the owner's data key, delete their blobs, retire what used them.

The database part commits first, so from that moment the data is unreadable even if deleting the
blob files is interrupted; running erase() again finishes the job and issues the certificate.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from governance import apikeys, audit, biometrics, keyring, lifecycle, voiceprints
from governance.models import ApiKey, ConsentArtifact, ErasureRequest, VoiceOwner, VoiceProfile
from voicegate import crypto

SCRUBBED_OWNER_FIELDS = ("full_name", "email", "external_ref")


def erase(owner: VoiceOwner, *, actor: str, reason: str = "") -> ErasureRequest:
    """Erase the owner's biometric and personal data. Idempotent; returns the completed request."""
    request = _open_request(owner, actor=actor, reason=reason)
    if request.status == ErasureRequest.Status.COMPLETED:
        return request
    facts = _shred(owner, actor=actor)
    facts["blobs_deleted"] = biometrics.delete_all_for(owner)
    facts["cached_voiceprints_dropped"] = voiceprints.forget(owner)
    return _complete(request, owner, facts, actor=actor)


def _open_request(owner: VoiceOwner, *, actor: str, reason: str) -> ErasureRequest:
    with transaction.atomic():
        existing = ErasureRequest.objects.filter(owner=owner).order_by("-created_at").first()
        if existing is not None and (existing.status == ErasureRequest.Status.RECEIVED or owner.is_erased):
            return existing
        request = ErasureRequest.objects.create(owner=owner, requested_by=actor, reason=reason[:300])
        audit.record("erasure.requested", actor=actor, organization_id=owner.organization_id, target=request, data={"owner": owner.pk})
        return request


def _shred(owner: VoiceOwner, *, actor: str) -> dict[str, object]:
    with transaction.atomic():
        locked = VoiceOwner.objects.select_for_update().get(pk=owner.pk)
        keyring.destroy_data_key(locked)
        for field in SCRUBBED_OWNER_FIELDS:
            setattr(locked, field, "")
        locked.erased_at = locked.erased_at or timezone.now()
        locked.save(update_fields=[*SCRUBBED_OWNER_FIELDS, "erased_at"])
        profiles = list(VoiceProfile.objects.filter(owner=locked))
        erased_profiles = [p.pk for p in profiles if p.status != VoiceProfile.Status.ERASED]
        for profile in profiles:
            if profile.status != VoiceProfile.Status.ERASED:
                lifecycle.transition(profile, VoiceProfile.Status.ERASED, actor=actor, reason="owner erased")
        # The statement names the owner; its hash stays as the non-personal record of what was agreed.
        ConsentArtifact.objects.filter(profile__owner=locked).update(statement_text="")
        revoked_keys = _revoke_keys_bound_only_to(locked, actor=actor)
    owner.refresh_from_db()
    return {"profiles_erased": erased_profiles, "api_keys_revoked": revoked_keys}


def _revoke_keys_bound_only_to(owner: VoiceOwner, *, actor: str) -> list[str]:
    revoked = []
    candidates = ApiKey.objects.filter(profiles__owner=owner, revoked_at__isnull=True).distinct()
    for key in candidates:
        if not key.profiles.exclude(owner=owner).exists():
            apikeys.revoke(key, actor=actor, reason="every profile it was bound to was erased")
            revoked.append(key.prefix)
    return revoked


def _complete(request: ErasureRequest, owner: VoiceOwner, facts: dict[str, object], *, actor: str) -> ErasureRequest:
    completed_at = timezone.now()
    certificate = {
        "certificate": "voicegate-erasure-v1",
        "erasure_request": request.pk,
        "owner": owner.pk,
        "organization": owner.organization_id,
        "requested_at": request.created_at.isoformat(),
        "completed_at": completed_at.isoformat(),
        "data_key_destroyed": owner.wrapped_data_key is None,
        "personal_fields_scrubbed": list(SCRUBBED_OWNER_FIELDS),
        **facts,
    }
    canonical = json.dumps(certificate, sort_keys=True, separators=(",", ":"))
    certificate["signature_hmac_sha256"] = crypto.hmac_sha256(settings.VOICEGATE_AUDIT_KEY, canonical.encode())
    with transaction.atomic():
        request.status, request.completed_at = ErasureRequest.Status.COMPLETED, completed_at
        request.certificate, request.certificate_sha256 = certificate, audit.sha256_hex(canonical)
        request.save(update_fields=["status", "completed_at", "certificate", "certificate_sha256"])
        audit.record(
            "erasure.completed",
            actor=actor,
            organization_id=owner.organization_id,
            target=request,
            data={"owner": owner.pk, "certificate_sha256": request.certificate_sha256},
        )
    return request
