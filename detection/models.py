"""A submitted clip and what we concluded about it (chain of custody: the file's hash, who asked, when)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from governance.models import Organization
from synthesis.models import SynthesisRecord


class Detection(models.Model):
    organization = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="detections")
    submitted_by = models.CharField(max_length=100)
    file_sha256 = models.CharField(max_length=64, db_index=True)
    file_bytes = models.PositiveBigIntegerField()
    duration_s = models.FloatField()
    watermark = models.JSONField(default=dict)
    classifier = models.JSONField(null=True, blank=True)
    voice_matches = models.JSONField(default=dict)
    verdict = models.CharField(max_length=32, blank=True)
    reasons = models.JSONField(default=list)
    synthesis_record = models.ForeignKey(SynthesisRecord, null=True, blank=True, on_delete=models.PROTECT, related_name="detections")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"detection #{self.pk} ({'marked' if self.synthesis_record_id else 'no mark'})"
