from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from rest_framework import serializers

from governance import apikeys
from governance.models import (
    ApiKey,
    EnrollmentSample,
    ProtectedVoice,
    VoiceChallenge,
    AuditEvent,
    ConsentArtifact,
    ErasureRequest,
    IdentityVerification,
    Organization,
    VoiceOwner,
    VoiceProfile,
)

_PURPOSE = RegexValidator(r"^[a-z0-9][a-z0-9_.-]*$", "Purposes are lower-case slugs, e.g. 'ivr-prompts'.")


def purpose_field() -> serializers.CharField:
    return serializers.CharField(max_length=64, validators=[_PURPOSE])


class OrganizationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "created_at"]


class VoiceOwnerSerializer(serializers.ModelSerializer):
    organization = serializers.PrimaryKeyRelatedField(queryset=Organization.objects.none(), required=False)

    class Meta:
        model = VoiceOwner
        fields = ["id", "organization", "full_name", "email", "external_ref", "created_at", "erased_at"]
        read_only_fields = ["created_at", "erased_at"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        principal = getattr(self.context.get("request"), "principal", None)
        if principal is not None:
            self.fields["organization"].queryset = Organization.objects.filter(pk__in=principal.organization_ids)


class IdentityVerificationSerializer(serializers.ModelSerializer):
    evidence_file = serializers.FileField(write_only=True, required=False)

    class Meta:
        model = IdentityVerification
        fields = [
            "id", "owner", "method", "status", "evidence_sha256", "decided_at", "decision_note", "expires_at",
            "created_at", "evidence_file",
        ]
        read_only_fields = ["status", "evidence_sha256", "decided_at", "decision_note", "expires_at", "created_at"]


class DecisionSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=2000)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class EnrollmentSampleSerializer(serializers.ModelSerializer):
    class Meta:
        model = EnrollmentSample
        fields = [
            "id", "profile", "verdict", "quality_report", "job_status", "job_error", "audio_sha256",
            "audio_retained_until", "created_at", "finished_at",
        ]


class VoiceProfileSerializer(serializers.ModelSerializer):
    samples = EnrollmentSampleSerializer(many=True, read_only=True)
    consents = serializers.SerializerMethodField()

    class Meta:
        model = VoiceProfile
        fields = [
            "id", "owner", "name", "status", "status_reason", "status_changed_at", "held_for_review",
            "enrollment_report", "samples", "consents", "created_at",
        ]
        read_only_fields = ["status", "status_reason", "status_changed_at", "held_for_review", "enrollment_report", "created_at"]

    def get_consents(self, profile: VoiceProfile) -> list[dict[str, Any]]:
        return [
            {"id": c.pk, "purposes": c.purposes, "valid_until": c.valid_until, "verification_status": c.verification_status,
             "verification_job_status": c.verification_job_status, "verification_results": c.verification_results,
             "revoked_at": c.revoked_at}
            for c in profile.consents.order_by("pk")
        ]


class AudioUploadSerializer(serializers.Serializer):
    file = serializers.FileField()
    profile = serializers.IntegerField(required=False, min_value=1)


class ConsentRecordingSerializer(serializers.Serializer):
    recording = serializers.FileField()
    profile = serializers.IntegerField(required=False, min_value=1)
    purposes = serializers.ListField(child=purpose_field(), min_length=1, max_length=20)
    valid_from = serializers.DateTimeField(required=False)
    valid_until = serializers.DateTimeField()


class ChallengeRequestSerializer(serializers.Serializer):
    profile = serializers.IntegerField(required=False, min_value=1)


class VoiceChallengeSerializer(serializers.ModelSerializer):
    class Meta:
        model = VoiceChallenge
        fields = ["id", "owner", "profile", "phrase", "expires_at", "status", "results", "identity_verification", "created_at"]


class ProtectedVoiceSerializer(serializers.ModelSerializer):
    organization = serializers.IntegerField(source="owner.organization_id", read_only=True)

    class Meta:
        model = ProtectedVoice
        fields = ["id", "label", "organization", "applies_to_all_organizations", "registered_by", "created_at"]


class ProtectedVoiceUploadSerializer(serializers.Serializer):
    label = serializers.CharField(max_length=200)
    files = serializers.ListField(child=serializers.FileField(), min_length=1, max_length=10)
    organization = serializers.IntegerField(required=False, min_value=1)
    applies_to_all_organizations = serializers.BooleanField(default=False)


class ConsentArtifactSerializer(serializers.ModelSerializer):
    purposes = serializers.ListField(child=purpose_field(), min_length=1, max_length=20)

    class Meta:
        model = ConsentArtifact
        fields = [
            "id", "profile", "statement_text", "purposes", "valid_from", "valid_until", "revoked_at",
            "revocation_reason", "verification_status", "verification_results", "verified_at", "content_sha256",
            "expired_at", "verification_job_status", "created_at",
        ]
        read_only_fields = [
            "revoked_at", "revocation_reason", "verification_status", "verification_results", "verified_at",
            "content_sha256", "expired_at", "created_at",
        ]
        extra_kwargs = {"statement_text": {"max_length": 5000}}

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["valid_until"] <= attrs["valid_from"]:
            raise serializers.ValidationError({"valid_until": "must be after valid_from"})
        return attrs


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300)


class ApiKeySerializer(serializers.ModelSerializer):
    actions = serializers.ListField(child=serializers.ChoiceField(choices=ApiKey.Action.choices), min_length=1)
    purposes = serializers.ListField(child=purpose_field(), required=False, default=list)
    profiles = serializers.PrimaryKeyRelatedField(many=True, queryset=VoiceProfile.objects.none(), required=False)
    organization = serializers.PrimaryKeyRelatedField(queryset=Organization.objects.none())
    rate_limit_per_minute = serializers.IntegerField(min_value=1, max_value=100_000, required=False)
    audio_seconds_per_day = serializers.IntegerField(min_value=1, max_value=10_000_000, required=False, allow_null=True)
    allowed_engines = serializers.ListField(
        child=serializers.RegexField(rf"^{apikeys.ENGINE_NAME.pattern}\Z", max_length=32), required=False, default=list, max_length=20
    )

    class Meta:
        model = ApiKey
        fields = [
            "id", "organization", "name", "prefix", "profiles", "actions", "purposes", "rate_limit_per_minute",
            "audio_seconds_per_day", "allowed_engines", "expires_at", "revoked_at", "suspended_at", "created_at",
            "last_used_at",
        ]
        read_only_fields = ["prefix", "revoked_at", "suspended_at", "created_at", "last_used_at"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        principal = getattr(self.context.get("request"), "principal", None)
        if principal is not None:
            self.fields["organization"].queryset = Organization.objects.filter(pk__in=principal.organization_ids)
            self.fields["profiles"].child_relation.queryset = VoiceProfile.objects.filter(
                owner__organization_id__in=principal.organization_ids
            )


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "sequence", "created_at", "actor", "action", "organization_id", "target_type", "target_id", "data",
            "previous_hash", "row_hash",
        ]


class ErasureRequestSerializer(serializers.ModelSerializer):
    class Meta:
        model = ErasureRequest
        fields = ["id", "owner", "status", "created_at", "completed_at", "certificate", "certificate_sha256"]


class ErasureInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
