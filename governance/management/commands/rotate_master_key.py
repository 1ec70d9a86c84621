from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from governance import keyring
from governance.errors import BiometricDataUnreadable


class Command(BaseCommand):
    help = (
        "Re-wrap every owner's data key under the current VOICEGATE_MASTER_KEY. Blobs are not touched. "
        "Put the old key in VOICEGATE_RETIRED_MASTER_KEYS for the run; remove it afterwards."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            count = keyring.rewrap_all()
        except BiometricDataUnreadable as error:
            raise CommandError(f"{error}; add the key that wrapped it to VOICEGATE_RETIRED_MASTER_KEYS") from None
        self.stdout.write(f"re-wrapped {count} data keys under master key {keyring.current_master_key_id()}")
