from django.urls import path

from synthesis.views import SynthesizeView

urlpatterns = [path("synthesize", SynthesizeView.as_view(), name="synthesize")]
