"""The "Compliance officers" group: the model permissions the admin needs before any object grant counts.

Model permissions only open the admin; which organizations an officer sees is decided per object by
django-guardian's `governance.oversee_organization` grants (governance.permissions.officer_organization_ids).
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import transaction

from detection.models import Detection
from governance.models import (
    AbuseFlag,
    ApiKey,
    AuditEvent,
    ConsentArtifact,
    EnrollmentSample,
    ErasureRequest,
    IdentityVerification,
    ProtectedVoice,
    VoiceChallenge,
    VoiceOwner,
    VoiceProfile,
)

OFFICER_GROUP = "Compliance officers"

# "change" opens the admin actions (decide, verify, revoke, erase); the change forms themselves
# leave decisions read-only. Nobody gets "add" or "delete": those go through the services.
OFFICER_MODEL_PERMISSIONS: dict[type, tuple[str, ...]] = {
    VoiceOwner: ("view", "change"),
    VoiceProfile: ("view", "change"),
    ConsentArtifact: ("view", "change"),
    IdentityVerification: ("view", "change"),
    ApiKey: ("view", "change"),
    AbuseFlag: ("view", "change"),
    ErasureRequest: ("view",),
    AuditEvent: ("view",),
    EnrollmentSample: ("view",),
    VoiceChallenge: ("view",),
    ProtectedVoice: ("view",),
    Detection: ("view",),
}


def officer_permissions() -> list[Permission]:
    permissions = []
    for model, verbs in OFFICER_MODEL_PERMISSIONS.items():
        content_type = ContentType.objects.get_for_model(model)
        codenames = [f"{verb}_{model._meta.model_name}" for verb in verbs]
        found = list(Permission.objects.filter(content_type=content_type, codename__in=codenames))
        if len(found) != len(codenames):
            # Permissions are created after migrate; a group silently missing some would lock officers out.
            raise LookupError(f"missing permissions {sorted(set(codenames) - {p.codename for p in found})}; run migrate first")
        permissions.extend(found)
    return permissions


def ensure_officer_group() -> Group:
    """Create or update the group so it holds exactly the officer permissions. Idempotent."""
    with transaction.atomic():
        group, _ = Group.objects.get_or_create(name=OFFICER_GROUP)
        group.permissions.set(officer_permissions())
    return group
