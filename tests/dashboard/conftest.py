"""Fixtures of the dashboard tests: a logged-in client per role and an agent
with a real learning history (tasks through the API, a known-good version,
a worse stretch after it)."""

import pytest
from django.utils import timezone

from tests.conftest import make_agent
from tests.dashboard.helpers import client_for
from tests.learning.helpers import learn_then_worsen
from tests.learning.report_helpers import constructed_history


@pytest.fixture
def viewer(db):
    return client_for("viewer")


@pytest.fixture
def operator(db):
    return client_for("operator")


@pytest.fixture
def admin(db):
    return client_for("admin")


@pytest.fixture
def history(alice):
    """Alice: 30 good tasks, v1 captured and known good, then 30 worse ones
    (snapshots every 10 tasks, the baseline after 50)."""
    return learn_then_worsen(alice)


@pytest.fixture
def alice_history():
    """Alice with a constructed month of history (tests/learning/report_helpers.py)."""
    agent = make_agent("alice", "core", "qe")
    constructed_history(agent, timezone.now())
    return agent
