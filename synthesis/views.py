"""POST /api/v1/synthesize: gate, then stream watermarked audio chunk by chunk.
/api/v1/synthesis-jobs/: the same request for long texts, spoken by a worker; status and download by its key.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse, StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.models import ApiKey, VoiceProfile
from synthesis import gateway, jobs, streaming
from synthesis.models import SynthesisJob
from synthesis.serializers import SynthesisJobSerializer, SynthesizeRequestSerializer


class JobNotFinished(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "job_not_finished"
    default_detail = "The job has no audio: it has not succeeded."


class SynthesizeView(APIView):
    # Only authentication here: policy.decide_synthesis judges the key (revoked, expired, scope) so that a
    # refusal names the precise reason.
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=SynthesizeRequestSerializer,
        responses={200: OpenApiResponse(description="audio/wav or audio/L16 stream; X-Synthesis-Record names the record")},
    )
    def post(self, request: Request) -> StreamingHttpResponse:
        key = _api_key(request)
        params = _synthesis_request(request)
        stream = gateway.start(key, _profile(key, params["profile"]), params["text"], params["purpose"], params.get("engine"))
        return _response(stream, params["format"])


def _api_key(request: Request) -> ApiKey:
    if not isinstance(request.auth, ApiKey):
        raise exceptions.PermissionDenied("Synthesis needs an API key with the synthesize scope.")
    return request.auth


def _synthesis_request(request: Request) -> dict[str, Any]:
    data = SynthesizeRequestSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    return data.validated_data


def _profile(key: ApiKey, profile_id: int) -> VoiceProfile:
    profile = VoiceProfile.objects.select_related("owner").filter(pk=profile_id, owner__organization_id=key.organization_id).first()
    if profile is None:
        raise exceptions.NotFound("No such voice profile.")
    return profile


def _response(stream: gateway.SynthesisStream, audio_format: str) -> StreamingHttpResponse:
    if audio_format == "wav":
        chunks, content_type = streaming.with_header(streaming.wav_header(stream.sample_rate), stream.pcm16), "audio/wav"
    else:
        chunks, content_type = stream.pcm16, f"audio/L16; rate={stream.sample_rate}; channels=1"
    response = StreamingHttpResponse(streaming.as_async(chunks), content_type=content_type)
    response["X-Synthesis-Record"] = str(stream.record.pk)
    response["X-Watermark-Key-Id"] = stream.record.watermark_key_id
    response["X-Sample-Rate"] = str(stream.sample_rate)
    response["Cache-Control"] = "no-store"
    return response


class SynthesisJobsView(APIView):
    permission_classes = [IsAuthenticated]  # as for /synthesize: the policy judges the key

    @extend_schema(request=SynthesizeRequestSerializer, responses={202: SynthesisJobSerializer})
    def post(self, request: Request) -> Response:
        key = _api_key(request)
        params = _synthesis_request(request)
        job = jobs.submit(key, _profile(key, params["profile"]), params["text"], params["purpose"], params.get("engine"), params["format"])
        location = reverse("synthesis-job", args=[job.pk])
        return Response(SynthesisJobSerializer(job).data, status=status.HTTP_202_ACCEPTED, headers={"Location": location})


class SynthesisJobView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: SynthesisJobSerializer})
    def get(self, request: Request, job_id: str) -> Response:
        return Response(SynthesisJobSerializer(_own_job(request, job_id)).data)


class SynthesisJobAudioView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: OpenApiResponse(description="the job's watermarked audio (audio/wav or audio/L16)")})
    def get(self, request: Request, job_id: str) -> HttpResponse:
        job = _own_job(request, job_id)
        if job.status != SynthesisJob.Status.SUCCEEDED:
            raise JobNotFinished(f"Job {job.pk} is {job.status}; its audio exists once it has succeeded.")
        response = HttpResponse(jobs.audio_of(job, request.auth), content_type=job.audio.content_type if job.audio else "")
        extension = "wav" if job.audio_format == SynthesisJob.Format.WAV else "pcm"
        response["Content-Disposition"] = f'attachment; filename="synthesis-job-{job.pk}.{extension}"'
        response["X-Synthesis-Job"] = str(job.pk)
        response["Cache-Control"] = "no-store"
        return response


def _own_job(request: Request, job_id: str) -> SynthesisJob:
    """The caller's job, or 404: a job and its audio belong to the key that submitted it, not to its organization."""
    job = SynthesisJob.objects.select_related("audio__owner").filter(pk=int(job_id), api_key=_api_key(request)).first()
    if job is None:
        raise exceptions.NotFound("No such synthesis job.")
    return job
