"""Per-agent rate limits: exactly the limit per minute, whichever worker counts."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import redis
import time_machine
from django.db import connection

from qefleet.memory import ratelimit
from qefleet.memory.models import AgentToken, AuditEvent, MemoryEntry, RateWindow
from tests.conftest import make_agent

NOW = datetime(2026, 5, 4, 12, 30, 15, tzinfo=UTC)  # 15 s into its minute
TEST_REDIS = "redis://127.0.0.1:6379/4"
THREADS = 8
CALLS_EACH = 40


def accepted_in_threads(agent, now):
    """How many of THREADS x CALLS_EACH concurrent requests the limit lets through."""
    def calls(_):
        accepted = 0
        try:
            for _ in range(CALLS_EACH):
                try:
                    ratelimit.check(agent, now=now)
                    accepted += 1
                except ratelimit.RateLimited:
                    pass
        finally:
            connection.close()
        return accepted

    with ThreadPoolExecutor(THREADS) as pool:
        return sum(pool.map(calls, range(THREADS)))


@pytest.fixture(autouse=True)
def database_backend(settings):
    # The database unless a test asks for Redis, whichever broker the suite runs with.
    settings.RATE_LIMIT_BACKEND = "database"


@pytest.fixture
def redis_backend(settings):
    settings.RATE_LIMIT_BACKEND = "redis"
    settings.REDIS_URL = TEST_REDIS
    client = redis.Redis.from_url(TEST_REDIS)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    client.flushdb()
    yield client
    client.flushdb()


@pytest.mark.django_db(transaction=True)
def test_it_accepts_exactly_the_limit_across_concurrent_workers_on_the_database(settings):
    settings.RATE_LIMIT_PER_MINUTE = 100
    agent = make_agent("busy")
    assert accepted_in_threads(agent, NOW.timestamp()) == 100
    assert RateWindow.objects.get(agent=agent).hits == THREADS * CALLS_EACH
    assert AuditEvent.objects.filter(action="rate_limited").count() == 1


@pytest.mark.django_db(transaction=True)
def test_it_accepts_exactly_the_limit_across_concurrent_workers_on_redis(settings, redis_backend):
    settings.RATE_LIMIT_PER_MINUTE = 100
    agent = make_agent("busy")
    assert accepted_in_threads(agent, NOW.timestamp()) == 100
    assert not RateWindow.objects.exists()
    assert 60 < redis_backend.ttl(f"qefleet:rate:busy:{int(NOW.timestamp()) // 60 * 60}") <= 120
    assert AuditEvent.objects.filter(action="rate_limited").count() == 1


@pytest.mark.django_db
def test_it_answers_429_with_retry_after_and_changes_nothing(settings):
    settings.RATE_LIMIT_PER_MINUTE = 2
    alice = make_agent("alice")
    with time_machine.travel(NOW, tick=False):
        assert alice.client.put("memory/default/a", {"value": 1}).status_code == 201
        assert alice.client.put("memory/default/b", {"value": 1}).status_code == 201
        AgentToken.objects.filter(agent=alice).update(last_used_at=None)
        response = alice.client.put("memory/default/c", {"value": 1})
    assert response.status_code == 429
    assert response["Retry-After"] == "45"
    assert response.json()["error"] == "rate_limited" and "2 requests" in response.json()["message"]
    assert not MemoryEntry.objects.filter(key="c").exists()
    assert AgentToken.objects.get(agent=alice).last_used_at is None


@pytest.mark.django_db
def test_it_audits_one_trip_per_agent_and_window(settings):
    settings.RATE_LIMIT_PER_MINUTE = 1
    alice = make_agent("alice")
    with time_machine.travel(NOW, tick=False):
        statuses = [alice.client.get("agents/alice").status_code for _ in range(4)]
    assert statuses == [200, 429, 429, 429]
    trip = AuditEvent.objects.get(action="rate_limited")
    assert (trip.actor, trip.target, trip.detail["limit"]) == ("alice", "agent:alice", 1)
    assert trip.detail["window_start"] == "2026-05-04T12:30:00+00:00"
    assert trip.remote_addr == "127.0.0.1" and len(trip.request_id) == 32


@pytest.mark.django_db
def test_it_starts_each_minute_afresh_and_prunes_old_windows(settings):
    settings.RATE_LIMIT_PER_MINUTE = 1
    alice, bob = make_agent("alice"), make_agent("bob")
    ratelimit.check(bob, now=NOW.timestamp())
    for when in (NOW.timestamp(), NOW.timestamp() + 60):
        ratelimit.check(alice, now=when)  # the second is alone in its minute
    minute = int(NOW.timestamp()) // 60 * 60
    assert list(RateWindow.objects.filter(agent=alice).values_list("window_start", "hits")) == [(minute + 60, 1)]
    assert RateWindow.objects.filter(agent=bob, window_start=minute).exists()  # others' windows stay


@pytest.mark.django_db
def test_it_counts_each_agent_apart(settings):
    settings.RATE_LIMIT_PER_MINUTE = 1
    alice, bob = make_agent("alice"), make_agent("bob")
    with time_machine.travel(NOW, tick=False):
        assert alice.client.get("agents/alice").status_code == 200
        assert bob.client.get("agents/bob").status_code == 200
        assert alice.client.get("agents/alice").status_code == 429


@pytest.mark.django_db
def test_it_does_not_count_at_zero(settings):
    settings.RATE_LIMIT_PER_MINUTE = 0
    alice = make_agent("alice")
    for _ in range(3):
        ratelimit.check(alice)
    assert not RateWindow.objects.exists()
