"""Celery jobs for governance; beat runs them on the schedule in settings.CELERY_BEAT_SCHEDULE."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from governance import challenges, consent_checks, consents, enrollment


@shared_task(acks_late=True, time_limit=300, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def expire_consents() -> list[int]:
    return consents.expire_due()


@shared_task(acks_late=True, time_limit=300, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def send_consent_reminders() -> list[int]:
    return consents.send_reminders()


@shared_task(acks_late=True, time_limit=600, autoretry_for=enrollment.TRANSIENT_ERRORS, retry_backoff=True, max_retries=5)
def process_sample(sample_id: int) -> None:
    enrollment.process_sample(sample_id)


@shared_task(acks_late=True, time_limit=600, autoretry_for=enrollment.TRANSIENT_ERRORS, retry_backoff=True, max_retries=5)
def verify_consent_recording(consent_id: int) -> None:
    consent_checks.run_checks(consent_id)


@shared_task(acks_late=True, time_limit=600, autoretry_for=enrollment.TRANSIENT_ERRORS, retry_backoff=True, max_retries=5)
def check_voice_challenge(challenge_id: int) -> None:
    challenges.run_checks(challenge_id)


@shared_task(acks_late=True, time_limit=300, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def purge_retained_sample_audio() -> int:
    return enrollment.purge_retained_audio()
