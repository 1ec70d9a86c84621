"""Fitting each enabled engine's voice to a profile, from the enrollment samples whose audio is still held.

Runs as a job after enrollment; afterwards the raw sample audio is released (deleted unless a retention
period keeps it), so a later re-fit uses the samples held at that time.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import transaction

from governance import audit, biometrics, enrollment, voice_checks
from governance.models import BiometricBlob, EnrollmentSample, VoiceProfile
from synthesis import registry
from synthesis.models import FittedVoice

SYSTEM_ACTOR = "system:voice-fitting"


def fit_all_engines(profile_id: int) -> list[FittedVoice]:
    profile = VoiceProfile.objects.select_related("owner").get(pk=profile_id)
    samples = list(
        EnrollmentSample.objects.filter(profile=profile, verdict=EnrollmentSample.Verdict.ACCEPTED, audio__isnull=False)
        .select_related("audio__owner")
    )
    if not samples or profile.owner.is_erased:
        return []
    clips = [voice_checks.decode(biometrics.read(s.audio, actor=SYSTEM_ACTOR, purpose="voice fitting"), None).samples for s in samples]
    fitted = [_fit(profile, name, clips) for name in settings.VOICEGATE_ENGINES]
    enrollment.release_audio(samples)
    return fitted


def _fit(profile: VoiceProfile, engine_name: str, clips: list) -> FittedVoice:  # type: ignore[type-arg]
    engine = registry.get(engine_name)
    started = time.perf_counter()
    state = engine.fit_voice(clips)
    seconds = time.perf_counter() - started
    with biometrics.staged(profile.owner, BiometricBlob.Kind.VOICE_STATE, state) as blob:
        with transaction.atomic():
            FittedVoice.objects.get_or_create(profile=profile, engine=engine_name)
            fitted = FittedVoice.objects.select_for_update().get(profile=profile, engine=engine_name)
            old = fitted.state
            fitted.state, fitted.samples_used, fitted.fit_seconds = blob, len(clips), round(seconds, 2)
            fitted.save()
            audit.record(
                "synthesis.voice_fitted", actor=SYSTEM_ACTOR, organization_id=profile.owner.organization_id, target=fitted,
                data={"profile": profile.pk, "engine": engine_name, "samples": len(clips), "fit_seconds": fitted.fit_seconds},
            )
            if old is not None:
                transaction.on_commit(lambda: biometrics.delete(old))
    return fitted
