"""Batch synthesis jobs: a long text goes through the gate at submit and again, part by part, when a worker
speaks it; the result is one watermarked file that only the submitting key can read, and no delivery of the
task, repeated or interrupted, makes a second one."""

from __future__ import annotations

import io
from datetime import timedelta

import numpy as np
import pytest
import soundfile as sf
from django.utils import timezone

from governance import apikeys, audit, biometrics
from governance.models import ApiKey, AuditEvent, BiometricBlob
from synthesis import jobs
from synthesis.models import FittedVoice, SynthesisJob, SynthesisRecord
from synthesis.tasks import requeue_stalled_synthesis_jobs, run_synthesis_job
from tests.api_helpers import as_key, error_of
from tests.factories import PURPOSE, authorized_setup, make_key
from voicegate.audio import watermark

# Three sentences, about 8 s of speech: long enough for the watermark to decode (docs/watermark.md).
TEXT = (
    "Your appointment with Doctor Patel is confirmed for Tuesday morning. "
    "Please arrive ten minutes early and bring your insurance card. "
    "If you need to reschedule, call us back at any time."
)


def ready_voice(settings):
    """An authorized profile with the fast engine's base voice fitted (likeness is not what these tests are about)."""
    settings.VOICEGATE_ENGINES = ["fast"]
    a = authorized_setup()
    FittedVoice.objects.create(profile=a.profile, engine="fast", state=biometrics.store(a.owner, BiometricBlob.Kind.VOICE_STATE, b""))
    return a


def submit(api, a, **overrides):
    body = {"profile": a.profile.pk, "text": TEXT, "purpose": PURPOSE, **overrides}
    return as_key(api, a.secret).post("/api/v1/synthesis-jobs/", body, format="json")


def job_audio(job: SynthesisJob) -> bytes:
    return biometrics.decrypt(BiometricBlob.objects.get(pk=job.audio_id))


def decoded(wav: bytes) -> tuple[np.ndarray, int]:
    return sf.read(io.BytesIO(wav), dtype="float32")


def job_blobs() -> int:
    return BiometricBlob.objects.filter(kind=jobs.AUDIO_KIND).count()


@pytest.fixture
def ready(settings):
    return ready_voice(settings)


# --- submit: checked and decided in the request ----------------------------------------------------------------


@pytest.mark.django_db
def test_text_longer_than_a_request_is_accepted_as_a_queued_job_split_into_parts(api, ready, settings, django_capture_on_commit_callbacks):
    settings.VOICEGATE_MAX_TEXT_CHARS = 80
    with django_capture_on_commit_callbacks() as queued:
        response = submit(api, ready)

    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["status"], body["progress"], body["parts_done"], body["parts_total"]) == ("queued", 0.0, 0, 3)
    assert body["audio_url"] is None and body["error"] is None
    assert response["Location"].endswith(f"/api/v1/synthesis-jobs/{body['id']}")
    assert len(queued) == 1  # the task is sent once the job row is committed
    job = SynthesisJob.objects.get(pk=body["id"])
    assert TEXT.encode() not in bytes(job.text_ciphertext)
    assert AuditEvent.objects.filter(action="synthesis.decision", data__allowed=True).count() == 1
    assert AuditEvent.objects.filter(action="synthesis_job.submitted", target_id=str(job.pk)).exists()


@pytest.mark.django_db
def test_text_over_the_job_limit_is_400_and_makes_no_job(api, ready, settings):
    settings.VOICEGATE_SYNTHESIS_JOB_MAX_TEXT_CHARS = 100
    error = error_of(submit(api, ready), 400, "text_rejected")
    assert error["details"]["reason"] == "too_long"
    assert not SynthesisJob.objects.exists()


@pytest.mark.django_db
def test_job_the_gate_refuses_at_submit_is_403_with_the_reason_and_makes_no_job(api, ready):
    ready.consent.revoked_at = timezone.now()
    ready.consent.save()
    error_of(submit(api, ready), 403, "consent_revoked")
    assert not SynthesisJob.objects.exists()


