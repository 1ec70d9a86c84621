from django.apps import AppConfig


class SynthesisConfig(AppConfig):
    """The gated synthesis gateway: engines, voice fitting, streaming API."""

    name = "synthesis"

    def ready(self) -> None:
        # Register the fitting task in every process: enrollment (governance) queues it by name.
        import synthesis.tasks  # noqa: F401
