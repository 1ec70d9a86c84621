"""Creating voice profiles, and activation: an officer may activate one only once owner and consent are verified."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from governance import audit, lifecycle
from governance.errors import InvalidTransition, OwnerErased
from governance.models import IdentityVerification, VoiceOwner, VoiceProfile


def create(owner: VoiceOwner, *, name: str, actor: str) -> VoiceProfile:
    if owner.is_erased:
        raise OwnerErased(f"owner {owner.pk} was erased")
    with transaction.atomic():
        profile = VoiceProfile.objects.create(owner=owner, name=name)
        audit.record("profile.created", actor=actor, organization_id=owner.organization_id, target=profile)
    return profile


def activation_blockers(profile: VoiceProfile) -> list[str]:
    now = timezone.now()
    blockers = []
    if profile.owner.is_erased:
        blockers.append("the owner was erased")
    if not any(v.is_valid_at(now) for v in IdentityVerification.objects.filter(owner=profile.owner)):
        blockers.append("the owner's identity is not verified")
    if not profile.live_consents(now).exists():
        blockers.append("no verified, unexpired, unrevoked consent")
    return blockers


def activate(profile: VoiceProfile, *, actor: str) -> VoiceProfile:
    blockers = activation_blockers(profile)
    if blockers:
        raise InvalidTransition(f"profile {profile.pk} cannot be activated: {'; '.join(blockers)}")
    return lifecycle.transition(profile, VoiceProfile.Status.ACTIVE, actor=actor, reason="activated by an officer")


def activate_when_ready(profile: VoiceProfile, *, actor: str) -> None:
    """Activate a pending profile, or renew an expired one, once nothing blocks it and nothing holds it for review.

    Renewal re-checks everything activation checks: a stale identity verification blocks it too.
    """
    profile.refresh_from_db()
    if profile.held_for_review or profile.status not in (VoiceProfile.Status.PENDING, VoiceProfile.Status.EXPIRED):
        return
    if not activation_blockers(profile):
        lifecycle.transition(profile, VoiceProfile.Status.ACTIVE, actor=actor, reason="identity and consent verified")
