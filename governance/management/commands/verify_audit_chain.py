from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from governance import audit


class Command(BaseCommand):
    help = "Verify the audit log's hash chain and HMACs; exit non-zero naming the first bad row."

    def handle(self, *args: Any, **options: Any) -> None:
        result = audit.verify_chain()
        if not result.ok:
            raise CommandError(
                f"audit chain BROKEN at sequence {result.first_bad_sequence}: {result.problem} "
                f"({result.rows_checked} rows before it verified)"
            )
        self.stdout.write(f"audit chain OK: {result.rows_checked} rows verified")
