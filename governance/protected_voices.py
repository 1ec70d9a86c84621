"""Protected voices: people whose voice must never be cloned (public figures, executives).

The protected person is a data subject like any other (a VoiceOwner), so their voiceprint is encrypted
under their own key and erasable. Only the voiceprint is kept, never the audio it came from.
"""

from __future__ import annotations

from django.db import transaction

from governance import audit, voice_checks, voiceprints
from governance.models import Organization, ProtectedVoice, VoiceOwner
from voicegate.audio import embedding


def register(
    organization: Organization,
    *,
    label: str,
    samples: list[tuple[bytes, str | None]],
    applies_to_all_organizations: bool,
    actor: str,
) -> ProtectedVoice:
    if not samples:
        raise ValueError("at least one sample of the protected voice is needed")
    vectors = [voice_checks.embed(voice_checks.decode(data, name)) for data, name in samples]
    with transaction.atomic():
        owner = VoiceOwner.objects.create(organization=organization, full_name=label)
        voice = ProtectedVoice.objects.create(
            owner=owner, label=label, applies_to_all_organizations=applies_to_all_organizations, registered_by=actor,
            embedding=voiceprints.store(owner, embedding.profile_embedding(vectors)),
        )
        audit.record(
            "protected_voice.registered", actor=actor, organization_id=organization.pk, target=voice,
            data={"samples": len(samples), "applies_to_all_organizations": applies_to_all_organizations},
        )
    return voice
