"""The Celery app. Broker from CELERY_BROKER_URL (kombu's filesystem transport when unset)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicegate.settings")

app = Celery("voicegate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
