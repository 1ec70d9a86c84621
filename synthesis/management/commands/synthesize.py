from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance import apikeys
from governance.errors import GovernanceError
from governance.models import VoiceProfile
from synthesis import gateway


class Command(BaseCommand):
    help = "Synthesize text in a profile's voice to a WAV file, through the same gate and watermark as the API."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--key", required=True, help="an API key with the synthesize scope")
        parser.add_argument("--profile", required=True, type=int)
        parser.add_argument("--text", required=True)
        parser.add_argument("--purpose", required=True)
        parser.add_argument("--engine", default=None)
        parser.add_argument("--out", required=True, type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        key = apikeys.authenticate(options["key"])
        if key is None:
            raise CommandError("unknown API key")
        profile = VoiceProfile.objects.select_related("owner").filter(pk=options["profile"], owner__organization_id=key.organization_id).first()
        if profile is None:
            raise CommandError(f"no voice profile {options['profile']} in the key's organization")
        try:
            stream = gateway.start(key, profile, options["text"], options["purpose"], options["engine"])
        except GovernanceError as error:
            raise CommandError(f"{error.code}: {error.message}") from None
        pcm = b"".join(stream.pcm16)
        # Write to a temporary name first: a half-written file must never look like a finished one.
        partial = options["out"].with_suffix(options["out"].suffix + ".partial")
        sf.write(partial, np.frombuffer(pcm, dtype="<i2"), stream.sample_rate, subtype="PCM_16", format="WAV")
        partial.replace(options["out"])
        self.stdout.write(f"wrote {options['out']} ({len(pcm) // 2 / stream.sample_rate:.2f} s), synthesis record {stream.record.pk}")
