"""Synthesis records (what we made, for whom, marked how) and engine voice states fitted per profile."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from governance.models import ApiKey, BiometricBlob, Organization, VoiceProfile


class SynthesisRecord(models.Model):
    """One synthesis request that passed the gate. Its id is the watermark payload in every sample it produced."""

    class Outcome(models.TextChoices):
        STREAMING = "streaming"
        COMPLETED = "completed"
        INTERRUPTED = "interrupted"
        FAILED = "failed"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="syntheses")
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.PROTECT, related_name="syntheses")
    profile = models.ForeignKey(VoiceProfile, on_delete=models.PROTECT, related_name="syntheses")
    purpose = models.CharField(max_length=64)
    engine = models.CharField(max_length=32)
    text_sha256 = models.CharField(max_length=64)
    # The text, encrypted under the voice owner's data key: erasure shreds it with the voice.
    text_ciphertext = models.BinaryField(null=True, editable=False)
    output_sha256 = models.CharField(max_length=64, blank=True)
    duration_s = models.FloatField(default=0.0)
    first_audio_ms = models.FloatField(null=True, blank=True)
    watermark_key_id = models.CharField(max_length=16)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.STREAMING)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"synthesis #{self.pk} ({self.outcome})"


class FittedVoice(models.Model):
    """An engine's voice state for a profile (biometric-derived: stored as an encrypted blob of the owner)."""

    profile = models.ForeignKey(VoiceProfile, on_delete=models.PROTECT, related_name="fitted_voices")
    engine = models.CharField(max_length=32)
    state = models.ForeignKey(BiometricBlob, null=True, on_delete=models.SET_NULL, related_name="+")
    samples_used = models.PositiveIntegerField(default=0)
    fit_seconds = models.FloatField(default=0.0)
    fitted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["profile", "engine"], name="one_fitted_voice_per_engine")]
