"""Batch synthesis: a long text spoken in the background into one watermarked file for the key that asked.

submit() runs in the request: the text (up to VOICEGATE_SYNTHESIS_JOB_MAX_TEXT_CHARS), the gate's decision, the
job row, and the task queued once that commits. run() runs in a `synthesis` worker: it claims the job, speaks
the text part by part through gateway.start(), which decides again for every part (a consent that lapses
while the job waits or runs stops it, with the refusal as the job's error), and stores the audio encrypted
under the voice owner's data key.

Re-delivery never produces two outputs: a run owns the job through a claim (a random token set by a
conditional UPDATE), renews it after every part, and writes the result only while it still holds it. A
duplicate delivery finds the job claimed or finished and does nothing; a run that died (worker killed) lets
its claim lapse, and requeue_stalled() (beat) queues the job again for a fresh run.
"""

from __future__ import annotations

import hashlib
import io
import logging
import secrets
import time
import wave
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone

from governance import audit, biometrics, keyring, policy
from governance.errors import BiometricDataUnreadable, GovernanceError
from governance.models import ApiKey, VoiceProfile
from synthesis import gateway, text, text_input
from synthesis.errors import SynthesisRefused, UnknownEngine, VoiceNotReady
from synthesis.models import FittedVoice, SynthesisJob, SynthesisRecord
from voicegate import crypto

logger = logging.getLogger(__name__)

SYSTEM_ACTOR = "system:synthesis-jobs"
# The job's audio is a biometric blob of the voice owner (erased with them); BiometricBlob.Kind has no member
# for it yet, so the kind is named here.
AUDIO_KIND = "synthesized_audio"
MAX_ATTEMPTS = 3  # runs that may die (or hit a transient error) before the job is failed
TRANSIENT_ERRORS = (OperationalError, OSError)


class _ClaimLost(Exception):
    """Another run holds the job now (this one was taken for dead): stop, and write nothing."""


@dataclass
class _Audio:
    pcm16: bytes
    sample_rate: int


def submit(key: ApiKey, profile: VoiceProfile, raw_text: str, purpose: str, engine_name: str | None, audio_format: str) -> SynthesisJob:
    """Check and decide now, so a request that would be refused is refused at once; then queue the job."""
    job_text = text_input.checked(raw_text, settings.VOICEGATE_SYNTHESIS_JOB_MAX_TEXT_CHARS)
    engine = engine_name or settings.VOICEGATE_DEFAULT_ENGINE
    _check_engine_offered(engine)
    decision = policy.decide_synthesis(key, profile, purpose, job_text, engine)
    if not decision.allowed:
        raise SynthesisRefused(decision)
    if not FittedVoice.objects.filter(profile=profile, engine=engine, state__isnull=False).exists():
        raise VoiceNotReady(f"profile {profile.pk} has no voice fitted for the {engine!r} engine yet")
    with transaction.atomic():
        job = SynthesisJob.objects.create(
            organization_id=profile.owner.organization_id, api_key=key, profile=profile, purpose=purpose, engine=engine,
            audio_format=audio_format, text_sha256=audit.sha256_hex(job_text),
            parts_total=len(split_into_parts(job_text, settings.VOICEGATE_MAX_TEXT_CHARS)),
        )
        job.text_ciphertext = crypto.encrypt(keyring.data_key_for(profile.owner), job_text.encode(), _text_context(job))
        job.save(update_fields=["text_ciphertext"])
        audit.record(
            "synthesis_job.submitted", actor=audit.actor_for_key(key), organization_id=job.organization_id, target=job,
            data={"profile": profile.pk, "purpose": purpose, "engine": engine, "text_sha256": job.text_sha256,
                  "parts": job.parts_total, "key_prefix": key.prefix},
        )
        transaction.on_commit(lambda: enqueue(job.pk))
    return job


def enqueue(job_id: int) -> None:
    from synthesis import tasks  # tasks imports this module

    tasks.run_synthesis_job.delay(job_id)


def _check_engine_offered(engine: str) -> None:
    # Only the name, not registry.get(): that would load the engine into the web process, and engines belong
    # in the synthesis workers. The worker's start() checks the engine for real.
    if engine not in settings.VOICEGATE_ENGINES:
        raise UnknownEngine(f"engine {engine!r} is not offered here; choose one of {settings.VOICEGATE_ENGINES}")


def _text_context(job: SynthesisJob) -> bytes:
    return f"synthesis-job-text:{job.pk}".encode()


