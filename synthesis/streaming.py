"""Turning a SynthesisStream into HTTP bytes: a streaming WAV header or raw PCM, served asynchronously."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor

from django.db import connections

_STREAMING_SIZE = 0xFFFFFFFF  # "unknown length": players read a streamed WAV to its end
_DONE = object()


def wav_header(sample_rate: int) -> bytes:
    byte_rate, block_align = sample_rate * 2, 2
    return (
        b"RIFF" + struct.pack("<I", _STREAMING_SIZE) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, byte_rate, block_align, 16)
        + b"data" + struct.pack("<I", _STREAMING_SIZE)
    )


def with_header(header: bytes, chunks: Iterator[bytes]) -> Iterator[bytes]:
    yield header
    yield from chunks


async def as_async(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Run the stream on a thread of its own: engines stay off the event loop, streams run side by side,
    and the generator's database work (closing the synthesis record) happens on one thread whose
    connections are closed at the end, also when the client goes away mid-stream."""
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="synthesis-stream")
    loop = asyncio.get_running_loop()
    try:
        while (chunk := await loop.run_in_executor(executor, next, chunks, _DONE)) is not _DONE:
            yield chunk  # type: ignore[misc]
    finally:
        await loop.run_in_executor(executor, _finish, chunks)
        executor.shutdown(wait=False)


def _finish(chunks: Iterator[bytes]) -> None:
    close = getattr(chunks, "close", None)
    if close is not None:
        close()
    connections.close_all()
