from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from voicegate import api_errors

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include("governance.urls")),
    path("api/v1/", include("synthesis.urls")),
    path("api/v1/", include("detection.urls")),
    path("api/v1/", include("voicegate.report_urls")),
]

handler404 = api_errors.not_found
handler500 = api_errors.server_error
handler400 = api_errors.bad_request
