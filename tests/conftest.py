from __future__ import annotations

from pathlib import Path

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from voicegate.audio.embedding import _cache as voiceprint_cache

from tests.celery_worker import celery_worker_process, celery_workers  # noqa: F401  (fixtures)


_DATABASE_FIXTURES = {"db", "transactional_db", "django_db_setup"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database-tests-only", action="store_true",
        help="run only the tests that open the database (CI's PostgreSQL run: the rest cannot differ by database)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--database-tests-only"):
        return
    uses_database = [i for i in items if i.get_closest_marker("django_db") or _DATABASE_FIXTURES & set(i.fixturenames)]
    config.hook.pytest_deselected(items=[i for i in items if i not in uses_database])
    items[:] = uses_database


@pytest.fixture(autouse=True)
def _isolated_storage_and_cache(settings: object, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.VOICEGATE_ENGINES = []  # voice fitting takes seconds; synthesis tests switch engines on
    cache.clear()
    voiceprint_cache.clear()


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def eager_jobs(settings: object, django_capture_on_commit_callbacks: object):  # type: ignore[no-untyped-def]
    """Jobs run in-process when their transaction commits (the real-worker path has its own tests)."""
    from voicegate.celery import app

    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield django_capture_on_commit_callbacks
    app.conf.task_always_eager = app.conf.task_eager_propagates = False
