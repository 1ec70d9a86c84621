"""Report endpoints, included under /api/v1/ by voicegate.urls."""

from django.urls import path

from detection.report_views import ForensicReportView
from governance.report_views import AuditReportView, ErasureCertificateView, OwnerDossierView

urlpatterns = [
    path("reports/audit", AuditReportView.as_view(), name="report-audit"),
    path("reports/owners/<int:pk>/dossier", OwnerDossierView.as_view(), name="report-owner-dossier"),
    path("reports/erasures/<int:pk>/certificate", ErasureCertificateView.as_view(), name="report-erasure-certificate"),
    path("reports/detections/<int:pk>/forensic", ForensicReportView.as_view(), name="report-forensic"),
]
