"""Voice profile lifecycle: the one place that decides which status changes are allowed.

draft -> pending -> active -> suspended | expired -> (active again on reinstatement or renewal)
any live state -> retired; any state -> erased (erasure is final).
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from governance import audit
from governance.errors import InvalidTransition
from governance.models import VoiceProfile

S = VoiceProfile.Status

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.PENDING, S.RETIRED, S.ERASED}),
    S.PENDING: frozenset({S.ACTIVE, S.DRAFT, S.RETIRED, S.ERASED}),
    S.ACTIVE: frozenset({S.SUSPENDED, S.EXPIRED, S.RETIRED, S.ERASED}),
    S.SUSPENDED: frozenset({S.ACTIVE, S.EXPIRED, S.RETIRED, S.ERASED}),
    S.EXPIRED: frozenset({S.ACTIVE, S.RETIRED, S.ERASED}),
    S.RETIRED: frozenset({S.ERASED}),
    S.ERASED: frozenset(),
}


def can_transition(current: str, target: str) -> bool:
    return target in ALLOWED_TRANSITIONS[current]


def transition(profile: VoiceProfile, target: str, *, actor: str, reason: str) -> VoiceProfile:
    """Move the profile to `target`, or raise InvalidTransition. Writes an audit event."""
    with transaction.atomic():
        locked = VoiceProfile.objects.select_for_update().select_related("owner").get(pk=profile.pk)
        if not can_transition(locked.status, target):
            raise InvalidTransition(f"profile {locked.pk} cannot go from {locked.status} to {target}")
        previous = locked.status
        locked.status, locked.status_reason, locked.status_changed_at = target, reason[:300], timezone.now()
        locked.save(update_fields=["status", "status_reason", "status_changed_at"])
        audit.record(
            "profile.status_changed",
            actor=actor,
            organization_id=locked.owner.organization_id,
            target=locked,
            data={"from": previous, "to": target, "reason_sha256": audit.text_digest(reason)},
        )
    profile.status, profile.status_reason, profile.status_changed_at = locked.status, locked.status_reason, locked.status_changed_at
    return profile
