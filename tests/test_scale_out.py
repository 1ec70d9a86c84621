"""Scale-out (docs/operations.md): web nodes keep no state, and work reaches only the workers whose queues it is
routed to, so engines run on the nodes started for `synthesis` and nowhere else."""

from __future__ import annotations

import pytest

from governance.tasks import expire_consents, process_sample
from synthesis.models import SynthesisJob
from synthesis.tasks import fit_voices, run_synthesis_job
from tests.api_helpers import as_key
from tests.factories import PURPOSE
from tests.test_synthesis_jobs import TEXT, ready_voice
from voicegate.celery import app


def received(worker, task) -> bool:
    return f"Task {task.name}[" in worker.log()


def test_work_is_routed_by_what_it_needs():
    queue_of = {task.name: app.amqp.router.route({}, task.name)["queue"].name for task in (run_synthesis_job, fit_voices, process_sample, expire_consents)}
    assert queue_of == {
        run_synthesis_job.name: "synthesis",
        fit_voices.name: "synthesis",
        process_sample.name: "enrollment",
        expire_consents.name: "default",
    }


@pytest.mark.celery_worker
def test_a_synthesis_job_runs_on_the_synthesis_worker_and_never_reaches_the_default_one(api, settings, celery_workers):
    a = ready_voice(settings)
    default_worker = celery_workers.start(["default"])
    synthesis_worker = celery_workers.start(["synthesis"])

    job_id = as_key(api, a.secret).post("/api/v1/synthesis-jobs/", {"profile": a.profile.pk, "text": TEXT, "purpose": PURPOSE}, format="json").json()["id"]
    synthesis_worker.wait_until(lambda: SynthesisJob.objects.get(pk=job_id).status == "succeeded", "the job to succeed", timeout=120)
    default_worker.wait_for_task(expire_consents.delay())

    assert received(synthesis_worker, run_synthesis_job) and not received(synthesis_worker, expire_consents)
    assert received(default_worker, expire_consents) and not received(default_worker, run_synthesis_job)
    # Status and audio come from the database and storage that every web node shares, not from the node.
    status = as_key(api, a.secret).get(f"/api/v1/synthesis-jobs/{job_id}/").json()
    assert status["status"] == "succeeded" and as_key(api, a.secret).get(status["audio_url"]).status_code == 200
