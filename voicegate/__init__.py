"""Voicegate. The Celery app lives in voicegate.celery and is loaded by governance's AppConfig.ready(),
so that voicegate.audio (the framework-free core) imports without Django or Celery."""
