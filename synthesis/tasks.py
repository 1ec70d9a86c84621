from __future__ import annotations

from celery import shared_task

from governance.enrollment import TRANSIENT_ERRORS
from synthesis import fitting


@shared_task(acks_late=True, time_limit=900, autoretry_for=TRANSIENT_ERRORS, retry_backoff=True, max_retries=3)
def fit_voices(profile_id: int) -> int:
    return len(fitting.fit_all_engines(profile_id))
