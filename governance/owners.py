"""Registering a voice owner (the data subject)."""

from __future__ import annotations

from django.db import transaction

from governance import audit
from governance.models import Organization, VoiceOwner


def register(organization: Organization, *, actor: str, full_name: str, email: str = "", external_ref: str = "") -> VoiceOwner:
    with transaction.atomic():
        owner = VoiceOwner.objects.create(organization=organization, full_name=full_name, email=email, external_ref=external_ref)
        # Audit facts only, no personal data: the log outlives erasure.
        audit.record("owner.registered", actor=actor, organization_id=organization.pk, target=owner)
    return owner
