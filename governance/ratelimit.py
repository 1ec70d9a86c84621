"""Per-key fixed-window rate limits in Django's cache (shared across nodes when CACHE_URL is Redis)."""

from __future__ import annotations

import time

from django.core.cache import cache

WINDOW_SECONDS = 60


def take(key_id: int, limit_per_minute: int, *, now: float | None = None) -> int:
    """Spend one unit of the key's budget. Returns 0 if within the limit, else seconds until the next window."""
    moment = time.time() if now is None else now
    window = int(moment // WINDOW_SECONDS)
    counter = f"ratelimit:apikey:{key_id}:{window}"
    cache.add(counter, 0, timeout=WINDOW_SECONDS * 2)
    try:
        used = cache.incr(counter)
    except ValueError:  # evicted between add and incr: start the window again
        cache.set(counter, 1, timeout=WINDOW_SECONDS * 2)
        used = 1
    if used <= limit_per_minute:
        return 0
    return max(1, int((window + 1) * WINDOW_SECONDS - moment) + 1)
