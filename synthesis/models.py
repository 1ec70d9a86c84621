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
    # A batch job speaks its text in parts, one record (and watermark payload) each: this ties a part to its job.
    job = models.ForeignKey("SynthesisJob", null=True, blank=True, on_delete=models.PROTECT, related_name="records")

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


class SynthesisJob(models.Model):
    """A long text spoken in the background (synthesis.jobs) into one watermarked file for the key that asked.

    Only that key reads its status and downloads its audio, which is stored encrypted under the voice owner's
    data key (a biometric blob), so erasing the owner erases it.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    class Format(models.TextChoices):
        WAV = "wav"
        PCM = "pcm"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="synthesis_jobs")
    api_key = models.ForeignKey(ApiKey, on_delete=models.PROTECT, related_name="synthesis_jobs")
    profile = models.ForeignKey(VoiceProfile, on_delete=models.PROTECT, related_name="synthesis_jobs")
    purpose = models.CharField(max_length=64)
    engine = models.CharField(max_length=32)
    audio_format = models.CharField(max_length=8, choices=Format.choices, default=Format.WAV)
    text_sha256 = models.CharField(max_length=64)
    # The text, encrypted under the voice owner's data key until the job ends (each part's record keeps its own).
    text_ciphertext = models.BinaryField(null=True, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    parts_total = models.PositiveIntegerField(default=0)
    parts_done = models.PositiveIntegerField(default=0)
    # The run that holds the job: a random token, and when its claim lapses unless renewed (after every part).
    claim = models.CharField(max_length=32, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.CharField(max_length=300, blank=True)
    audio = models.ForeignKey(BiometricBlob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    sample_rate = models.PositiveIntegerField(null=True, blank=True)
    duration_s = models.FloatField(default=0.0)
    output_sha256 = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "lease_expires_at"])]

    def __str__(self) -> str:
        return f"synthesis job #{self.pk} ({self.status})"

    @property
    def progress(self) -> float:
        """Fraction of the text's parts spoken: 0.0 until the first part is done, 1.0 when all are."""
        return self.parts_done / self.parts_total if self.parts_total else 0.0
