"""The governance API. Views parse, authorize (by organization scope), call one service, serialize."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils import timezone
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from governance import (
    apikeys,
    challenges,
    consent_checks,
    consents,
    enrollment,
    erasure,
    identity,
    lifecycle,
    owners,
    profiles,
    protected_voices,
)
from governance import serializers as s
from governance.models import (
    ApiKey,
    AuditEvent,
    ConsentArtifact,
    EnrollmentSample,
    ErasureRequest,
    ProtectedVoice,
    VoiceChallenge,
    IdentityVerification,
    Organization,
    VoiceOwner,
    VoiceProfile,
)
from governance.permissions import RequiresAction

ENROLL = ApiKey.Action.ENROLL
_AUDIO_PARSERS = [MultiPartParser, FormParser]


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"


def read_upload(upload: UploadedFile) -> bytes:
    """The upload's bytes, refusing oversize files before reading them into memory."""
    if upload.size is not None and upload.size > settings.VOICEGATE_AUDIO_MAX_BYTES:
        raise PayloadTooLarge(f"the file is {upload.size} bytes; the limit is {settings.VOICEGATE_AUDIO_MAX_BYTES}")
    return upload.read()


def _owner_profile(owner: VoiceOwner, profile_id: int | None) -> VoiceProfile:
    """The profile named, or the owner's only live profile when none is named."""
    live = owner.profiles.exclude(status__in=[VoiceProfile.Status.RETIRED, VoiceProfile.Status.ERASED])
    if profile_id is not None:
        found = live.filter(pk=profile_id).first()
        if found is None:
            raise serializers.ValidationError({"profile": "not a live profile of this owner"})
        return found
    candidates = list(live[:2])
    if len(candidates) != 1:
        raise serializers.ValidationError({"profile": "required: the owner has no or several live profiles"})
    return candidates[0]


class _OrgScoped(viewsets.GenericViewSet):
    """Lists and lookups see only the caller's organizations: others' ids are 404."""

    permission_classes = [RequiresAction]
    required_action: str | None = ENROLL
    officer_actions: frozenset[str] = frozenset()
    organization_path = "organization_id"

    def get_queryset(self) -> QuerySet[Any]:
        ids = self.request.principal.organization_ids
        return self.queryset.filter(**{f"{self.organization_path}__in": ids})

    def _validated(self, serializer_class: type[serializers.Serializer]) -> dict[str, Any]:
        serializer = serializer_class(data=self.request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def _require_in_scope(self, organization_id: int, field: str) -> None:
        # Same answer as for an id that does not exist: the caller learns nothing about other tenants.
        if organization_id not in self.request.principal.organization_ids:
            raise serializers.ValidationError({field: "Invalid pk - object does not exist."})


class OrganizationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _OrgScoped):
    queryset = Organization.objects.order_by("pk")
    serializer_class = s.OrganizationSerializer
    required_action = None
    organization_path = "pk"


class VoiceOwnerViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, _OrgScoped):
    queryset = VoiceOwner.objects.order_by("pk")
    serializer_class = s.VoiceOwnerSerializer

    def perform_create(self, serializer: s.VoiceOwnerSerializer) -> None:
        principal = self.request.principal
        organization = serializer.validated_data.get("organization")
        if organization is None:
            if len(principal.organization_ids) != 1:
                raise serializers.ValidationError({"organization": "required: you act for several organizations"})
            organization = Organization.objects.get(pk=next(iter(principal.organization_ids)))
        fields = {k: v for k, v in serializer.validated_data.items() if k != "organization"}
        serializer.instance = owners.register(organization, actor=principal.actor, **fields)

    @extend_schema(request=s.ErasureInputSerializer, responses=s.ErasureRequestSerializer)
    @action(detail=True, methods=["post"])
    def erase(self, request: Request, pk: str | None = None) -> Response:
        owner = self.get_object()
        reason = self._validated(s.ErasureInputSerializer)["reason"]
        completed = erasure.erase(owner, actor=request.principal.actor, reason=reason)
        return Response(s.ErasureRequestSerializer(completed).data, status=status.HTTP_200_OK)

    @extend_schema(request={"multipart/form-data": s.AudioUploadSerializer}, responses={202: s.EnrollmentSampleSerializer})
    @action(detail=True, methods=["post"], parser_classes=_AUDIO_PARSERS)
    def samples(self, request: Request, pk: str | None = None) -> Response:
        data = self._validated(s.AudioUploadSerializer)
        profile = _owner_profile(self.get_object(), data.get("profile"))
        upload = data["file"]
        sample = enrollment.submit_sample(profile, read_upload(upload), upload.name, actor=request.principal.actor)
        return Response(s.EnrollmentSampleSerializer(sample).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request={"multipart/form-data": s.ConsentRecordingSerializer}, responses={202: s.ConsentArtifactSerializer})
    @action(detail=True, methods=["post"], url_path="consents", parser_classes=_AUDIO_PARSERS)
    def record_consent(self, request: Request, pk: str | None = None) -> Response:
        data = self._validated(s.ConsentRecordingSerializer)
        profile = _owner_profile(self.get_object(), data.get("profile"))
        valid_from = data.get("valid_from") or timezone.now()
        if data["valid_until"] <= valid_from:
            raise serializers.ValidationError({"valid_until": "must be after valid_from"})
        upload = data["recording"]
        consent = consent_checks.submit_recording(
            profile, read_upload(upload), upload.name, purposes=data["purposes"], valid_from=valid_from,
            valid_until=data["valid_until"], actor=request.principal.actor,
        )
        return Response(s.ConsentArtifactSerializer(consent).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=s.ChallengeRequestSerializer, responses={201: s.VoiceChallengeSerializer})
    @action(detail=True, methods=["post"])
    def challenges(self, request: Request, pk: str | None = None) -> Response:
        profile = _owner_profile(self.get_object(), self._validated(s.ChallengeRequestSerializer).get("profile"))
        challenge = challenges.issue(profile, actor=request.principal.actor)
        return Response(s.VoiceChallengeSerializer(challenge).data, status=status.HTTP_201_CREATED)


class EnrollmentSampleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _OrgScoped):
    queryset = EnrollmentSample.objects.order_by("pk")
    serializer_class = s.EnrollmentSampleSerializer
    organization_path = "profile__owner__organization_id"


class VoiceChallengeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _OrgScoped):
    queryset = VoiceChallenge.objects.order_by("pk")
    serializer_class = s.VoiceChallengeSerializer
    organization_path = "owner__organization_id"

    @extend_schema(request={"multipart/form-data": s.AudioUploadSerializer}, responses={202: s.VoiceChallengeSerializer})
    @action(detail=True, methods=["post"], url_path="response", parser_classes=_AUDIO_PARSERS)
    def respond(self, request: Request, pk: str | None = None) -> Response:
        upload = self._validated(s.AudioUploadSerializer)["file"]
        challenge = challenges.submit_response(self.get_object(), read_upload(upload), upload.name, actor=request.principal.actor)
        return Response(s.VoiceChallengeSerializer(challenge).data, status=status.HTTP_202_ACCEPTED)


class ProtectedVoiceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _OrgScoped):
    queryset = ProtectedVoice.objects.select_related("owner").order_by("pk")
    serializer_class = s.ProtectedVoiceSerializer
    organization_path = "owner__organization_id"

    @extend_schema(request={"multipart/form-data": s.ProtectedVoiceUploadSerializer}, responses={201: s.ProtectedVoiceSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = self._validated(s.ProtectedVoiceUploadSerializer)
        principal = request.principal
        organization_id = data.get("organization") or (next(iter(principal.organization_ids)) if len(principal.organization_ids) == 1 else None)
        if organization_id is None:
            raise serializers.ValidationError({"organization": "required: you act for several organizations"})
        self._require_in_scope(organization_id, "organization")
        if data["applies_to_all_organizations"] and not (principal.is_officer and principal.officer.is_superuser):
            raise exceptions.PermissionDenied("Only the operator may protect a voice across all organizations.")
        voice = protected_voices.register(
            Organization.objects.get(pk=organization_id), label=data["label"],
            samples=[(read_upload(f), f.name) for f in data["files"]],
            applies_to_all_organizations=data["applies_to_all_organizations"], actor=principal.actor,
        )
        return Response(s.ProtectedVoiceSerializer(voice).data, status=status.HTTP_201_CREATED)


class IdentityVerificationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, _OrgScoped):
    queryset = IdentityVerification.objects.select_related("owner").order_by("pk")
    serializer_class = s.IdentityVerificationSerializer
    organization_path = "owner__organization_id"
    officer_actions = frozenset({"approve", "reject"})

    def perform_create(self, serializer: s.IdentityVerificationSerializer) -> None:
        owner = serializer.validated_data["owner"]
        self._require_in_scope(owner.organization_id, "owner")
        upload = serializer.validated_data.get("evidence_file")
        serializer.instance = identity.request_verification(
            owner,
            method=serializer.validated_data["method"],
            actor=self.request.principal.actor,
            evidence=upload.read() if upload else None,
            evidence_content_type=getattr(upload, "content_type", "") or "",
        )

    @extend_schema(request=s.DecisionSerializer, responses=s.IdentityVerificationSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        return self._decide(approve=True)

    @extend_schema(request=s.DecisionSerializer, responses=s.IdentityVerificationSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        return self._decide(approve=False)

    def _decide(self, *, approve: bool) -> Response:
        data = self._validated(s.DecisionSerializer)
        decided = identity.decide(
            self.get_object(), approve=approve, officer=self.request.user, note=data["note"], expires_at=data.get("expires_at")
        )
        return Response(s.IdentityVerificationSerializer(decided).data)


class VoiceProfileViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, _OrgScoped):
    queryset = VoiceProfile.objects.select_related("owner").prefetch_related("samples", "consents").order_by("pk")
    serializer_class = s.VoiceProfileSerializer
    organization_path = "owner__organization_id"
    officer_actions = frozenset({"activate", "suspend", "retire"})

    def perform_create(self, serializer: s.VoiceProfileSerializer) -> None:
        owner = serializer.validated_data["owner"]
        self._require_in_scope(owner.organization_id, "owner")
        serializer.instance = profiles.create(owner, name=serializer.validated_data["name"], actor=self.request.principal.actor)

    @extend_schema(request=None, responses=s.VoiceProfileSerializer)
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, pk: str | None = None) -> Response:
        return self._move(VoiceProfile.Status.PENDING, "submitted for review")

    @extend_schema(request=None, responses=s.VoiceProfileSerializer)
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk: str | None = None) -> Response:
        profile = profiles.activate(self.get_object(), actor=request.principal.actor)
        return Response(s.VoiceProfileSerializer(profile).data)

    @extend_schema(request=s.ReasonSerializer, responses=s.VoiceProfileSerializer)
    @action(detail=True, methods=["post"])
    def suspend(self, request: Request, pk: str | None = None) -> Response:
        return self._move(VoiceProfile.Status.SUSPENDED, self._validated(s.ReasonSerializer)["reason"])

    @extend_schema(request=s.ReasonSerializer, responses=s.VoiceProfileSerializer)
    @action(detail=True, methods=["post"])
    def retire(self, request: Request, pk: str | None = None) -> Response:
        return self._move(VoiceProfile.Status.RETIRED, self._validated(s.ReasonSerializer)["reason"])

    def _move(self, target: str, reason: str) -> Response:
        profile = lifecycle.transition(self.get_object(), target, actor=self.request.principal.actor, reason=reason)
        return Response(s.VoiceProfileSerializer(profile).data)


class ConsentArtifactViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, _OrgScoped):
    queryset = ConsentArtifact.objects.select_related("profile__owner").order_by("pk")
    serializer_class = s.ConsentArtifactSerializer
    organization_path = "profile__owner__organization_id"
    officer_actions = frozenset({"verify"})

    def perform_create(self, serializer: s.ConsentArtifactSerializer) -> None:
        data = serializer.validated_data
        profile = data["profile"]
        self._require_in_scope(profile.owner.organization_id, "profile")
        serializer.instance = consents.record_consent(
            profile,
            statement_text=data["statement_text"],
            purposes=data["purposes"],
            valid_from=data["valid_from"],
            valid_until=data["valid_until"],
            actor=self.request.principal.actor,
        )

    @extend_schema(request=s.ReasonSerializer, responses=s.ConsentArtifactSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        reason = self._validated(s.ReasonSerializer)["reason"]
        consent = consents.revoke(self.get_object(), actor=request.principal.actor, reason=reason)
        return Response(s.ConsentArtifactSerializer(consent).data)

    @extend_schema(request=s.ReasonSerializer, responses=s.ConsentArtifactSerializer)
    @action(detail=True, methods=["post"])
    def verify(self, request: Request, pk: str | None = None) -> Response:
        justification = self._validated(s.ReasonSerializer)["reason"]
        consent = consents.verify(self.get_object(), actor=request.principal.actor, justification=justification)
        return Response(s.ConsentArtifactSerializer(consent).data)


class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, _OrgScoped):
    """Officers manage keys; a key can never mint or revoke keys."""

    queryset = ApiKey.objects.prefetch_related("profiles").order_by("pk")
    serializer_class = s.ApiKeySerializer
    required_action = None
    officer_actions = frozenset({"*"})

    @extend_schema(responses={201: OpenApiResponse(description="The key, with its secret shown this once.")})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        key, secret = apikeys.create_key(
            data["organization"], name=data["name"], actions=data["actions"], purposes=data["purposes"],
            profiles=data.get("profiles", []), expires_at=data.get("expires_at"),
            rate_limit_per_minute=data.get("rate_limit_per_minute"), audio_seconds_per_day=data.get("audio_seconds_per_day"),
            allowed_engines=data["allowed_engines"], actor=request.principal.actor, created_by=request.user,
        )
        return Response({**s.ApiKeySerializer(key).data, "key": secret}, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.ReasonSerializer, responses=s.ApiKeySerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        reason = self._validated(s.ReasonSerializer)["reason"]
        key = apikeys.revoke(self.get_object(), actor=request.principal.actor, reason=reason)
        return Response(s.ApiKeySerializer(key).data)


class AuditEventViewSet(mixins.ListModelMixin, _OrgScoped):
    queryset = AuditEvent.objects.order_by("sequence")
    serializer_class = s.AuditEventSerializer
    required_action = ApiKey.Action.READ_AUDIT


class ErasureRequestViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _OrgScoped):
    queryset = ErasureRequest.objects.order_by("pk")
    serializer_class = s.ErasureRequestSerializer
    organization_path = "owner__organization_id"
