"""A real Celery worker process for tests that need one: the `celery_worker_process` fixture.

The worker is `celery worker --pool=solo` for the project's app, started as a subprocess against the
configured broker, and it sees what the test sees:

- the test database (tests using the fixture get `transactional_db`, so what they create is committed):
  DATABASE_URL points at the database pytest-django created (the SQLite file or test_<name> on PostgreSQL);
- the same VOICEGATE_DATA_DIR, MEDIA_ROOT and keys as the test process (keys are passed explicitly, so a
  test that overrides one in settings still shares it with the worker);
- e-mail goes to Django's file backend in a per-test folder, read back with `worker.mails()`;
- the broker: kombu's filesystem transport gets per-test folders (queue, processed, control) in both
  processes; a Redis broker (CELERY_BROKER_URL=redis://...) has its database flushed before the worker starts.

The fixture returns when the worker has logged that it is ready, and stops it at teardown (before
pytest-django flushes the database). It takes every queue; `celery_workers.start(queues)` starts more
workers, each on the queues given (tests/test_scale_out.py). Mark tests that use them `@pytest.mark.celery_worker`.
"""

from __future__ import annotations

import email
import email.policy
import importlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

START_TIMEOUT_S = float(os.environ.get("VOICEGATE_TEST_WORKER_START_TIMEOUT", "90"))
STOP_TIMEOUT_S = 20.0
DEFAULT_WAIT_S = 60.0
_BROKER_OPTIONS_ENV = "VOICEGATE_TEST_BROKER_TRANSPORT_OPTIONS"

# The worker's entry point: `celery worker` for voicegate's app, as `celery -A voicegate worker` runs it,
# with two test-only additions. The settings derive the filesystem transport's folders from
# VOICEGATE_DATA_DIR with no variable of their own, so the per-test folders arrive as JSON in an
# environment variable. And the worker stops itself if pytest dies without tearing it down.
_WORKER_MAIN = f"""\
import json, os, signal, sys, threading, time
from voicegate.celery import app
options = os.environ.get({_BROKER_OPTIONS_ENV!r})
if options:
    app.conf.broker_transport_options = json.loads(options)
parent = os.getppid()
def _stop_when_orphaned():
    while os.getppid() == parent:
        time.sleep(1)
    os.kill(os.getpid(), signal.SIGTERM)
threading.Thread(target=_stop_when_orphaned, daemon=True).start()
app.worker_main(["worker", *sys.argv[1:]])
"""

_READY = re.compile(r"@\S+ ready\.")