@pytest.mark.django_db
def test_job_with_an_engine_the_key_may_not_use_is_refused_at_submit(api, settings):
    settings.VOICEGATE_ENGINES = ["fast"]
    a = authorized_setup(allowed_engines=["quality"])
    error_of(submit(api, a), 403, "key_engine_not_allowed")
    assert not SynthesisJob.objects.exists()


@pytest.mark.django_db
def test_job_for_an_engine_not_offered_or_an_unfitted_voice_is_refused_at_submit(api, ready):
    error_of(submit(api, ready, engine="quality"), 400, "unknown_engine")
    FittedVoice.objects.all().delete()
    error_of(submit(api, ready), 409, "voice_not_fitted")
    assert not SynthesisJob.objects.exists()


# --- run: through the gate again, one watermarked file ----------------------------------------------------------


@pytest.mark.django_db
def test_job_speaks_its_text_into_one_watermarked_wav_traced_to_its_record(api, ready, settings):
    job_id = submit(api, ready).json()["id"]

    job = jobs.run(job_id)

    assert job.status == SynthesisJob.Status.SUCCEEDED and job.progress == 1.0
    [record] = job.records.all()
    assert record.outcome == SynthesisRecord.Outcome.COMPLETED and record.text_sha256 == audit.sha256_hex(TEXT)
    status = as_key(api, ready.secret).get(f"/api/v1/synthesis-jobs/{job_id}/").json()
    assert status["status"] == "succeeded" and status["audio_url"] == f"/api/v1/synthesis-jobs/{job_id}/audio"
    download = api.get(status["audio_url"])
    assert download.status_code == 200 and download["Content-Type"] == "audio/wav"
    audio, rate = decoded(download.content)
    assert rate == job.sample_rate and abs(len(audio) / rate - job.duration_s) < 0.01
    assert watermark.detect(audio, rate, settings.VOICEGATE_WATERMARK_KEY).payload == record.pk
    assert job.output_sha256 == audit.sha256_hex(download.content)
    assert job.text_ciphertext is None  # the text lives on only in the record, encrypted
    assert AuditEvent.objects.filter(action="biometric.read", actor=audit.actor_for_key(ready.key), data__purpose="synthesis job download").count() == 1


@pytest.mark.django_db
def test_each_part_passes_the_gate_and_the_progress_counts_parts(api, ready, settings):
    settings.VOICEGATE_MAX_TEXT_CHARS = 80
    job_id = submit(api, ready, format="pcm").json()["id"]

    job = jobs.run(job_id)

    assert (job.status, job.parts_done, job.parts_total, job.progress) == ("succeeded", 3, 3, 1.0)
    records = list(job.records.order_by("pk"))
    assert len(records) == 3 and all(r.outcome == "completed" for r in records)
    # One decision at submit, one per part at run time.
    assert AuditEvent.objects.filter(action="synthesis.decision", data__allowed=True).count() == 4
    pcm = as_key(api, ready.secret).get(f"/api/v1/synthesis-jobs/{job_id}/audio").content
    assert len(pcm) / 2 / job.sample_rate == pytest.approx(sum(r.duration_s for r in records), abs=0.01)


@pytest.mark.django_db
def test_consent_that_lapses_before_the_run_fails_the_job_with_the_refusal(api, ready):
    job_id = submit(api, ready).json()["id"]
    ready.consent.valid_until = timezone.now() - timedelta(seconds=1)
    ready.consent.save()

    job = jobs.run(job_id)

    assert job.status == SynthesisJob.Status.FAILED and job.error_code == "consent_expired"
    assert not job.records.exists() and job.audio_id is None and job_blobs() == 0
    status = as_key(api, ready.secret).get(f"/api/v1/synthesis-jobs/{job_id}/").json()
    assert status["error"]["code"] == "consent_expired" and status["progress"] == 0.0
    error_of(api.get(f"/api/v1/synthesis-jobs/{job_id}/audio"), 409, "job_not_finished")


