"""voicegate/audio is the framework-free core: it must import without Django or Celery."""

import subprocess
import sys

MODULES = ["decode", "quality", "embedding", "asr", "statement", "watermark"]


def test_audio_core_imports_without_django_or_celery():
    code = (
        "import sys\n"
        + "".join(f"import voicegate.audio.{m}\n" for m in MODULES)
        + "print(sorted(m for m in ('django', 'celery', 'rest_framework') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
