from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from detection import services
from governance.models import Organization
from voicegate.audio.decode import AudioRejected


class Command(BaseCommand):
    help = "Check an audio file for our watermark and print the verdict and provenance as JSON (operator view)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        try:
            data = path.read_bytes()
        except OSError as error:
            raise CommandError(f"cannot read {path}: {error.strerror}") from None
        every_organization = frozenset(Organization.objects.values_list("pk", flat=True))
        try:
            result = services.check_clip(data, path.name, actor="cli:detect", organization_ids=every_organization)
        except AudioRejected as rejected:
            raise CommandError(f"{rejected.reason_code}: {rejected.message}") from None
        self.stdout.write(json.dumps(result, indent=2, default=str))