@pytest.mark.django_db
def test_key_revoked_before_the_run_fails_the_job(api, ready):
    job_id = submit(api, ready).json()["id"]
    apikeys.revoke(ready.key, actor="test", reason="leaked")
    assert jobs.run(job_id).error_code == "key_revoked"


@pytest.mark.django_db
def test_key_revoked_while_the_job_runs_stops_the_parts_still_to_come(api, ready, settings, monkeypatch):
    settings.VOICEGATE_MAX_TEXT_CHARS = 80
    job_id = submit(api, ready).json()["id"]
    start = jobs.gateway.start

    def start_then_revoke(*args, **kwargs):
        stream = start(*args, **kwargs)
        apikeys.revoke(ApiKey.objects.get(pk=ready.key.pk), actor="test", reason="leaked mid-job")
        return stream

    monkeypatch.setattr(jobs.gateway, "start", start_then_revoke)
    job = jobs.run(job_id)

    assert (job.status, job.error_code, job.parts_done) == (SynthesisJob.Status.FAILED, "key_revoked", 1)
    assert job.records.count() == 1 and job.audio_id is None


# --- re-delivery never produces two outputs ---------------------------------------------------------------------


@pytest.mark.django_db
def test_running_a_job_twice_produces_one_output(api, ready):
    job_id = submit(api, ready).json()["id"]
    first = jobs.run(job_id)

    assert jobs.run(job_id) is None
    run_synthesis_job.apply(args=[job_id]).get()

    again = SynthesisJob.objects.get(pk=job_id)
    assert (again.audio_id, again.output_sha256, again.attempts) == (first.audio_id, first.output_sha256, 1)
    assert again.records.count() == 1 and SynthesisRecord.objects.count() == 1 and job_blobs() == 1


@pytest.mark.django_db
def test_a_job_running_under_a_live_claim_is_left_to_its_run(api, ready):
    job_id = submit(api, ready).json()["id"]
    SynthesisJob.objects.filter(pk=job_id).update(
        status="running", claim="a live run", attempts=1, lease_expires_at=timezone.now() + timedelta(minutes=5)
    )

    assert jobs.run(job_id) is None
    assert requeue_stalled_synthesis_jobs.apply().get() == []
    assert SynthesisJob.objects.get(pk=job_id).claim == "a live run" and not SynthesisRecord.objects.exists()


@pytest.mark.django_db
def test_a_run_that_died_mid_job_is_redone_once_its_claim_lapses_and_yields_one_output(api, ready, settings, eager_jobs):
    settings.VOICEGATE_MAX_TEXT_CHARS = 80
    job_id = submit(api, ready).json()["id"]
    # What a worker killed after the first part leaves: the job running under its claim, one part spoken.
    SynthesisJob.objects.filter(pk=job_id).update(status="running", claim="a dead run", attempts=1, parts_done=1, lease_expires_at=timezone.now() - timedelta(seconds=1))

    assert requeue_stalled_synthesis_jobs.apply().get() == [job_id]  # eager: the requeued run happens here

    job = SynthesisJob.objects.get(pk=job_id)
    assert (job.status, job.attempts, job.parts_done) == ("succeeded", 2, 3)
    assert job_blobs() == 1 and job.records.count() == 3
    assert jobs.run(job_id) is None


@pytest.mark.django_db
def test_a_job_that_keeps_dying_fails_instead_of_looping(api, ready):
    job_id = submit(api, ready).json()["id"]
    SynthesisJob.objects.filter(pk=job_id).update(status="running", claim="a dead run", attempts=jobs.MAX_ATTEMPTS, lease_expires_at=timezone.now() - timedelta(seconds=1))

    job = jobs.run(job_id)

    assert job.status == SynthesisJob.Status.FAILED and job.error_code == "attempts_exhausted"
    assert not SynthesisRecord.objects.exists()