def split_into_parts(job_text: str, max_chars: int) -> list[str]:
    """Whole sentences packed into parts of at most `max_chars` (the request limit every part meets at the
    gate); a sentence longer than that is cut between words, a word longer than that into pieces."""
    parts: list[str] = []
    for piece in (p for sentence in text.split_sentences(job_text) for p in _pieces(sentence, max_chars)):
        if parts and len(parts[-1]) + 1 + len(piece) <= max_chars:
            parts[-1] += " " + piece
        else:
            parts.append(piece)
    return parts


def _pieces(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence]
    pieces: list[str] = []
    for word in sentence.split():
        for cut in (word[i : i + max_chars] for i in range(0, len(word), max_chars)):
            if pieces and len(pieces[-1]) + 1 + len(cut) <= max_chars:
                pieces[-1] += " " + cut
            else:
                pieces.append(cut)
    return pieces


def run(job_id: int) -> SynthesisJob | None:
    """The job. Returns None when this delivery had nothing to do (another run holds the job, or it is over)."""
    claim = _claim(job_id)
    if claim is None:
        return None
    job = SynthesisJob.objects.select_related("api_key", "profile__owner").get(pk=job_id)
    if job.attempts > MAX_ATTEMPTS:
        _fail(job, claim, "attempts_exhausted", f"the job was started {MAX_ATTEMPTS} times without finishing")
    elif not _speak_and_finish(job, claim):
        return None
    job.refresh_from_db()
    return job


def _speak_and_finish(job: SynthesisJob, claim: str) -> bool:
    """Run the claimed job to its end, succeeded or failed; False if another run took it over meanwhile."""
    try:
        _finish(job, claim, _speak(job, claim))
    except _ClaimLost:
        return False
    except TRANSIENT_ERRORS:
        _release(job, claim)  # the task retries it
        raise
    except GovernanceError as refusal:  # refused at run time, owner erased, voice gone: the client's to see
        _fail(job, claim, refusal.code, refusal.message)
    except Exception as error:
        logger.exception("synthesis job %s failed", job.pk)
        _fail(job, claim, "synthesis_failed", f"{type(error).__name__}: {error}")
    return True


def _claim(job_id: int) -> str | None:
    """Take the job if it is queued, or running under a claim that lapsed (its run died). One UPDATE, so of
    two deliveries at the same moment exactly one wins, on SQLite and PostgreSQL alike."""
    now, claim = timezone.now(), secrets.token_hex(16)
    claimable = Q(status=SynthesisJob.Status.QUEUED) | Q(status=SynthesisJob.Status.RUNNING, lease_expires_at__lt=now)
    taken = SynthesisJob.objects.filter(claimable, pk=job_id).update(
        status=SynthesisJob.Status.RUNNING, claim=claim, lease_expires_at=_lease_end(), attempts=F("attempts") + 1,
        parts_done=0, started_at=now,
    )
    return claim if taken else None


def _lease_end() -> datetime:
    return timezone.now() + timedelta(seconds=settings.VOICEGATE_SYNTHESIS_JOB_LEASE_SECONDS)


def _held(job: SynthesisJob, claim: str) -> Q:
    return Q(pk=job.pk, status=SynthesisJob.Status.RUNNING, claim=claim)


def _renew(job: SynthesisJob, claim: str, **fields: object) -> None:
    if not SynthesisJob.objects.filter(_held(job, claim)).update(lease_expires_at=_lease_end(), **fields):
        raise _ClaimLost


def _speak(job: SynthesisJob, claim: str) -> _Audio:
    job_text = _read_text(job)
    parts = split_into_parts(job_text, settings.VOICEGATE_MAX_TEXT_CHARS)
    _renew(job, claim, parts_total=len(parts))
    pcm, sample_rate = bytearray(), 0
    for done, part in enumerate(parts, start=1):
        stream = _start_part(job, claim, part)
        SynthesisRecord.objects.filter(pk=stream.record.pk).update(job=job)
        for chunk in stream.pcm16:
            pcm += chunk
        sample_rate = stream.sample_rate
        _renew(job, claim, parts_done=done)
    return _Audio(bytes(pcm), sample_rate)


def _read_text(job: SynthesisJob) -> str:
    if job.text_ciphertext is None:
        raise GovernanceError(f"synthesis job {job.pk} has no text")
    data_key = keyring.data_key_for(job.profile.owner)  # OwnerErased once the owner is erased
    return crypto.decrypt(data_key, bytes(job.text_ciphertext), _text_context(job)).decode()


