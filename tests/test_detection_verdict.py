"""The detect verdict: watermark first, then the classifier's opinion, plus whose voice the clip sounds like."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from detection.models import Detection
from detection.verdict import combine
from governance import erasure, protected_voices
from governance.models import VoiceProfile
from tests.enrollment_helpers import audio_bytes, client_for, draft_profile, post_sample
from tests.factories import make_key

pytestmark = pytest.mark.django_db


def _detect(api, organization, name):
    _, secret = make_key(organization, actions=["detect"])
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret}")
    response = api.post("/api/v1/detect", {"file": SimpleUploadedFile(name.split("/")[-1], audio_bytes(name))}, format="multipart")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def active_voice(api, eager_jobs):
    profile = draft_profile()
    post_sample(client_for(api, profile), profile, "enrollment/sample1.flac", eager_jobs)
    VoiceProfile.objects.filter(pk=profile.pk).update(status=VoiceProfile.Status.ACTIVE)
    profile.refresh_from_db()
    return profile


def test_clip_in_an_enrolled_voice_names_that_profile_with_its_score(api, active_voice):
    result = _detect(api, active_voice.owner.organization, "enrollment/sample2.flac")
    best = result["voice_matches"]["matches"][0]
    assert (best["kind"], best["id"]) == ("voice_profile", active_voice.pk)
    assert best["above_threshold"] and best["score"] >= result["voice_matches"]["threshold"]
    assert any("sounds like voice profile" in reason for reason in result["reasons"])


def test_clip_matching_a_protected_voice_names_it(api):
    profile = draft_profile()
    protected_voices.register(profile.owner.organization, label="Chief Executive",
                              samples=[(audio_bytes("enrollment/sample1.flac"), "s.flac")], applies_to_all_organizations=False, actor="test")
    result = _detect(api, profile.owner.organization, "enrollment/sample2.flac")
    assert result["voice_matches"]["matches"][0]["name"] == "Chief Executive"


def test_other_organizations_voices_are_never_offered(api, active_voice):
    stranger = draft_profile()
    result = _detect(api, stranger.owner.organization, "enrollment/sample2.flac")
    assert all(m["id"] != active_voice.pk for m in result["voice_matches"]["matches"])


def test_erased_owners_never_appear(api, active_voice):
    erasure.erase(active_voice.owner, actor="test")
    result = _detect(api, active_voice.owner.organization, "enrollment/sample2.flac")
    assert result["voice_matches"]["matches"] == []


def test_the_verdict_and_its_reasons_are_stored(api, active_voice):
    result = _detect(api, active_voice.owner.organization, "librispeech/1998-15444-0006.flac")
    detection = Detection.objects.get(pk=result["detection"])
    assert detection.verdict == result["verdict"] and detection.reasons == result["reasons"]
    assert result["watermark"]["marked"] is False


def test_watermark_is_primary_over_the_classifier():
    mark = {"marked": True, "record_id": 7, "key_id": "abc"}
    verdict = combine(mark, {"band": "real", "probability_synthetic": 0.01}, {"matches": []})
    assert verdict.label == "made_by_voicegate"


@pytest.mark.parametrize("band, label", [("synthetic", "likely_synthetic"), ("real", "no_sign_of_synthesis"), ("inconclusive", "inconclusive")])
def test_without_our_mark_the_classifier_band_decides(band, label):
    verdict = combine({"marked": False}, {"band": band, "probability_synthetic": 0.5}, {"matches": []})
    assert verdict.label == label


def test_unmarked_rule_based_tts_is_judged_likely_synthetic(api):
    organization = draft_profile().owner.organization
    result = _detect(api, organization, "enrollment/sample2.flac")
    assert result["classifier"]["band"] == "synthetic" and result["verdict"] == "likely_synthetic"


def test_real_speech_is_not_called_synthetic(api):
    organization = draft_profile().owner.organization
    result = _detect(api, organization, "librispeech/1688-142285-0007.flac")
    assert result["classifier"]["band"] != "synthetic" and result["verdict"] != "likely_synthetic"


def test_forensic_report_states_the_verdict_classifier_and_closest_voices(api, active_voice):
    import io

    from pypdf import PdfReader

    from detection import reports

    result = _detect(api, active_voice.owner.organization, "enrollment/sample2.flac")
    pdf = reports.issue_forensic_report(Detection.objects.get(pk=result["detection"]), actor="test")
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "likely synthetic" in text and "Probability synthetic" in text and active_voice.name in text
