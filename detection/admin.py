"""Officers see the checks submitted for their organizations and download each one's forensic report."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from detection import reports
from detection.models import Detection
from governance.admin import OrganizationScopedAdmin, admin_actor, single_pdf_download


@admin.register(Detection)
class DetectionAdmin(OrganizationScopedAdmin):
    organization_path = "organization"
    fields = ("file_sha256", "file_bytes", "duration_s", "verdict", "reasons", "watermark", "classifier",
              "voice_matches", "synthesis_record", "submitted_by", "created_at")
    list_display = ("pk", "verdict", "file_sha256", "duration_s", "submitted_by", "created_at")
    list_filter = ("verdict",)
    actions = ("download_forensic_report",)

    @admin.action(description="Download the forensic report (PDF)")
    def download_forensic_report(self, request: HttpRequest, queryset: QuerySet[Detection]) -> HttpResponse | None:
        return single_pdf_download(self, request, queryset, lambda d: reports.issue_forensic_report(d, actor=admin_actor(request)), "detection-{pk}-forensic.pdf")
