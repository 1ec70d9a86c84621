from __future__ import annotations

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from governance import officers


class Command(BaseCommand):
    help = (
        "Create the first officer account if there is no superuser. Credentials come from "
        "VOICEGATE_ADMIN_USERNAME / VOICEGATE_ADMIN_PASSWORD, or are generated and printed once."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        officers.ensure_officer_group()
        users = get_user_model().objects
        if users.filter(is_superuser=True).exists():
            self.stdout.write("An officer account exists; log in with it.")
            return
        username = os.environ.get("VOICEGATE_ADMIN_USERNAME") or "officer"
        password = os.environ.get("VOICEGATE_ADMIN_PASSWORD")
        generated = not password
        password = password or secrets.token_urlsafe(18)
        users.create_superuser(username=username, email="", password=password)
        if generated:
            self.stdout.write(f"Created the first officer account. Username: {username}  Password: {password}")
        else:
            self.stdout.write(f"Created the first officer account {username!r} from VOICEGATE_ADMIN_*.")