# --- who may see a job ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_job_and_its_audio_are_404_to_every_other_key_even_of_the_same_organization(api, ready):
    job_id = submit(api, ready).json()["id"]
    jobs.run(job_id)
    _, colleague = make_key(ready.organization, actions=["synthesize"], profiles=[ready.profile])
    stranger = authorized_setup()

    for secret in (colleague, stranger.secret):
        as_key(api, secret)
        error_of(api.get(f"/api/v1/synthesis-jobs/{job_id}/"), 404, "not_found")
        error_of(api.get(f"/api/v1/synthesis-jobs/{job_id}/audio"), 404, "not_found")
    assert not AuditEvent.objects.filter(action="biometric.read", data__purpose="synthesis job download").exists()


@pytest.mark.django_db
def test_officer_session_cannot_submit_or_read_jobs(api, ready):
    from tests.factories import officer_for

    api.force_authenticate(officer_for(ready.organization))
    assert api.post("/api/v1/synthesis-jobs/", {"profile": ready.profile.pk, "text": TEXT, "purpose": PURPOSE}, format="json").status_code == 403
    assert api.get("/api/v1/synthesis-jobs/1/").status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("job_id", ["0", "999999", str(2**63), str(10**30)])
def test_unknown_or_out_of_range_job_ids_are_404(api, ready, job_id):
    as_key(api, ready.secret)
    error_of(api.get(f"/api/v1/synthesis-jobs/{job_id}/"), 404)
    error_of(api.get(f"/api/v1/synthesis-jobs/{job_id}/audio"), 404)


# --- on a real worker -------------------------------------------------------------------------------------------


def _job(job_id: int) -> SynthesisJob:
    return SynthesisJob.objects.get(pk=job_id)


@pytest.mark.celery_worker
def test_worker_runs_a_submitted_job_and_a_duplicate_delivery_changes_nothing(api, settings, celery_workers):
    a = ready_voice(settings)
    worker = celery_workers.start()
    job_id = submit(api, a).json()["id"]  # committed at once (transactional_db), so queued at once

    worker.wait_until(lambda: _job(job_id).status == "succeeded", "the job to succeed", timeout=120)
    done = _job(job_id)
    worker.wait_for_task(run_synthesis_job.delay(job_id))

    again = _job(job_id)
    assert (again.audio_id, again.output_sha256, again.attempts) == (done.audio_id, done.output_sha256, 1)
    assert SynthesisRecord.objects.count() == 1 and job_blobs() == 1
    audio, rate = decoded(as_key(api, a.secret).get(f"/api/v1/synthesis-jobs/{job_id}/audio").content)
    assert watermark.detect(audio, rate, settings.VOICEGATE_WATERMARK_KEY).payload == again.records.get().pk
    assert audit.verify_chain().ok


@pytest.mark.celery_worker
def test_worker_killed_mid_job_leaves_it_to_the_next_run_which_makes_the_one_output(api, settings, celery_workers):
    a = ready_voice(settings)
    doomed = celery_workers.start(["synthesis"])
    job_id = submit(api, a).json()["id"]
    doomed.wait_until(lambda: _job(job_id).status == "running", "the job to start", interval=0.02)
    doomed.process.kill()  # SIGKILL: no clean-up, the claim stays, the message may be gone with the worker
    doomed.process.wait()
    assert _job(job_id).status == "running" and job_blobs() == 0
    SynthesisJob.objects.filter(pk=job_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))  # time passes

    rescuer = celery_workers.start()
    rescuer.wait_for_task(requeue_stalled_synthesis_jobs.delay())
    rescuer.wait_until(lambda: _job(job_id).status == "succeeded", "the job to succeed", timeout=120)
    rescuer.wait_for_task(run_synthesis_job.delay(job_id))  # the dead run's message, delivered late

    job = _job(job_id)
    assert job.attempts == 2 and job_blobs() == 1
    assert job.records.filter(outcome="completed").count() == 1
