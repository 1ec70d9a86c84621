"""The Celery app. Broker from CELERY_BROKER_URL (kombu's filesystem transport when unset).

Work is split into queues by what it needs, so a deployment can give each kind its own workers
(docs/operations.md, "Scaling"): `synthesis` runs the engines (voice fitting, batch jobs) and belongs on GPU
nodes; `enrollment` runs the speaker encoder and the speech recognizer; `detection` the classifier;
`default` the light beat jobs. A worker started without `-Q` takes every queue, as `make run` does.
"""

import os

from celery import Celery
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicegate.settings")

QUEUES = ("default", "enrollment", "detection", "synthesis")
ROUTES = {
    "synthesis.tasks.fit_voices": "synthesis",
    "synthesis.tasks.run_synthesis_job": "synthesis",
    "governance.tasks.process_sample": "enrollment",
    "governance.tasks.verify_consent_recording": "enrollment",
    "governance.tasks.check_voice_challenge": "enrollment",
    "detection.tasks.*": "detection",
}

app = Celery("voicegate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_default_queue = "default"
# Each queue with its own direct exchange and routing key: left blank, Celery would bind every queue to the
# default exchange under the default key, and a message for one queue would reach all of them.
app.conf.task_queues = [Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES]
app.conf.task_routes = {task: {"queue": queue} for task, queue in ROUTES.items()}
app.autodiscover_tasks()
