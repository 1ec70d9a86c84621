from __future__ import annotations

from celery import shared_task
from django.db import OperationalError


@shared_task(acks_late=True, time_limit=900, autoretry_for=(OperationalError, OSError), retry_backoff=True, max_retries=3)
def fit_voices(profile_id: int) -> int:
    # Imported here: this module is loaded at app start (synthesis.apps), and fitting pulls in the models.
    from synthesis import fitting

    return len(fitting.fit_all_engines(profile_id))
