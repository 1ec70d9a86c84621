from __future__ import annotations

from rest_framework import serializers

from governance.serializers import purpose_field


class SynthesizeRequestSerializer(serializers.Serializer):
    profile = serializers.IntegerField(min_value=1)
    text = serializers.CharField(trim_whitespace=False, allow_blank=True)
    purpose = purpose_field()
    engine = serializers.CharField(max_length=32, required=False)
    format = serializers.ChoiceField(choices=["wav", "pcm"], default="wav")
