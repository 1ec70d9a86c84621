from django.urls import path

from detection.views import DetectView

urlpatterns = [path("detect", DetectView.as_view(), name="detect")]
