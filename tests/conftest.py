"""Shared fixtures: named agents with tokens, and an API client that sends them.

The fleet used across the memory tests (swarm/team):
  alice   team core,  swarm qe    owner of most records
  bob     team core,  swarm qe    alice's team mate
  carol   team perf,  swarm qe    same swarm, other team
  dave    team other, swarm far   another swarm
  root    system agent in swarm qe
"""

import importlib
import json

import pytest
from django.test import Client, override_settings

from qefleet.memory import ratelimit
from qefleet.memory.fleet import issue_token, register_agent


def pytest_terminal_summary(terminalreporter, config):
    # The tests run in a random order (pytest-randomly); this is how to run that order again.
    seed = getattr(config.option, "randomly_seed", None)
    if isinstance(seed, int):
        terminalreporter.write_line(f"Test order: pytest --randomly-seed={seed}")


class AgentClient:
    """Calls the API as one agent (or anonymously when token is None)."""

    def __init__(self, token):
        self.token = token
        self.client = Client()

    def _headers(self, extra):
        headers = dict(extra or {})
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def _send(self, method, path, body, content_type, headers):
        if body is None:
            data = b""  # no body at all, as `curl -X POST` sends
        else:
            data = body if isinstance(body, (str, bytes)) else json.dumps(body)
        call = getattr(self.client, method)
        return call(f"/api/v1/{path}", data=data, content_type=content_type, headers=self._headers(headers))

    def get(self, path, headers=None):
        return self.client.get(f"/api/v1/{path}", headers=self._headers(headers))

    def delete(self, path, headers=None):
        return self.client.delete(f"/api/v1/{path}", headers=self._headers(headers))

    def put(self, path, body=None, content_type="application/json", headers=None):
        return self._send("put", path, body, content_type, headers)

    def post(self, path, body=None, content_type="application/json", headers=None):
        return self._send("post", path, body, content_type, headers)

    def patch(self, path, body=None, content_type="application/json", headers=None):
        return self._send("patch", path, body, content_type, headers)


@pytest.fixture(autouse=True, scope="session")
def _plain_http():
    """The test client and the live server speak plain http, so the HTTPS
    redirect and secure-only cookies of production (DEBUG off) are turned
    off for the whole session; tests/test_deploy_check.py checks them."""
    with override_settings(SECURE_SSL_REDIRECT=False, SESSION_COOKIE_SECURE=False, CSRF_COOKIE_SECURE=False):
        yield


@pytest.fixture(autouse=True)
def _fresh_rate_limit_windows(settings):
    # Redis is not rolled back with each test's database: start every test
    # with no requests counted, as on the database backend.
    if settings.RATE_LIMIT_BACKEND == "redis":
        client = ratelimit.redis_client(settings.REDIS_URL)
        for key in client.scan_iter(f"{ratelimit.KEY_PREFIX}*"):
            client.delete(key)


@pytest.fixture(autouse=True)
def _fresh_strategy_catalog():
    # The strategy catalog is cached per process for a few seconds, and a
    # queryset update() does not drop it: each test reads it from its own
    # database, whatever the test before it left in the cache.
    from learning.models import Strategy

    Strategy.forget_catalog()
    yield
    Strategy.forget_catalog()


@pytest.fixture(autouse=True)
def _empty_cache():
    # Django's cache (shadow mode's estimate) outlives each test's database.
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _unhashed_static_files(settings):
    # The manifest storage needs collectstatic first; tests render without it.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def make_agent(agent_id, team="", swarm="", is_system=False):
    agent, _ = register_agent(agent_id, "test-agent", team, swarm, is_system)
    _, token = issue_token(agent)
    agent.client = AgentClient(token)
    agent.token = token
    return agent


@pytest.fixture
def alice(db):
    return make_agent("alice", "core", "qe")


@pytest.fixture
def bob(db):
    return make_agent("bob", "core", "qe")


@pytest.fixture
def carol(db):
    return make_agent("carol", "perf", "qe")


@pytest.fixture
def dave(db):
    return make_agent("dave", "other", "far")


@pytest.fixture
def root(db):
    return make_agent("root", "", "qe", is_system=True)


@pytest.fixture
def anonymous():
    return AgentClient(None)


@pytest.fixture
def strategy_catalog(db):
    """The strategy catalog that learning/migrations/0002_seed_catalog.py
    seeds. A transactional test empties the database when it ends (a flush,
    which runs no data migration), so a transactional test after it finds no
    strategies: seed them again where missing, with the migration's own
    function. Ask for it in transactional tests that use the catalog."""
    from django.apps import apps

    from learning.models import Strategy

    importlib.import_module("learning.migrations.0002_seed_catalog").seed(apps, None)
    Strategy.forget_catalog()


@pytest.fixture
def overhead_buffer(monkeypatch):
    """This process's learning-overhead buffer, empty, writing when told (or
    at the first learning request of a minute), so a test sees only its own
    samples."""
    from learning import overhead

    fresh = overhead.OverheadBuffer(flush_seconds=3600)
    monkeypatch.setattr(overhead, "BUFFER", fresh)
    return fresh
