"""Celery jobs for governance; beat runs them on the schedule in settings.CELERY_BEAT_SCHEDULE."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from governance import consents


@shared_task(acks_late=True, time_limit=300, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def expire_consents() -> list[int]:
    return consents.expire_due()


@shared_task(acks_late=True, time_limit=300, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def send_consent_reminders() -> list[int]:
    return consents.send_reminders()
