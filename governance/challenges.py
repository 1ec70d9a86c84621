"""Voice challenge (liveness): the owner speaks a random phrase before it expires; words and voice are checked.

Passing creates an approved IdentityVerification with method voice_challenge: a fresh recording of the
enrolled voice saying words nobody could have prepared.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from governance import audit, biometrics, enrollment, profiles, voice_checks
from governance.errors import GovernanceError, InvalidTransition
from governance.models import BiometricBlob, IdentityVerification, VoiceChallenge, VoiceProfile
from voicegate.audio import statement

SYSTEM_ACTOR = "system:voice-challenge"


class ChallengeExpired(GovernanceError):
    code = "challenge_expired"


def issue(profile: VoiceProfile, *, actor: str) -> VoiceChallenge:
    if profile.embedding_id is None:
        raise InvalidTransition(f"profile {profile.pk} has no enrolled voice yet; enroll samples first")
    phrase = statement.random_challenge_phrase(secrets.SystemRandom())
    with transaction.atomic():
        challenge = VoiceChallenge.objects.create(
            owner=profile.owner, profile=profile, phrase=phrase.text,
            expires_at=timezone.now() + timedelta(seconds=settings.VOICEGATE_CHALLENGE_TTL_SECONDS),
        )
        audit.record("challenge.issued", actor=actor, organization_id=profile.owner.organization_id, target=challenge)
    return challenge


def submit_response(challenge: VoiceChallenge, data: bytes, filename: str | None, *, actor: str) -> VoiceChallenge:
    """Store the spoken response and queue its checks. One response per challenge, before it expires."""
    voice_checks.decode(data, filename)
    with biometrics.staged(challenge.owner, BiometricBlob.Kind.SAMPLE_AUDIO, data) as blob:
        with transaction.atomic():
            locked = VoiceChallenge.objects.select_for_update().get(pk=challenge.pk)
            _check_answerable(locked)
            locked.response, locked.status = blob, VoiceChallenge.Status.CHECKING
            locked.results = {"response_sha256": hashlib.sha256(data).hexdigest()}
            locked.save(update_fields=["response", "status", "results"])
            audit.record("challenge.answered", actor=actor, organization_id=challenge.owner.organization_id, target=locked)
            transaction.on_commit(lambda: _enqueue(locked.pk))
    return locked


def _check_answerable(challenge: VoiceChallenge) -> None:
    if challenge.status != VoiceChallenge.Status.ISSUED:
        raise InvalidTransition(f"challenge {challenge.pk} was already answered")
    if challenge.expires_at <= timezone.now():
        VoiceChallenge.objects.filter(pk=challenge.pk).update(status=VoiceChallenge.Status.EXPIRED)
        raise ChallengeExpired(f"challenge {challenge.pk} expired at {challenge.expires_at.isoformat()}; ask for a new one")


def _enqueue(challenge_id: int) -> None:
    from governance import tasks

    tasks.check_voice_challenge.delay(challenge_id)


def run_checks(challenge_id: int) -> VoiceChallenge | None:
    """The job: words by speech recognition, voice by speaker verification; pass creates the identity verification."""
    challenge = VoiceChallenge.objects.select_related("profile__owner", "response__owner", "owner").get(pk=challenge_id)
    if challenge.status != VoiceChallenge.Status.CHECKING or "passed" in challenge.results:
        return None
    try:
        results = _measure(challenge)
    except GovernanceError as error:
        results = {"passed": False, "reason": error.message}
    _record(challenge, results)
    return challenge


def _measure(challenge: VoiceChallenge) -> dict[str, object]:
    voiceprint = enrollment.profile_voiceprint(challenge.profile, actor=SYSTEM_ACTOR, purpose="liveness speaker verification")
    if voiceprint is None or challenge.response is None:
        raise GovernanceError("nothing to compare: the enrolled voice or the response is gone")
    audio = voice_checks.decode(biometrics.read(challenge.response, actor=SYSTEM_ACTOR, purpose="liveness check"), None)
    words = statement.check_statement(challenge.phrase, voice_checks.transcribe(audio).text, voice_checks.challenge_threshold())
    voice = voice_checks.speaker_match(voice_checks.embed(audio), voiceprint)
    return {
        "passed": words.passed and voice.passed,
        "statement": voice_checks.statement_check_dict(words),
        "speaker": {"score": voice.score, "threshold": voice.threshold, "passed": voice.passed},
    }


def _record(challenge: VoiceChallenge, results: dict[str, object]) -> None:
    passed = bool(results["passed"])
    with transaction.atomic():
        locked = VoiceChallenge.objects.select_for_update().select_related("owner").get(pk=challenge.pk)
        locked.results = {**locked.results, **results}
        locked.status = VoiceChallenge.Status.PASSED if passed else VoiceChallenge.Status.FAILED
        if passed:
            locked.identity_verification = IdentityVerification.objects.create(
                owner=locked.owner, method=IdentityVerification.Method.VOICE_CHALLENGE,
                status=IdentityVerification.Status.APPROVED, decided_at=timezone.now(),
                evidence_sha256=locked.results.get("response_sha256", ""),
                decision_note=f"voice challenge #{locked.pk} passed",
                expires_at=timezone.now() + timedelta(days=settings.VOICEGATE_IDENTITY_VALID_DAYS),
            )
        locked.save(update_fields=["results", "status", "identity_verification"])
        audit.record(
            f"challenge.{locked.status}", actor=SYSTEM_ACTOR, organization_id=locked.owner.organization_id, target=locked,
            data={"speaker_score": results.get("speaker", {}).get("score"), "wer": results.get("statement", {}).get("wer")},
        )
        if passed:
            profiles.activate_when_ready(challenge.profile, actor=SYSTEM_ACTOR)
