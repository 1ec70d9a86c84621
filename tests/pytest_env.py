"""Test-run environment, set before Django reads its settings: a private data dir, never the developer's."""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("VOICEGATE_DATA_DIR", str(Path(tempfile.gettempdir()) / f"voicegate-test-{os.getuid()}"))
os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
