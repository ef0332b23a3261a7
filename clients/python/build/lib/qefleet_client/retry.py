"""When to try a request again, and after how long: one rule for the sync
and the async client."""

from __future__ import annotations

import email.utils
import random
import time

import httpx

# 429 Too Many Requests and 503 (the server's "storage full", a restarting
# proxy) say "later"; 502 and 504 come from a proxy in front of a restarting server.
RETRY_STATUSES = frozenset({429, 502, 503, 504})


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """The Retry-After header in seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def next_delay(settings, attempt: int, outcome, remaining: float) -> float | None:
    """Seconds to wait before the next attempt, or None to stop trying.

    `outcome` is the response or the transport error of attempt number
    `attempt` (0-based); `remaining` is what is left of the call's budget.
    A Retry-After longer than the budget stops at once: waiting it out
    would break the bound the caller was promised.
    """
    if isinstance(outcome, httpx.Response) and outcome.status_code not in RETRY_STATUSES:
        return None
    if attempt + 1 >= settings.max_attempts:
        return None
    delay = min(settings.backoff_cap, settings.backoff_base * 2**attempt) * random.uniform(0.5, 1.0)
    if isinstance(outcome, httpx.Response):
        asked = retry_after_seconds(outcome.headers.get("Retry-After"))
        if asked is not None:
            delay = asked
    return delay if delay < remaining else None
