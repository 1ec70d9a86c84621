"""Enrollment jobs on a real Celery worker: the request returns at once; the worker embeds; retries are harmless."""

import pytest

from governance import enrollment
from governance.models import EnrollmentSample, VoiceProfile
from governance.tasks import process_sample
from tests.enrollment_helpers import audio_bytes, draft_profile


@pytest.mark.celery_worker
def test_worker_embeds_the_sample_and_a_duplicate_delivery_changes_nothing(celery_worker_process):
    worker = celery_worker_process
    profile = draft_profile()

    sample = enrollment.submit_sample(profile, audio_bytes("enrollment/sample1.flac"), "sample1.flac", actor="test")
    # submit_sample enqueues on commit; the test database commits at once (transactional_db).

    worker.wait_until(lambda: EnrollmentSample.objects.get(pk=sample.pk).job_status == "succeeded", "the sample job")
    profile.refresh_from_db()
    assert profile.status == VoiceProfile.Status.PENDING and profile.embedding_id is not None
    voiceprint = profile.embedding_id

    worker.wait_for_task(process_sample.delay(sample.pk))
    profile.refresh_from_db()
    assert profile.embedding_id == voiceprint
    assert EnrollmentSample.objects.get(pk=sample.pk).job_attempts == 0