@dataclass
class CeleryWorkerProcess:
    """A running worker: its process, log, mail folder, and helpers to wait for what it does."""

    process: subprocess.Popen[bytes]
    log_path: Path
    mail_dir: Path
    broker_url: str
    database_url: str

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def describe(self, tail_lines: int = 80) -> str:
        lines = self.log().splitlines()[-tail_lines:]
        state = "running" if self.process.poll() is None else f"exited with status {self.process.returncode}"
        return f"worker pid {self.process.pid} ({state}), log {self.log_path}, last {len(lines)} lines:\n" + "\n".join(lines)

    def wait_until(self, condition: Callable[[], Any], what: str, timeout: float = DEFAULT_WAIT_S, interval: float = 0.2) -> Any:
        """Poll `condition` until it returns something truthy; fail with the worker's log if it never does."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if self.process.poll() is not None:
                pytest.fail(f"the Celery worker stopped while waiting for {what}\n{self.describe()}", pytrace=False)
            if time.monotonic() >= deadline:
                pytest.fail(f"timed out after {timeout:g}s waiting for {what}\n{self.describe()}", pytrace=False)
            time.sleep(interval)

    def wait_for_task(self, result: Any, timeout: float = DEFAULT_WAIT_S) -> str:
        """Wait until the worker logs that the task (an AsyncResult or id) succeeded; fail if it failed.

        Results are not stored (CELERY_TASK_IGNORE_RESULT), so the worker's log is the one place that
        says a run is over: use this before asserting that a run changed nothing.
        """
        task_id = getattr(result, "id", result)
        marker = f"[{task_id}] "

        def finished() -> str | None:
            for line in self.log().splitlines():
                if marker not in line:
                    continue
                outcome = line.split(marker, 1)[1]
                if outcome.startswith("succeeded in"):
                    return line
                if not outcome.startswith(("received", "retry:")):
                    pytest.fail(f"task {task_id} did not succeed: {line}\n{self.describe()}", pytrace=False)
            return None

        return self.wait_until(finished, f"task {task_id} to succeed", timeout)

    def mails(self) -> list[EmailMessage]:
        """Every message the worker sent, parsed, oldest file first."""
        separator = b"\n" + b"-" * 79 + b"\n"
        messages = []
        for path in sorted(self.mail_dir.glob("*.log"), key=lambda p: (p.stat().st_mtime_ns, p.name)):
            for chunk in path.read_bytes().split(separator):
                if chunk.strip():
                    messages.append(email.message_from_bytes(chunk.lstrip(b"\n"), policy=email.policy.default))
        return messages


def database_url_for(connection: Any) -> str:
    """A DATABASE_URL naming the database this connection uses now (after test-database setup)."""
    config = connection.settings_dict
    if connection.vendor == "sqlite":
        if connection.is_in_memory_db():
            pytest.fail("the test database is in memory: a worker process cannot share it; give it a file name (DATABASES TEST NAME)", pytrace=False)
        return f"sqlite:///{Path(config['NAME']).resolve()}"
    if connection.vendor == "postgresql":
        user, password = config.get("USER") or "", config.get("PASSWORD") or ""
        auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "") + "@" if user else ""
        host = config.get("HOST") or ""
        host = quote(host, safe="") if host.startswith("/") else (f"[{host}]" if ":" in host else host)
        port = f":{config['PORT']}" if config.get("PORT") else ""
        return f"postgres://{auth}{host}{port}/{quote(config['NAME'], safe='')}"
    pytest.fail(f"no worker DATABASE_URL for a {connection.vendor} database", pytrace=False)


def _restore_migration_data() -> None:
    """Re-create the rows a data migration made: a transactional test's flush deleted them.

    TransactionTestCase flushes every table after each test and only post_migrate handlers repopulate;
    the audit chain head comes from migration 0002, so the second transactional test would find none.
    """
    from django.apps import apps

    importlib.import_module("governance.migrations.0002_audit_chain_head").create_head(apps, None)


def _forget_broker_connections(app: Any) -> None:
    """Drop the test process's pooled broker connections so the next publish uses the current conf.

    The same reset Celery does after a fork (Celery._after_fork), without its signal.
    """
    from kombu import pools

    pools.reset()
    app._pool = None
    if "amqp" in app.__dict__:
        app.__dict__["amqp"]._producer_pool = None


def _prepare_broker(app: Any, settings: Any, broker_dir: Path) -> dict[str, Any] | None:
    """Give the test its own, empty broker. Returns the filesystem transport's options, if that is the broker."""
    url = settings.CELERY_BROKER_URL
    scheme = url.split("://", 1)[0].lower()
    if scheme == "filesystem":
        folders = {name: broker_dir / name for name in ("queue", "processed", "control")}
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        return {
            **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            "data_folder_in": str(folders["queue"]),
            "data_folder_out": str(folders["queue"]),
            "processed_folder": str(folders["processed"]),
            "control_folder": str(folders["control"]),
            "polling_interval": 0.1,  # kombu's default (1 s) would add a second to every wait
        }
    if scheme in {"redis", "rediss"}:
        import redis

        client, problem = redis.Redis.from_url(url), ""
        try:
            client.flushdb()
        except redis.exceptions.RedisError as error:
            problem = str(error)
        finally:
            client.close()
        if problem:
            pytest.fail(f"cannot empty the broker CELERY_BROKER_URL={url}: {problem}", pytrace=False)
        return None
    if scheme == "memory":
        pytest.fail("CELERY_BROKER_URL=memory:// lives inside one process: a worker process cannot use it", pytrace=False)
    app.control.purge()
    return None


