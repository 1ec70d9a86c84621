from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from governance import apikeys
from governance.models import ApiKey, Organization, VoiceProfile


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class Command(BaseCommand):
    help = "Mint an API key and print it once. It cannot be shown again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--organization", required=True, help="organization slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--actions", required=True, type=_csv, help=f"comma-separated: {', '.join(ApiKey.Action.values)}")
        parser.add_argument("--purposes", default=[], type=_csv, help="comma-separated purposes the key may synthesize for")
        parser.add_argument("--profiles", default=[], type=_csv, help="comma-separated voice profile ids")
        parser.add_argument("--expires-in-days", type=int, default=None)
        parser.add_argument("--rate-limit-per-minute", type=int, default=None)
        parser.add_argument(
            "--audio-seconds-per-day", type=int, default=None, help="default: VOICEGATE_DEFAULT_AUDIO_SECONDS_PER_DAY"
        )
        parser.add_argument("--engines", default=[], type=_csv, help="comma-separated engines the key may use (default: all)")

    def handle(self, *args: Any, **options: Any) -> None:
        organization = Organization.objects.filter(slug=options["organization"]).first()
        if organization is None:
            raise CommandError(f"no organization with slug {options['organization']!r}")
        profiles = self._profiles(organization, options["profiles"])
        days = options["expires_in_days"]
        for option in ("expires_in_days", "rate_limit_per_minute", "audio_seconds_per_day"):
            if options[option] is not None and options[option] <= 0:
                raise CommandError(f"--{option.replace('_', '-')} must be positive")
        try:
            key, secret = apikeys.create_key(
                organization,
                name=options["name"],
                actions=options["actions"],
                purposes=options["purposes"],
                profiles=profiles,
                expires_at=timezone.now() + timedelta(days=days) if days else None,
                rate_limit_per_minute=options["rate_limit_per_minute"],
                audio_seconds_per_day=options["audio_seconds_per_day"],
                allowed_engines=options["engines"],
                actor="cli:createapikey",
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"Created key {key.prefix} ({key.name}). Store it now; it will not be shown again:")
        self.stdout.write(secret)

    def _profiles(self, organization: Organization, ids: list[str]) -> list[VoiceProfile]:
        if not all(i.isdigit() for i in ids):
            raise CommandError("--profiles takes numeric ids")
        found = list(VoiceProfile.objects.filter(pk__in=ids, owner__organization=organization))
        missing = sorted(set(map(int, ids)) - {p.pk for p in found})
        if missing:
            raise CommandError(f"profiles not found in {organization.slug}: {missing}")
        return found
