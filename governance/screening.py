"""Similarity screen at enrollment: is this voice a protected voice, or another owner's active voice?

Scores come back for the officer; voices of other organizations are never named, only counted as matches.
"""

from __future__ import annotations

import numpy as np
from django.db.models import Q

from governance import voice_checks, voiceprints
from governance.models import ProtectedVoice, VoiceProfile
from voicegate.audio import embedding

TOP_MATCHES = 5


def screen(voiceprint: np.ndarray, profile: VoiceProfile, *, actor: str) -> list[dict[str, object]]:
    """The closest protected voices and other owners' active profiles, best first, with scores."""
    candidates = _protected_candidates(profile) + _profile_candidates(profile)
    if not candidates:
        return []
    vectors = voiceprints.load_many([blob for _, blob in candidates], actor=actor, purpose="similarity screen")
    threshold = voice_checks.protected_voice_threshold()
    scored = [
        {**label, "score": round(embedding.cosine(voiceprint, vector), 4)}
        for (label, _), vector in zip(candidates, vectors)
    ]
    scored.sort(key=lambda m: m["score"], reverse=True)
    return [{**m, "above_threshold": m["score"] >= threshold} for m in scored[:TOP_MATCHES]]


def _protected_candidates(profile: VoiceProfile) -> list[tuple[dict[str, object], object]]:
    organization_id = profile.owner.organization_id
    voices = ProtectedVoice.objects.filter(
        Q(applies_to_all_organizations=True) | Q(owner__organization_id=organization_id),
        embedding__isnull=False,
        owner__erased_at__isnull=True,
    ).exclude(owner_id=profile.owner_id).select_related("embedding__owner", "owner")
    return [(_label("protected_voice", v.pk, v.label, v.owner.organization_id == organization_id), v.embedding) for v in voices]


def _profile_candidates(profile: VoiceProfile) -> list[tuple[dict[str, object], object]]:
    organization_id = profile.owner.organization_id
    others = VoiceProfile.objects.filter(status=VoiceProfile.Status.ACTIVE, embedding__isnull=False).exclude(
        owner_id=profile.owner_id
    ).select_related("embedding__owner", "owner")
    return [(_label("voice_profile", p.pk, p.name, p.owner.organization_id == organization_id), p.embedding) for p in others]


def _label(kind: str, pk: int, name: str, same_organization: bool) -> dict[str, object]:
    if same_organization:
        return {"kind": kind, "id": pk, "name": name}
    return {"kind": kind, "id": None, "name": "(another organization's voice)"}
