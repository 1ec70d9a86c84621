"""GET (and POST with the original file) reports/detections/<id>/forensic: the forensic report PDF."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request

from detection import reports
from detection.models import Detection
from governance.models import ApiKey
from governance.report_views import ReportView, file_response
from governance.reports import PDF
from governance.views import read_upload


class ForensicAudioSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="The same file the detection checked (matched by SHA-256)")


class ForensicReportView(ReportView):
    required_action = ApiKey.Action.DETECT
    parser_classes = (MultiPartParser, FormParser)

    @extend_schema(request=None, responses={200: OpenApiResponse(description="application/pdf")})
    def get(self, request: Request, pk: int) -> HttpResponse:
        detection = self._detection(pk)
        return self._pdf(detection, reports.issue_forensic_report(detection, actor=request.principal.actor))

    @extend_schema(
        request={"multipart/form-data": ForensicAudioSerializer},
        responses={200: OpenApiResponse(description="application/pdf, with waveform and spectrogram")},
    )
    def post(self, request: Request, pk: int) -> HttpResponse:
        detection = self._detection(pk)
        data = ForensicAudioSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        content = reports.issue_forensic_report_for_file(detection, read_upload(upload), upload.name, actor=request.principal.actor)
        return self._pdf(detection, content)

    def _detection(self, pk: int) -> Detection:
        queryset = Detection.objects.select_related("organization", "synthesis_record__profile", "synthesis_record__api_key")
        return self.scoped(queryset, "organization_id", pk)

    def _pdf(self, detection: Detection, content: bytes) -> HttpResponse:
        return file_response(content, PDF, f"detection-{detection.pk}-forensic-report.pdf")
