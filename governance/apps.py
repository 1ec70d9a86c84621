from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"

    def ready(self) -> None:
        # Make the project's Celery app current before any task is sent from this process.
        import voicegate.celery  # noqa: F401
