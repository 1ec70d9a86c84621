"""The synthesis gateway: only authorized requests get audio, every route's audio carries the watermark,
and every clip traces back to its record."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from asgiref.sync import async_to_sync
import pytest
import soundfile as sf
from django.core.management import CommandError, call_command

from governance import apikeys, biometrics
from governance.models import AuditEvent, BiometricBlob
from synthesis.models import FittedVoice, SynthesisRecord
from tests.audio_attacks import with_echo
from tests.enrollment_helpers import audio_bytes
from tests.factories import PURPOSE, authorized_setup, make_key
from voicegate.audio import watermark

# Committed data: the stream runs on a thread of its own, with its own database connection, as under ASGI.
pytestmark = pytest.mark.django_db(transaction=True)
# Long enough (about 8 s) for the watermark to decode reliably: clips under ~3.5 s are a known limit of the
# codec (docs/watermark.md), and these tests are about the gate and the routes, not that limit.
TEXT = (
    "Your appointment with Doctor Patel is confirmed for Tuesday morning. "
    "Please arrive ten minutes early and bring your insurance card. "
    "If you need to reschedule, call us back at any time."
)


@pytest.fixture
def fast_voice_state() -> bytes:
    """The fast engine's unfitted base voice: these tests are about the gate and the mark, not likeness
    (tests/test_engine_fast.py and bench/clone_quality.py cover fitting)."""
    return b""


@pytest.fixture
def ready(settings, fast_voice_state):
    settings.VOICEGATE_ENGINES = ["fast"]
    a = authorized_setup()
    blob = biometrics.store(a.owner, BiometricBlob.Kind.VOICE_STATE, fast_voice_state)
    FittedVoice.objects.create(profile=a.profile, engine="fast", state=blob, samples_used=2)
    return a


def _synthesize(api, a, **overrides):
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {a.secret}")
    body = {"profile": a.profile.pk, "text": TEXT, "purpose": PURPOSE, **overrides}
    return api.post("/api/v1/synthesize", body, format="json")


def _body(response) -> bytes:
    async def collect() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    return async_to_sync(collect)()


def _assert_traces_to_record(samples: np.ndarray, rate: int, record_id: int, settings) -> None:
    found = watermark.detect(samples.astype(np.float32), rate, settings.VOICEGATE_WATERMARK_KEY)
    assert found.payload == record_id


def test_authorized_request_streams_watermarked_wav_traced_to_its_record(api, ready, settings):
    response = _synthesize(api, ready)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "audio/wav"
    audio, rate = sf.read(io.BytesIO(_body(response)), dtype="float32")
    record = SynthesisRecord.objects.get(pk=int(response["X-Synthesis-Record"]))
    assert record.outcome == "completed" and record.duration_s > 1.0 and rate == int(response["X-Sample-Rate"])
    _assert_traces_to_record(audio, rate, record.pk, settings)


def test_pcm_route_is_watermarked_too_and_its_hash_is_recorded(api, ready, settings):
    import hashlib

    response = _synthesize(api, ready, format="pcm")
    pcm = _body(response)
    record = SynthesisRecord.objects.get(pk=int(response["X-Synthesis-Record"]))
    assert record.output_sha256 == hashlib.sha256(pcm).hexdigest()
    _assert_traces_to_record(np.frombuffer(pcm, "<i2") / 32768.0, int(response["X-Sample-Rate"]), record.pk, settings)


def test_cli_route_is_watermarked_and_goes_through_the_same_gate(ready, settings, tmp_path: Path):
    out = tmp_path / "clip.wav"
    call_command("synthesize", "--key", ready.secret, "--profile", str(ready.profile.pk), "--text", TEXT, "--purpose", PURPOSE, "--out", str(out))
    audio, rate = sf.read(out, dtype="float32")
    _assert_traces_to_record(audio, rate, SynthesisRecord.objects.get().pk, settings)
    apikeys.revoke(ready.key, actor="test", reason="rotated")
    with pytest.raises(CommandError, match="key_revoked"):
        call_command("synthesize", "--key", ready.secret, "--profile", str(ready.profile.pk), "--text", TEXT, "--purpose", PURPOSE, "--out", str(out))


def test_one_audit_trail_per_request_with_hashes_and_watermark_id(api, ready):
    response = _synthesize(api, ready)
    _body(response)
    completed = AuditEvent.objects.get(action="synthesis.completed")
    record_id = int(response["X-Synthesis-Record"])
    assert completed.data["watermark_id"] == record_id and len(completed.data["output_sha256"]) == 64
    assert completed.data["text_sha256"] == SynthesisRecord.objects.get(pk=record_id).text_sha256
    assert TEXT not in str(completed.data)
    assert AuditEvent.objects.filter(action="synthesis.decision", data__allowed=True).count() == 1


def test_revoked_key_is_403_with_the_reason(api, ready):
    apikeys.revoke(ready.key, actor="test", reason="leaked")
    response = _synthesize(api, ready)
    assert response.status_code == 403 and response.json()["error"]["code"] == "key_revoked"
    assert not SynthesisRecord.objects.exists()


def test_rate_limit_is_429_with_retry_after(api, settings, fast_voice_state):
    settings.VOICEGATE_ENGINES = ["fast"]
    a = authorized_setup(rate_limit_per_minute=1)
    FittedVoice.objects.create(profile=a.profile, engine="fast", state=biometrics.store(a.owner, BiometricBlob.Kind.VOICE_STATE, fast_voice_state))
    assert _synthesize(api, a).status_code == 200
    refused = _synthesize(api, a)
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"


def test_another_organizations_profile_is_404(api, ready):
    other = authorized_setup()
    response = _synthesize(api, ready, profile=other.profile.pk)
    assert response.status_code == 404


@pytest.mark.parametrize("text, reason", [("", "empty"), ("Привет, как дела?", "unsupported_script")])
def test_unspeakable_text_is_400_with_the_reason(api, ready, text, reason):
    response = _synthesize(api, ready, text=text)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "text_rejected" and reason in response.json()["error"]["details"]["reason"]


def test_text_over_the_limit_is_400(api, ready, settings):
    settings.VOICEGATE_MAX_TEXT_CHARS = 50
    response = _synthesize(api, ready, text="word " * 20)
    assert response.status_code == 400 and response.json()["error"]["code"] == "text_rejected"


def test_profile_without_a_fitted_voice_is_409(api, ready):
    FittedVoice.objects.all().delete()
    assert _synthesize(api, ready).status_code == 409


def test_officer_session_cannot_synthesize(api, ready):
    from tests.factories import officer_for

    api.force_authenticate(officer_for(ready.organization))
    response = api.post("/api/v1/synthesize", {"profile": ready.profile.pk, "text": TEXT, "purpose": PURPOSE}, format="json")
    assert response.status_code == 403


def test_detect_traces_our_clip_and_shows_provenance_to_its_organization(api, ready):
    wav = _body(_synthesize(api, ready))
    _, detect_secret = make_key(ready.organization, actions=["detect"])
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {detect_secret}")
    from django.core.files.uploadedfile import SimpleUploadedFile

    result = api.post("/api/v1/detect", {"file": SimpleUploadedFile("clip.wav", wav)}, format="multipart").json()
    record = SynthesisRecord.objects.get()
    assert result["watermark"]["marked"] and result["watermark"]["record_id"] == record.pk
    assert result["provenance"]["output_sha256"] == record.output_sha256
    assert result["provenance"]["key_prefix"] == ready.key.prefix
    event = AuditEvent.objects.get(action="detection.checked")
    assert len(event.data["file_sha256"]) == 64


def test_an_echoed_clip_still_traces_to_its_record_and_the_echo_is_named(api, ready):
    samples, rate = sf.read(io.BytesIO(_body(_synthesize(api, ready))), dtype="float32")
    echoed = io.BytesIO()
    sf.write(echoed, with_echo(samples, rate, 0.15, 0.35), rate, format="WAV", subtype="FLOAT")
    _, detect_secret = make_key(ready.organization, actions=["detect"])
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {detect_secret}")
    from django.core.files.uploadedfile import SimpleUploadedFile

    result = api.post("/api/v1/detect", {"file": SimpleUploadedFile("echo.wav", echoed.getvalue())}, format="multipart").json()
    assert result["watermark"]["record_id"] == SynthesisRecord.objects.get().pk
    assert result["watermark"]["echo"]["delay_s"] == pytest.approx(0.15, abs=1e-3)
    assert result["watermark"]["echo"]["gain"] == pytest.approx(0.35, abs=0.1)


def test_detect_hides_provenance_from_other_organizations(api, ready):
    wav = _body(_synthesize(api, ready))
    stranger = authorized_setup()
    _, detect_secret = make_key(stranger.organization, actions=["detect"])
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {detect_secret}")
    from django.core.files.uploadedfile import SimpleUploadedFile

    result = api.post("/api/v1/detect", {"file": SimpleUploadedFile("clip.wav", wav)}, format="multipart").json()
    assert result["watermark"]["marked"] and result["provenance"] is None


def test_real_speech_is_not_reported_as_marked(api):
    a = authorized_setup()
    _, detect_secret = make_key(a.organization, actions=["detect"])
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {detect_secret}")
    from django.core.files.uploadedfile import SimpleUploadedFile

    clip = SimpleUploadedFile("real.flac", audio_bytes("librispeech/1998-15444-0006.flac"))
    result = api.post("/api/v1/detect", {"file": clip}, format="multipart").json()
    assert result["watermark"]["marked"] is False and result["provenance"] is None


def test_rotated_watermark_key_still_verifies_old_clips_and_names_the_key(api, ready, settings):
    from voicegate import crypto

    wav = _body(_synthesize(api, ready))
    old_key = settings.VOICEGATE_WATERMARK_KEY
    settings.VOICEGATE_WATERMARK_KEY, settings.VOICEGATE_RETIRED_WATERMARK_KEYS = bytes(range(32)), [old_key]
    out = io.StringIO()
    path = Path(settings.MEDIA_ROOT).parent / "clip.wav"
    path.write_bytes(wav)
    call_command("detect", str(path), stdout=out)
    import json

    result = json.loads(out.getvalue())
    assert result["watermark"]["marked"] and result["watermark"]["key_id"] == crypto.key_id(old_key)
    assert result["watermark"]["time_scale"] == 1.0
    # the current key was tried first (scale 1.0 and the time-stretch search), then the old one once
    assert result["watermark"]["false_positive_bound"] == 3 * 2.0**-24
