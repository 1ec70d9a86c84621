"""POST /api/v1/synthesize: gate, then stream watermarked audio chunk by chunk."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.views import APIView

from governance.models import ApiKey, VoiceProfile
from synthesis import gateway, streaming
from synthesis.serializers import SynthesizeRequestSerializer


class SynthesizeView(APIView):
    # Only authentication here: policy.decide_synthesis judges the key (revoked, expired, scope) so that a
    # refusal names the precise reason.
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=SynthesizeRequestSerializer,
        responses={200: OpenApiResponse(description="audio/wav or audio/L16 stream; X-Synthesis-Record names the record")},
    )
    def post(self, request: Request) -> StreamingHttpResponse:
        if not isinstance(request.auth, ApiKey):
            raise exceptions.PermissionDenied("Synthesis needs an API key with the synthesize scope.")
        data = SynthesizeRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        params = data.validated_data
        profile = VoiceProfile.objects.select_related("owner").filter(
            pk=params["profile"], owner__organization_id=request.auth.organization_id
        ).first()
        if profile is None:
            raise exceptions.NotFound("No such voice profile.")
        stream = gateway.start(request.auth, profile, params["text"], params["purpose"], params.get("engine"))
        return _response(stream, params["format"])


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