def _worker_environment(settings: Any, *, database_url: str, mail_dir: Path, broker_options: dict[str, Any] | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE=os.environ.get("DJANGO_SETTINGS_MODULE", "voicegate.settings"),
        VOICEGATE_DATA_DIR=str(settings.DATA_DIR),
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        EMAIL_FILE_PATH=str(mail_dir),
        VOICEGATE_CONSENT_REMINDER_DAYS=str(settings.VOICEGATE_CONSENT_REMINDER_DAYS),
        VOICEGATE_ENGINES=",".join(settings.VOICEGATE_ENGINES) or "none",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(settings.BASE_DIR), os.environ.get("PYTHONPATH", "")])),
    )
    # The keys the test process uses, whatever their source: the worker must write an audit chain the
    # test can verify and read data the test encrypted.
    for name in ("VOICEGATE_MASTER_KEY", "VOICEGATE_AUDIT_KEY", "VOICEGATE_API_KEY_PEPPER", "VOICEGATE_WATERMARK_KEY"):
        env.pop(f"{name}_FILE", None)
        env[name] = getattr(settings, name).hex()
    env.pop("VOICEGATE_RETIRED_MASTER_KEYS_FILE", None)
    env["VOICEGATE_RETIRED_MASTER_KEYS"] = ",".join(key.hex() for key in settings.VOICEGATE_RETIRED_MASTER_KEYS)
    env.pop("SECRET_KEY_FILE", None)
    env["SECRET_KEY"] = settings.SECRET_KEY
    env.pop(_BROKER_OPTIONS_ENV, None)
    if broker_options is not None:
        env[_BROKER_OPTIONS_ENV] = json.dumps(broker_options)
    return env


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # warm shutdown: finishes the running task
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)


class CeleryWorkers:
    """Starts worker processes for one test: each on the queues it is given (all of them by default), all
    on the test's broker and database; stop() ends them all."""

    def __init__(self, settings: Any, root: Path, broker_options: dict[str, Any] | None, database_url: str) -> None:
        self._settings, self._root, self._database_url = settings, root, database_url
        self._broker_options = broker_options
        self.started: list[CeleryWorkerProcess] = []

    def start(self, queues: Sequence[str] | None = None) -> CeleryWorkerProcess:
        from voicegate.celery import app

        name = f"worker{len(self.started) + 1}"
        mail_dir, work_dir = self._root / name / "mail", self._root / name / "cwd"
        mail_dir.mkdir(parents=True)
        work_dir.mkdir()
        queue_names = ",".join(queues or [queue.name for queue in app.conf.task_queues])
        command = [
            sys.executable, "-c", _WORKER_MAIN,
            "--pool=solo", "--concurrency=1", f"--queues={queue_names}", "--loglevel=INFO",
            "--without-gossip", "--without-mingle", "--without-heartbeat", f"--hostname=voicegate-test-{uuid.uuid4().hex[:8]}@%h",
        ]
        log_path = self._root / name / "worker.log"
        env = _worker_environment(self._settings, database_url=self._database_url, mail_dir=mail_dir, broker_options=self._broker_options)
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(command, cwd=work_dir, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT)
        worker = CeleryWorkerProcess(process, log_path, mail_dir, self._settings.CELERY_BROKER_URL, self._database_url)
        self.started.append(worker)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _READY.search(worker.log()):
            if process.poll() is not None:
                pytest.fail(f"the Celery worker exited before it was ready\n{worker.describe()}", pytrace=False)
            if time.monotonic() >= deadline:
                pytest.fail(f"the Celery worker was not ready within {START_TIMEOUT_S:g}s\n{worker.describe()}", pytrace=False)
            time.sleep(0.1)
        return worker

    def stop(self) -> None:
        for worker in self.started:
            _stop(worker.process)
            # Shown by pytest with a failing test's captured output.
            print(f"--- Celery worker log ({worker.log_path}) ---\n{worker.log()}")


@pytest.fixture
def celery_workers(transactional_db: None, settings: Any, tmp_path: Path) -> Iterator[CeleryWorkers]:
    """Real `celery worker` subprocesses on the configured broker, sharing this test's database."""
    from django.db import connection

    from voicegate.celery import app

    _restore_migration_data()
    root = tmp_path / "celery-worker"
    broker_options = _prepare_broker(app, settings, root / "broker")
    previous_options = app.conf.broker_transport_options
    if broker_options is not None:
        settings.CELERY_BROKER_TRANSPORT_OPTIONS = broker_options
        app.conf.broker_transport_options = broker_options
    _forget_broker_connections(app)
    workers = CeleryWorkers(settings, root, broker_options, database_url_for(connection))
    try:
        yield workers
    finally:
        workers.stop()
        app.conf.broker_transport_options = previous_options
        if settings.CELERY_BROKER_URL.split("://", 1)[0].lower() in {"redis", "rediss"}:
            _prepare_broker(app, settings, root / "broker")  # leave no messages behind for the next run
        _forget_broker_connections(app)


@pytest.fixture
def celery_worker_process(celery_workers: CeleryWorkers) -> CeleryWorkerProcess:
    """One real worker taking every queue, as `make run` starts it."""
    return celery_workers.start()
