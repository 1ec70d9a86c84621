from __future__ import annotations

from celery import shared_task
from django.db import OperationalError


# The quality engine's fit is ~130 Kokoro syntheses: 7 min measured on an idle 2-core worker, 18 min on one
# loaded to 5-6; the limit leaves room for that, since a killed fit keeps the sample audio and leaves no voice.
@shared_task(acks_late=True, time_limit=3600, autoretry_for=(OperationalError, OSError), retry_backoff=True, max_retries=3)
def fit_voices(profile_id: int) -> int:
    # Imported here: this module is loaded at app start (synthesis.apps), and fitting pulls in the models.
    from synthesis import fitting

    return len(fitting.fit_all_engines(profile_id))


# The time limit bounds the longest job (VOICEGATE_SYNTHESIS_JOB_MAX_TEXT_CHARS on the slowest engine); a run
# killed by it lets its claim lapse, and after jobs.MAX_ATTEMPTS such runs the job fails instead of looping.
@shared_task(acks_late=True, time_limit=3600, autoretry_for=(OperationalError, OSError), retry_backoff=True, max_retries=3)
def run_synthesis_job(job_id: int) -> None:
    from synthesis import jobs

    jobs.run(job_id)


@shared_task(acks_late=True, time_limit=60, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def requeue_stalled_synthesis_jobs() -> list[int]:
    from synthesis import jobs

    return jobs.requeue_stalled()
