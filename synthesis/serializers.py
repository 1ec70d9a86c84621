from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from governance.serializers import purpose_field
from synthesis.models import SynthesisJob


class SynthesizeRequestSerializer(serializers.Serializer):
    profile = serializers.IntegerField(min_value=1)
    text = serializers.CharField(trim_whitespace=False, allow_blank=True)
    purpose = purpose_field()
    engine = serializers.CharField(max_length=32, required=False)
    format = serializers.ChoiceField(choices=["wav", "pcm"], default="wav")


class SynthesisJobSerializer(serializers.ModelSerializer):
    """A job as its key sees it: where it stands, how far it got, why it failed, where its audio is."""

    format = serializers.CharField(source="audio_format")
    progress = serializers.FloatField()
    error = serializers.SerializerMethodField()
    audio_url = serializers.SerializerMethodField()

    class Meta:
        model = SynthesisJob
        fields = [
            "id", "status", "progress", "parts_done", "parts_total", "profile", "purpose", "engine", "format",
            "error", "duration_s", "output_sha256", "audio_url", "created_at", "started_at", "finished_at",
        ]

    def get_error(self, job: SynthesisJob) -> dict[str, str] | None:
        return {"code": job.error_code, "message": job.error_message} if job.status == SynthesisJob.Status.FAILED else None

    def get_audio_url(self, job: SynthesisJob) -> str | None:
        return reverse("synthesis-job-audio", args=[job.pk]) if job.status == SynthesisJob.Status.SUCCEEDED else None
