from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from detection import services
from governance.models import ApiKey
from governance.permissions import RequiresAction
from governance.views import read_upload


class DetectRequestSerializer(serializers.Serializer):
    file = serializers.FileField()


class DetectView(APIView):
    permission_classes = [RequiresAction]
    required_action = ApiKey.Action.DETECT
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request={"multipart/form-data": DetectRequestSerializer}, responses={200: OpenApiResponse(description="verdict")})
    def post(self, request: Request) -> Response:
        data = DetectRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        principal = request.principal
        result = services.check_clip(read_upload(upload), upload.name, actor=principal.actor, organization_ids=principal.organization_ids)
        return Response(result)
