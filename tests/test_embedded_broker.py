"""The embedded broker (kombu's filesystem transport as `make run` uses it) never hands out a half-written message."""

from __future__ import annotations

import threading
from pathlib import Path
from queue import Empty

from django.conf import settings
from kombu import Connection
from kombu.transport import filesystem

from voicegate import broker

MESSAGES = 400


def _options(tmp_path: Path) -> dict[str, str]:
    for name in ("queue", "processed"):
        (tmp_path / name).mkdir()
    return {"data_folder_in": str(tmp_path / "queue"), "data_folder_out": str(tmp_path / "queue"),
            "processed_folder": str(tmp_path / "processed"), "store_processed": False}


def _race(transport: type, options: dict[str, str]) -> tuple[list[int], list[BaseException]]:
    """Put MESSAGES messages while another connection takes them as fast as it can; what it got, how it failed."""
    received: list[int] = []
    failures: list[BaseException] = []
    done = threading.Event()

    def consume() -> None:
        with Connection("filesystem://", transport=transport, transport_options=options) as conn:
            channel = conn.default_channel
            while len(received) < MESSAGES and not (done.is_set() and channel._size("jobs") == 0):
                try:
                    received.append(channel._get("jobs")["n"])
                except Empty:
                    continue
                except Exception as exc:  # what kills a worker: recorded, and the race ends
                    failures.append(exc)
                    return

    reader = threading.Thread(target=consume)
    reader.start()
    with Connection("filesystem://", transport=transport, transport_options=options) as conn:
        for n in range(MESSAGES):
            conn.default_channel._put("jobs", {"n": n, "body": "x" * 20000})
    done.set()
    reader.join(timeout=60)
    return received, failures


def test_a_message_is_received_whole_while_it_is_being_written(tmp_path: Path) -> None:
    received, failures = _race(broker.Transport, _options(tmp_path))
    assert failures == []
    assert sorted(received) == list(range(MESSAGES))


def test_the_service_uses_the_atomic_transport_for_its_embedded_broker() -> None:
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        assert settings.CELERY_BROKER_TRANSPORT == "voicegate.broker:Transport"
    assert issubclass(broker.Transport, filesystem.Transport)
