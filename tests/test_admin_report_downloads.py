"""Officers download dossiers and erasure certificates from the admin; each download is audited."""

import pytest
from django.urls import reverse

from governance import erasure
from governance.models import AuditEvent
from tests.factories import VoiceOwnerFactory, compliance_officer_for

pytestmark = pytest.mark.django_db


def _action(client, model_name, action, pk):
    url = reverse(f"admin:governance_{model_name}_changelist")
    return client.post(url, {"action": action, "_selected_action": [pk]})


def test_officer_downloads_an_owners_dossier(client):
    owner = VoiceOwnerFactory()
    client.force_login(compliance_officer_for(owner.organization))
    response = _action(client, "voiceowner", "download_dossier", owner.pk)
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert AuditEvent.objects.filter(action="report.generated", data__kind="owner_dossier").exists()


def test_officer_downloads_an_erasure_certificate(client):
    owner = VoiceOwnerFactory()
    request = erasure.erase(owner, actor="test")
    client.force_login(compliance_officer_for(owner.organization))
    response = _action(client, "erasurerequest", "download_certificate", request.pk)
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
