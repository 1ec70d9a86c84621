"""Report endpoints: the audit report (PDF) and export (CSV/JSON), the owner dossier, erasure certificates.

Views parse, authorize (organization scope: others' ids are 404), call one service from
governance.reports, and return the bytes. Errors keep the API's one JSON shape.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from governance import reports
from governance.models import ApiKey, ErasureRequest, Organization, VoiceOwner
from governance.permissions import RequiresAction


class JsonErrorsNegotiation(BaseContentNegotiation):
    """Report views answer with file bytes; only their errors are rendered, always as JSON.

    DRF's default negotiation would answer 406 to `Accept: application/pdf` and 404 to `?format=pdf`
    (it reads `format` as a renderer override) before the view runs.
    """

    def select_parser(self, request: Request, parsers: list[Any]) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None) -> tuple[BaseRenderer, str]:
        return renderers[0], renderers[0].media_type


class ReportView(APIView):
    permission_classes = (RequiresAction,)
    renderer_classes = (JSONRenderer,)
    content_negotiation_class = JsonErrorsNegotiation
    required_action: str | None = ApiKey.Action.READ_AUDIT
    officer_actions: frozenset[str] = frozenset()

    def scoped(self, queryset: Any, organization_path: str, pk: int) -> Any:
        """The object if it is in the caller's organizations; 404 otherwise, as for an id that does not exist."""
        found = queryset.filter(pk=pk, **{f"{organization_path}__in": self.request.principal.organization_ids}).first()
        if found is None:
            raise exceptions.NotFound()
        return found


def file_response(content: bytes, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


class AuditReportQuerySerializer(serializers.Serializer):
    organization = serializers.IntegerField(required=False, min_value=1)
    start = serializers.DateField(input_formats=["%Y-%m-%d"])
    end = serializers.DateField(input_formats=["%Y-%m-%d"])
    format = serializers.ChoiceField(choices=["pdf", "csv", "json"], default="pdf")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["end"] < attrs["start"]:
            raise serializers.ValidationError({"end": "must be on or after start"})
        if (attrs["end"] - attrs["start"]).days >= reports.MAX_PERIOD_DAYS:
            raise serializers.ValidationError({"end": f"the period may span at most {reports.MAX_PERIOD_DAYS} days"})
        return attrs


class AuditReportView(ReportView):
    """GET reports/audit?organization=ID&start=YYYY-MM-DD&end=YYYY-MM-DD&format=pdf|csv|json"""

    @extend_schema(
        parameters=[
            OpenApiParameter("organization", int, description="Required when the caller acts for several organizations"),
            OpenApiParameter("start", OpenApiTypes.DATE, required=True),
            OpenApiParameter("end", OpenApiTypes.DATE, required=True, description="Inclusive"),
            OpenApiParameter("format", str, enum=["pdf", "csv", "json"], default="pdf"),
        ],
        responses={200: OpenApiResponse(description="application/pdf, text/csv or application/json")},
    )
    def get(self, request: Request) -> HttpResponse:
        query = AuditReportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        organization = self._organization(params.get("organization"))
        start, end, fmt = params["start"], params["end"], params["format"]
        actor = request.principal.actor
        if fmt == "pdf":
            content, content_type = reports.issue_audit_report(organization, start, end, actor=actor), reports.PDF
        else:
            content, content_type = reports.export_audit_events(organization, start, end, fmt, actor=actor)
        return file_response(content, content_type, _audit_filename(organization, start, end, fmt))

    def _organization(self, organization_id: int | None) -> Organization:
        ids = self.request.principal.organization_ids
        if organization_id is None:
            if len(ids) != 1:
                raise serializers.ValidationError({"organization": "required: you act for several organizations"})
            organization_id = next(iter(ids))
        return self.scoped(Organization.objects.all(), "pk", organization_id)


def _audit_filename(organization: Organization, start: date, end: date, fmt: str) -> str:
    kind = "audit-report" if fmt == "pdf" else "audit-events"
    return f"{kind}-{organization.slug}-{start.isoformat()}-{end.isoformat()}.{fmt}"


class OwnerDossierView(ReportView):
    """GET reports/owners/<id>/dossier: compliance officers only."""

    required_action = None
    officer_actions = frozenset({"*"})

    @extend_schema(responses={200: OpenApiResponse(description="application/pdf")})
    def get(self, request: Request, pk: int) -> HttpResponse:
        owner = self.scoped(VoiceOwner.objects.select_related("organization"), "organization_id", pk)
        content = reports.issue_owner_dossier(owner, actor=request.principal.actor)
        return file_response(content, reports.PDF, f"owner-{owner.pk}-dossier.pdf")


class ErasureCertificateView(ReportView):
    """GET reports/erasures/<id>/certificate: whoever may erase (enroll scope) or an officer."""

    required_action = ApiKey.Action.ENROLL

    @extend_schema(responses={200: OpenApiResponse(description="application/pdf")})
    def get(self, request: Request, pk: int) -> HttpResponse:
        erasure = self.scoped(ErasureRequest.objects.select_related("owner__organization"), "owner__organization_id", pk)
        content = reports.issue_erasure_certificate(erasure, actor=request.principal.actor)
        return file_response(content, reports.PDF, f"erasure-{erasure.pk}-certificate.pdf")
