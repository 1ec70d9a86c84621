from django.apps import AppConfig


class DetectionConfig(AppConfig):
    """Watermark verification, synthetic-speech scoring and forensic reports. Models arrive with them."""

    name = "detection"
