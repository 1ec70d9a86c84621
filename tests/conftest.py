from __future__ import annotations

from pathlib import Path

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from tests.celery_worker import celery_worker_process  # noqa: F401  (fixture)


@pytest.fixture(autouse=True)
def _isolated_storage_and_cache(settings: object, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    cache.clear()


@pytest.fixture
def api() -> APIClient:
    return APIClient()
