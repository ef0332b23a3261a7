"""Per-agent rate limits on the agent API, shared by every worker process.

A fixed window of a minute per agent: its first RATE_LIMIT_PER_MINUTE
requests pass, the rest get 429 until the window ends. The count lives where
every worker sees it, so several gunicorn workers together still let exactly
the limit through (a per-process counter would let through that many per
worker): one upsert on the database (`RateWindow.hit`), or INCR and EXPIRE on
Redis when RATE_LIMIT_BACKEND is redis.
"""

import logging
import math
import time
from datetime import UTC, datetime
from functools import cache

import redis
from django.conf import settings

from .models import AuditEvent, RateWindow

logger = logging.getLogger("qefleet.memory.ratelimit")

WINDOW_SECONDS = 60


class RateLimited(Exception):
    def __init__(self, limit, retry_after):
        super().__init__(f"over {limit} requests per minute")
        self.limit = limit
        self.retry_after = retry_after

    def to_dict(self):
        return {"error": "rate_limited",
                "message": f"This agent sent more than {self.limit} requests this minute; "
                           f"retry in {self.retry_after} s (Retry-After)."}


@cache
def redis_client(url):
    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)


KEY_PREFIX = "qefleet:rate:"


def redis_hits(agent, window_start):
    key = f"{KEY_PREFIX}{agent.agent_id}:{window_start}"
    # MULTI/EXEC: the key never lives on without its expiry.
    pipe = redis_client(settings.REDIS_URL).pipeline()
    pipe.incr(key)
    pipe.expire(key, 2 * WINDOW_SECONDS)
    try:
        hits, _ = pipe.execute()
    except redis.RedisError as error:
        # Refusing every agent because the counter is unreachable would turn
        # a Redis outage into an API outage; the limit waits for Redis instead.
        logger.warning("Rate limit not counted, Redis failed: %s", error)
        return 0
    return hits


BACKENDS = {"database": RateWindow.hit, "redis": redis_hits}


def check(agent, request=None, now=None):
    """Count one request of `agent`; raise RateLimited when it is over the limit."""
    limit = settings.RATE_LIMIT_PER_MINUTE
    if not limit:
        return
    now = time.time() if now is None else now
    window_start = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
    hits = BACKENDS[settings.RATE_LIMIT_BACKEND](agent, window_start)
    if hits <= limit:
        return
    if hits == limit + 1:
        # Exactly one request sees limit + 1: one audit row per agent and window.
        AuditEvent.record(agent.agent_id, "rate_limited", f"agent:{agent.agent_id}", request, limit=limit,
                          window_start=datetime.fromtimestamp(window_start, UTC).isoformat())
    raise RateLimited(limit, max(1, math.ceil(window_start + WINDOW_SECONDS - now)))
