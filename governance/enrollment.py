"""Voice enrollment: take a sample safely, judge it, embed it, and keep the profile's voiceprint current.

submit_sample() runs in the request: decode and quality gate (so a bad sample is refused at once, with the
checks), then the encrypted sample and a queued job. process_sample() runs in a worker: embed, recompute the
profile's voiceprint, screen it against protected voices and other owners, delete the raw audio.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import numpy as np
from celery import current_app
from django.conf import settings
from django.db import OperationalError, transaction
from django.utils import timezone

from governance import audit, biometrics, lifecycle, screening, voice_checks, voiceprints
from governance.errors import GovernanceError, OwnerErased
from governance.models import BiometricBlob, EnrollmentSample, JobStatus, VoiceProfile
from voicegate.audio import embedding

SYSTEM_ACTOR = "system:enrollment"
TRANSIENT_ERRORS = (OperationalError, OSError)
_ENROLLABLE = {VoiceProfile.Status.DRAFT, VoiceProfile.Status.PENDING, VoiceProfile.Status.ACTIVE}


class SampleRejected(GovernanceError):
    """The sample decoded but failed the quality gate; `report` says which checks and by how much."""

    code = "sample_quality_insufficient"

    def __init__(self, message: str, report: dict[str, object]) -> None:
        super().__init__(message)
        self.details = report


class ProfileNotEnrollable(GovernanceError):
    code = "profile_not_enrollable"


def submit_sample(profile: VoiceProfile, data: bytes, filename: str | None, *, actor: str) -> EnrollmentSample:
    """Decode and judge the sample now; store it encrypted and queue the embedding job. Raises on refusal."""
    _check_enrollable(profile)
    audio = voice_checks.decode(data, filename)  # AudioRejected -> 400 with its reason
    report = voice_checks.assess_quality(audio)
    report_dict = voice_checks.quality_report_dict(report)
    if not report.passed:
        failed = ", ".join(f"{c.name} {c.value:.3g} vs {c.rule} {c.threshold}" for c in report.failed if c.value is not None)
        raise SampleRejected(f"the sample failed the quality gate: {failed}", report_dict)
    with biometrics.staged(profile.owner, BiometricBlob.Kind.SAMPLE_AUDIO, data, content_type=audio.source_format) as blob:
        with transaction.atomic():
            sample = EnrollmentSample.objects.create(
                profile=profile, audio=blob, audio_sha256=hashlib.sha256(data).hexdigest(), quality_report=report_dict
            )
            audit.record(
                "enrollment.sample_received", actor=actor, organization_id=profile.owner.organization_id, target=sample,
                data={"profile": profile.pk, "audio_sha256": sample.audio_sha256, "duration_s": round(audio.duration_s, 2)},
            )
            transaction.on_commit(lambda: _enqueue(sample.pk))
    return sample


def _enqueue(sample_id: int) -> None:
    from governance import tasks  # tasks imports this module

    tasks.process_sample.delay(sample_id)


def _check_enrollable(profile: VoiceProfile) -> None:
    if profile.owner.is_erased:
        raise OwnerErased(f"owner {profile.owner_id} was erased")
    if profile.status not in _ENROLLABLE:
        raise ProfileNotEnrollable(f"profile {profile.pk} is {profile.status}; samples are taken in draft, pending or active")


def process_sample(sample_id: int) -> EnrollmentSample | None:
    """The job. Claims the sample, so a duplicate or retried delivery does nothing twice."""
    if not EnrollmentSample.objects.filter(pk=sample_id, job_status=JobStatus.QUEUED).update(job_status=JobStatus.RUNNING):
        return None
    sample = EnrollmentSample.objects.select_related("profile__owner", "audio").get(pk=sample_id)
    try:
        _embed_and_update_profile(sample)
    except TRANSIENT_ERRORS:
        _finish_attempt(sample, JobStatus.QUEUED, "")  # the task retries it
        raise
    except Exception as error:  # permanent: recorded on the sample for the client and the officer to see
        _finish_attempt(sample, JobStatus.FAILED, f"{type(error).__name__}: {error}")
    return sample


def _embed_and_update_profile(sample: EnrollmentSample) -> None:
    if sample.audio is None:
        raise GovernanceError("the sample's audio is gone (erased or purged)")
    audio = voice_checks.decode(biometrics.read(sample.audio, actor=SYSTEM_ACTOR, purpose="enrollment"), None)
    with voiceprints.staged(sample.profile.owner, voice_checks.embed(audio)) as sample_blob:
        with transaction.atomic():
            profile = VoiceProfile.objects.select_for_update().select_related("owner").get(pk=sample.profile_id)
            _check_enrollable(profile)
            sample.embedding, sample.verdict = sample_blob, EnrollmentSample.Verdict.ACCEPTED
            sample.job_status, sample.finished_at = JobStatus.SUCCEEDED, timezone.now()
            _apply_retention(sample)
            sample.save(update_fields=["embedding", "verdict", "job_status", "finished_at", "audio_retained_until"])
            _refresh_voiceprint(profile)
            audit.record("enrollment.sample_accepted", actor=SYSTEM_ACTOR, organization_id=profile.owner.organization_id, target=sample)
    _after_enrollment(sample)


def _apply_retention(sample: EnrollmentSample) -> None:
    days = settings.VOICEGATE_SAMPLE_AUDIO_RETENTION_DAYS
    sample.audio_retained_until = timezone.now() + timedelta(days=days) if days > 0 else None


def _after_enrollment(sample: EnrollmentSample) -> None:
    """Engines fit their voice from the held audio, then release it; with no engine, release it now."""
    if settings.VOICEGATE_ENGINES:
        # By name: governance does not import synthesis, which builds on it.
        current_app.tasks["synthesis.tasks.fit_voices"].delay(sample.profile_id)
    else:
        release_audio([sample])


def release_audio(samples: list[EnrollmentSample]) -> None:
    """Data minimization: delete raw sample audio unless a retention period keeps it (purged by beat later)."""
    for sample in samples:
        if sample.audio_retained_until is None and sample.audio is not None:
            biometrics.delete(sample.audio)


def _refresh_voiceprint(profile: VoiceProfile) -> None:
    """Profile voiceprint = normalized mean of accepted samples' embeddings; then screen it. Caller holds the lock."""
    blobs = [s.embedding for s in profile.samples.filter(verdict=EnrollmentSample.Verdict.ACCEPTED).select_related("embedding__owner") if s.embedding]
    vectors = voiceprints.load_many(blobs, actor=SYSTEM_ACTOR, purpose="profile voiceprint")
    voiceprint = embedding.profile_embedding(vectors)
    old, profile.embedding = profile.embedding, voiceprints.store(profile.owner, voiceprint)
    matches = screening.screen(voiceprint, profile, actor=SYSTEM_ACTOR)
    profile.held_for_review = any(m["above_threshold"] for m in matches)
    profile.enrollment_report = {
        "accepted_samples": len(vectors),
        "similar_voices": matches,
        "threshold": voice_checks.protected_voice_threshold(),
    }
    profile.save(update_fields=["embedding", "held_for_review", "enrollment_report"])
    if old is not None:
        transaction.on_commit(lambda: biometrics.delete(old))
    if profile.status == VoiceProfile.Status.DRAFT:
        lifecycle.transition(profile, VoiceProfile.Status.PENDING, actor=SYSTEM_ACTOR, reason="first sample enrolled")


def _finish_attempt(sample: EnrollmentSample, status: str, error: str) -> None:
    EnrollmentSample.objects.filter(pk=sample.pk).update(
        job_status=status, job_error=error[:500], job_attempts=sample.job_attempts + 1,
        finished_at=timezone.now() if status == JobStatus.FAILED else None,
    )


def purge_retained_audio(now: datetime | None = None) -> int:
    """Beat task: delete raw sample audio whose retention period has ended."""
    moment = now or timezone.now()
    due = list(EnrollmentSample.objects.filter(audio__isnull=False, audio_retained_until__lte=moment).select_related("audio"))
    for sample in due:
        biometrics.delete(sample.audio)
    if due:
        audit.record("enrollment.sample_audio_purged", actor=SYSTEM_ACTOR, data={"samples": [s.pk for s in due]})
    return len(due)


def profile_voiceprint(profile: VoiceProfile, *, actor: str, purpose: str) -> np.ndarray | None:
    if profile.embedding is None:
        return None
    return voiceprints.load(profile.embedding, actor=actor, purpose=purpose)