def _start_part(job: SynthesisJob, claim: str, part: str) -> gateway.SynthesisStream:
    """The gate for one part. A job keeps to its key's per-minute limit by waiting the minute out; every
    other refusal (a daily quota included) ends the job."""
    while True:
        # Each part is decided on the key, profile and owner as they are now: a key revoked or suspended, a
        # profile suspended or an owner erased while the job runs stops the parts still to come.
        job.api_key = ApiKey.objects.get(pk=job.api_key_id)
        job.profile = VoiceProfile.objects.select_related("owner").get(pk=job.profile_id)
        try:
            return gateway.start(job.api_key, job.profile, part, job.purpose, job.engine)
        except SynthesisRefused as refusal:
            if refusal.decision.reason is not policy.Reason.RATE_LIMIT_EXCEEDED:
                raise
            time.sleep(refusal.decision.retry_after_seconds)
            _renew(job, claim)


def _finish(job: SynthesisJob, claim: str, audio: _Audio) -> None:
    data = _as_file(audio, job.audio_format)
    duration_s = round(len(audio.pcm16) / 2 / audio.sample_rate, 3)
    with biometrics.staged(job.profile.owner, AUDIO_KIND, data, content_type=_content_type(job.audio_format, audio.sample_rate)) as blob:
        with transaction.atomic():
            output_sha256 = hashlib.sha256(data).hexdigest()
            won = SynthesisJob.objects.filter(_held(job, claim)).update(
                status=SynthesisJob.Status.SUCCEEDED, audio=blob, sample_rate=audio.sample_rate, duration_s=duration_s,
                output_sha256=output_sha256, text_ciphertext=None, lease_expires_at=None, finished_at=timezone.now(),
            )
            if not won:
                raise _ClaimLost  # staged() deletes the blob: the run that holds the job writes the one output
            audit.record(
                "synthesis_job.completed", actor=SYSTEM_ACTOR, organization_id=job.organization_id, target=job,
                data={"outcome": SynthesisJob.Status.SUCCEEDED, "parts": job.parts_total, "output_sha256": output_sha256,
                      "duration_s": duration_s, "records": list(job.records.values_list("pk", flat=True))},
            )


def _as_file(audio: _Audio, audio_format: str) -> bytes:
    if audio_format == SynthesisJob.Format.PCM:
        return audio.pcm16
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(audio.sample_rate)
        wav.writeframes(audio.pcm16)
    return buffer.getvalue()


def _content_type(audio_format: str, sample_rate: int) -> str:
    return "audio/wav" if audio_format == SynthesisJob.Format.WAV else f"audio/L16; rate={sample_rate}; channels=1"


def _fail(job: SynthesisJob, claim: str, code: str, message: str) -> None:
    with transaction.atomic():
        if not SynthesisJob.objects.filter(_held(job, claim)).update(
            status=SynthesisJob.Status.FAILED, error_code=code[:64], error_message=message[:300], text_ciphertext=None,
            lease_expires_at=None, finished_at=timezone.now(),
        ):
            return
        job.refresh_from_db(fields=["parts_done", "parts_total"])
        audit.record(
            "synthesis_job.completed", actor=SYSTEM_ACTOR, organization_id=job.organization_id, target=job,
            data={"outcome": SynthesisJob.Status.FAILED, "error_code": code, "parts_done": job.parts_done,
                  "parts": job.parts_total},
        )


def _release(job: SynthesisJob, claim: str) -> None:
    SynthesisJob.objects.filter(_held(job, claim)).update(status=SynthesisJob.Status.QUEUED, claim="", lease_expires_at=None)


def requeue_stalled() -> list[int]:
    """Queue again every job whose run went silent (its worker died, and with some brokers its message with it).
    Sweeping twice, or while the message still waits, only adds deliveries that the claim turns away."""
    stalled = list(
        SynthesisJob.objects.filter(status=SynthesisJob.Status.RUNNING, lease_expires_at__lt=timezone.now()).values_list("pk", flat=True)
    )
    for job_id in stalled:
        enqueue(job_id)
    return stalled


def audio_of(job: SynthesisJob, key: ApiKey) -> bytes:
    """The finished job's file, decrypted for the key that submitted it; the read is audited."""
    if job.audio is None:
        raise BiometricDataUnreadable(f"synthesis job {job.pk}'s audio no longer exists")
    return biometrics.read(job.audio, actor=audit.actor_for_key(key), purpose="synthesis job download")
