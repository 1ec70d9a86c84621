"""After enrollment the enabled engines fit the voice from the held audio; then the raw audio is released."""

import pytest

from governance.models import AuditEvent, BiometricBlob, EnrollmentSample
from synthesis.models import FittedVoice
from tests.enrollment_helpers import client_for, draft_profile, post_sample

pytestmark = pytest.mark.django_db


def test_enrollment_fits_the_fast_engine_then_deletes_the_sample_audio(api, eager_jobs, settings):
    settings.VOICEGATE_ENGINES = ["fast"]
    profile = draft_profile()
    assert post_sample(client_for(api, profile), profile, "enrollment/sample1.flac", eager_jobs).status_code == 202

    fitted = FittedVoice.objects.get(profile=profile, engine="fast")
    assert fitted.state is not None and fitted.state.kind == BiometricBlob.Kind.VOICE_STATE
    assert fitted.samples_used == 1 and fitted.fit_seconds > 0
    assert EnrollmentSample.objects.get().audio is None
    assert not BiometricBlob.objects.filter(kind=BiometricBlob.Kind.SAMPLE_AUDIO).exists()
    assert AuditEvent.objects.filter(action="synthesis.voice_fitted").exists()
