"""Officers download the audit report and forensic reports from the admin, for their organizations only."""

import io

import pytest
from django.urls import reverse
from pypdf import PdfReader

from detection.models import Detection
from tests.factories import OrganizationFactory, compliance_officer_for

pytestmark = pytest.mark.django_db


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_officer_downloads_the_audit_report_of_their_organization(client):
    organization = OrganizationFactory(name="Northwind Bank")
    client.force_login(compliance_officer_for(organization))
    url = reverse("admin:governance_auditevent_report")
    response = client.get(url, {"organization": organization.pk, "start": "2026-01-01", "end": "2026-12-31"})
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert "Northwind Bank" in _text(response.content)


def test_another_organization_cannot_be_chosen(client):
    mine, theirs = OrganizationFactory(), OrganizationFactory()
    client.force_login(compliance_officer_for(mine))
    response = client.get(reverse("admin:governance_auditevent_report"), {"organization": theirs.pk, "start": "2026-01-01", "end": "2026-12-31"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")  # the form again, with the error


def test_officer_downloads_a_forensic_report_from_the_detection_admin(client):
    organization = OrganizationFactory()
    detection = Detection.objects.create(
        organization=organization, submitted_by="test", file_sha256="ab" * 32, file_bytes=10, duration_s=3.0,
        watermark={"marked": False, "record_id": None, "key_id": None, "confidence_z": 0.5, "marked_fraction": 0.0,
                   "segments": [], "false_positive_bound": 6e-8},
        verdict="inconclusive", reasons=["test"],
    )
    client.force_login(compliance_officer_for(organization))
    url = reverse("admin:detection_detection_changelist")
    response = client.post(url, {"action": "download_forensic_report", "_selected_action": [detection.pk]})
    assert response.status_code == 200 and "ab" * 32 in _text(response.content).replace("\n", "")
