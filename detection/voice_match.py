"""Which protected voice, or which of the caller's organization's voices, does a clip sound like?

Erased owners never appear: their voiceprints no longer exist, and the queries exclude them as well.
"""

from __future__ import annotations

import numpy as np
from django.db.models import Q

from governance import voice_checks, voiceprints
from governance.models import ProtectedVoice, VoiceProfile
from voicegate.audio import embedding

TOP_MATCHES = 5


def closest_voices(clip_embedding: np.ndarray, organization_ids: frozenset[int], *, actor: str) -> dict[str, object]:
    candidates = _protected(organization_ids) + _profiles(organization_ids)
    threshold = voice_checks.speaker_threshold()
    if not candidates:
        return {"threshold": threshold, "matches": []}
    vectors = voiceprints.load_many([blob for _, blob in candidates], actor=actor, purpose="detection voice match")
    scored = [{**label, "score": round(embedding.cosine(clip_embedding, v), 4)} for (label, _), v in zip(candidates, vectors)]
    scored.sort(key=lambda m: m["score"], reverse=True)
    return {"threshold": threshold, "matches": [{**m, "above_threshold": m["score"] >= threshold} for m in scored[:TOP_MATCHES]]}


def _protected(organization_ids: frozenset[int]) -> list[tuple[dict[str, object], object]]:
    voices = ProtectedVoice.objects.filter(
        Q(applies_to_all_organizations=True) | Q(owner__organization_id__in=organization_ids),
        embedding__isnull=False, owner__erased_at__isnull=True,
    ).select_related("embedding__owner")
    return [({"kind": "protected_voice", "id": v.pk, "name": v.label}, v.embedding) for v in voices]


def _profiles(organization_ids: frozenset[int]) -> list[tuple[dict[str, object], object]]:
    profiles = VoiceProfile.objects.filter(
        owner__organization_id__in=organization_ids, status=VoiceProfile.Status.ACTIVE,
        embedding__isnull=False, owner__erased_at__isnull=True,
    ).select_related("embedding__owner")
    return [({"kind": "voice_profile", "id": p.pk, "name": p.name}, p.embedding) for p in profiles]
