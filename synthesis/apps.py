from django.apps import AppConfig


class SynthesisConfig(AppConfig):
    """The gated synthesis gateway (engines, streaming API). Its models arrive with the gateway."""

    name = "synthesis"
