"""One error shape for the whole API: {"error": {"code": ..., "message": ..., "details"?: ...}}.

Every failure under /api/ passes through here: DRF exceptions, governance domain errors, Django's own
404/400/500 handlers, and oversize bodies.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from governance import challenges, enrollment, errors, reports
from governance.policy import Reason
from synthesis.errors import SynthesisRefused, TextNotSpeakable, UnknownEngine, VoiceNotReady
from voicegate.audio.decode import AudioRejected

logger = logging.getLogger(__name__)

_DOMAIN_STATUS: dict[type[errors.GovernanceError], int] = {
    errors.InvalidTransition: status.HTTP_409_CONFLICT,
    errors.OwnerErased: status.HTTP_410_GONE,
    errors.BiometricDataUnreadable: status.HTTP_410_GONE,
    errors.AuditChainBroken: status.HTTP_409_CONFLICT,
    enrollment.SampleRejected: status.HTTP_422_UNPROCESSABLE_ENTITY,
    enrollment.ProfileNotEnrollable: status.HTTP_409_CONFLICT,
    challenges.ChallengeExpired: status.HTTP_410_GONE,
    TextNotSpeakable: status.HTTP_400_BAD_REQUEST,
    UnknownEngine: status.HTTP_400_BAD_REQUEST,
    VoiceNotReady: status.HTTP_409_CONFLICT,
    reports.CertificateNotIssued: status.HTTP_409_CONFLICT,
}


# Refusals that lift by themselves with time: 429 and Retry-After. Every other refusal is 403.
_TOO_MANY_REQUESTS = frozenset({Reason.RATE_LIMIT_EXCEEDED, Reason.AUDIO_QUOTA_EXCEEDED})


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return {"error": body}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, SynthesisRefused):
        return _refusal(exc)
    if isinstance(exc, errors.GovernanceError):
        return Response(error_body(exc.code, exc.message, exc.details), status=_domain_status(exc))
    if isinstance(exc, AudioRejected):
        too_large = exc.reason_code == "too_large"
        return Response(
            error_body("audio_rejected", exc.message, {"reason": exc.reason_code}),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE if too_large else status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body("payload_too_large", str(exc)), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, SuspiciousOperation):
        return Response(error_body("bad_request", str(exc)), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, (Http404, PermissionDenied)):
        exc = exceptions.NotFound() if isinstance(exc, Http404) else exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    response.data = _shape(exc, response.data)
    return response


def _refusal(exc: SynthesisRefused) -> Response:
    retry_after = exc.decision.retry_after_seconds
    too_many = exc.decision.reason in _TOO_MANY_REQUESTS
    response = Response(
        error_body(exc.code, exc.message),
        status=status.HTTP_429_TOO_MANY_REQUESTS if too_many else status.HTTP_403_FORBIDDEN,
    )
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


def _domain_status(exc: errors.GovernanceError) -> int:
    for cls in type(exc).__mro__:
        if cls in _DOMAIN_STATUS:
            return _DOMAIN_STATUS[cls]
    return status.HTTP_400_BAD_REQUEST


def _shape(exc: Exception, data: Any) -> dict[str, Any]:
    if isinstance(exc, exceptions.ValidationError):
        return error_body("invalid", "The request has invalid fields.", data)
    code = exc.default_code if isinstance(exc, exceptions.APIException) else "error"
    detail = data.get("detail", data) if isinstance(data, dict) else data
    codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else None
    if isinstance(codes, str):
        code = codes
    return error_body(code, str(detail))


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body("not_found", "No such resource."), status=404)
    return defaults.page_not_found(request, exception)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body("bad_request", "The request could not be read."), status=400)
    return defaults.bad_request(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body("server_error", "Internal error; it has been logged."), status=500)
    return defaults.server_error(request)
