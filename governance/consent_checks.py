"""Automated consent verification: the owner speaks the statement rendered for them; a job checks that the
words match (offline speech recognition) and that the voice is the enrolled one (speaker verification).

A failed check leaves the consent unverified, with the numbers and the reason; an officer may then review
the recording and override with a recorded justification (consents.verify).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from governance import audit, biometrics, consents, enrollment, profiles, voice_checks
from governance.errors import GovernanceError
from governance.models import BiometricBlob, ConsentArtifact, JobStatus, VoiceProfile
from voicegate.audio import statement

SYSTEM_ACTOR = "system:consent-checks"


def rendered_statement(profile: VoiceProfile, purposes: list[str], valid_until: datetime) -> str:
    return statement.render_statement(_statement(profile, purposes, valid_until))


def _statement(profile: VoiceProfile, purposes: list[str], valid_until: datetime) -> statement.ConsentStatement:
    owner = profile.owner
    return statement.ConsentStatement(
        name=owner.full_name, organization=owner.organization.name, purposes=tuple(purposes), until=valid_until.date()
    )


def submit_recording(
    profile: VoiceProfile,
    data: bytes,
    filename: str | None,
    *,
    purposes: list[str],
    valid_from: datetime,
    valid_until: datetime,
    actor: str,
) -> ConsentArtifact:
    """Store the recorded statement encrypted, create the (unverified) consent and queue its checks."""
    if profile.owner.is_erased or profile.status in (VoiceProfile.Status.RETIRED, VoiceProfile.Status.ERASED):
        raise enrollment.ProfileNotEnrollable(f"profile {profile.pk} is {profile.status}")
    voice_checks.decode(data, filename)  # refuse undecodable or hostile audio now, with its reason
    text = rendered_statement(profile, purposes, valid_until)
    with biometrics.staged(profile.owner, BiometricBlob.Kind.CONSENT_RECORDING, data) as blob:
        with transaction.atomic():
            consent = consents.record_consent(
                profile, statement_text=text, purposes=purposes, valid_from=valid_from, valid_until=valid_until,
                actor=actor, recording=blob, recording_sha256=hashlib.sha256(data).hexdigest(),
            )
            ConsentArtifact.objects.filter(pk=consent.pk).update(verification_job_status=JobStatus.QUEUED)
            consent.verification_job_status = JobStatus.QUEUED
            transaction.on_commit(lambda: _enqueue(consent.pk))
    return consent


def _enqueue(consent_id: int) -> None:
    from governance import tasks

    tasks.verify_consent_recording.delay(consent_id)


def run_checks(consent_id: int) -> ConsentArtifact | None:
    """The job: claim, check words and voice, record the numbers; verify the consent when both pass."""
    claimed = ConsentArtifact.objects.filter(pk=consent_id, verification_job_status=JobStatus.QUEUED)
    if not claimed.update(verification_job_status=JobStatus.RUNNING):
        return None
    consent = ConsentArtifact.objects.select_related("profile__owner__organization", "recording__owner").get(pk=consent_id)
    try:
        results = _measure(consent)
    except enrollment.TRANSIENT_ERRORS:
        ConsentArtifact.objects.filter(pk=consent_id).update(verification_job_status=JobStatus.QUEUED)
        raise
    except GovernanceError as error:
        results = {"passed": False, "reason": error.message}
    _record(consent, results)
    return consent


def _measure(consent: ConsentArtifact) -> dict[str, object]:
    if consent.recording is None:
        raise GovernanceError("the consent recording is gone")
    profile = consent.profile
    voiceprint = enrollment.profile_voiceprint(profile, actor=SYSTEM_ACTOR, purpose="consent speaker verification")
    if voiceprint is None:
        raise GovernanceError("the profile has no enrolled voice to compare the recording with")
    audio = voice_checks.decode(biometrics.read(consent.recording, actor=SYSTEM_ACTOR, purpose="consent verification"), None)
    transcript = voice_checks.transcribe(audio)
    words = statement.check_consent_statement(
        _statement(profile, consent.purposes, consent.valid_until), transcript.text, voice_checks.statement_threshold()
    )
    voice = voice_checks.speaker_match(voice_checks.embed(audio), voiceprint)
    reasons = ([] if words.passed else ["the spoken words do not match the statement"]) + (
        [] if voice.passed else ["the voice does not match the enrolled samples"]
    )
    return {
        "passed": words.passed and voice.passed,
        "reason": "; ".join(reasons),
        "statement": {**voice_checks.statement_check_dict(words), "transcript_sha256": audit.sha256_hex(transcript.text)},
        "speaker": {"score": voice.score, "threshold": voice.threshold, "passed": voice.passed},
        "checked_at": timezone.now().isoformat(),
    }


def _record(consent: ConsentArtifact, results: dict[str, object]) -> None:
    passed = bool(results["passed"])
    with transaction.atomic():
        locked = ConsentArtifact.objects.select_for_update().select_related("profile__owner").get(pk=consent.pk)
        locked.verification_results = {**locked.verification_results, "automated": results}
        locked.verification_job_status = JobStatus.SUCCEEDED
        fields = ["verification_results", "verification_job_status"]
        if passed and locked.revoked_at is None:
            locked.verification_status, locked.verified_at = ConsentArtifact.Verification.VERIFIED, timezone.now()
            fields += ["verification_status", "verified_at"]
        locked.save(update_fields=fields)
        audit.record(
            "consent.checked", actor=SYSTEM_ACTOR, organization_id=locked.profile.owner.organization_id, target=locked,
            data={"passed": passed, "speaker_score": results.get("speaker", {}).get("score"),
                  "statement_wer": results.get("statement", {}).get("wer")},
        )
        if passed:
            profiles.activate_when_ready(locked.profile, actor=SYSTEM_ACTOR)
