"""Each endpoint of a task's path sends an exact number of statements, so a
change that adds one (a lookup fetched twice, a read that could ride along
with another) shows up here rather than in a benchmark. Transaction control
is left out: SQLite sends BEGIN and COMMIT as statements, PostgreSQL does
not. Every request counts against its agent's rate limit first (one upsert
on the database backend, counted here). The agent is past its first tasks,
as almost every agent is: its profile, pattern, safeguard, Q entries and a
live version exist."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from learning import versions
from learning.models import LearningProfile, VersionReason

from .helpers import recommend, report, run_task, task

TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")

# Token with its agent, rate limit; profile with its live version, this state's Q entries, the swarm's pooled
# values, running A/B arms, the applied strategy, active mitigations; the decision.
RECOMMENDATION = 9
# Token with its agent, rate limit; profile (locked), decision; Q entries, Q update, pooled
# upsert, profile update; patterns, pattern update, its memory copy; score
# sample; safeguard; the execution; the training event.
REPORT = 15


def statements(block):
    return [query["sql"] for query in block.captured_queries
            if not query["sql"].upper().startswith(TRANSACTION_CONTROL)]


@pytest.fixture(autouse=True)
def _rate_limit_on_the_database(settings):
    settings.RATE_LIMIT_BACKEND, settings.RATE_LIMIT_PER_MINUTE = "database", 3000


@pytest.fixture
def settled(alice):
    """alice after two tasks of one state and a version capture, exploring no more, so the next task's
    choice and rows are known."""
    LearningProfile.objects.create(agent=alice, exploration_rate=0.0, min_exploration_rate=0.0)
    for _ in range(2):
        run_task(alice, complexity=0.5)
    versions.capture(alice, VersionReason.ON_DEMAND)
    return alice


def test_it_keeps_a_recommendation_to_its_budget(settled):
    with CaptureQueriesContext(connection) as block:
        answer = recommend(settled, complexity=0.5)
    assert answer["policy_version"] == "v1+0"
    assert len(statements(block)) == RECOMMENDATION, "\n".join(statements(block))


def test_it_keeps_an_execution_report_to_its_budget(settled):
    decision = recommend(settled, complexity=0.5)
    with CaptureQueriesContext(connection) as block:
        response = report(settled, decision, task(complexity=0.5))
    assert response.status_code == 201
    assert len(statements(block)) == REPORT, "\n".join(statements(block))


def test_it_answers_a_repeated_report_from_its_first_answer_in_few_statements(settled):
    decision = recommend(settled, complexity=0.5)
    body = task(complexity=0.5)
    report(settled, decision, body)
    with CaptureQueriesContext(connection) as block:
        response = report(settled, decision, body)
    # Token with its agent, rate limit; profile (locked), decision, the first execution.
    assert response.status_code == 200 and len(statements(block)) == 5, "\n".join(statements(block))


def test_it_reads_an_agent_record_with_its_token(settled):
    with CaptureQueriesContext(connection) as block:
        response = settled.client.get(f"agents/{settled.agent_id}")
    # Token with its agent, rate limit.
    assert response.status_code == 200 and len(statements(block)) == 2, "\n".join(statements(block))


def test_it_keeps_feedback_to_its_budget(settled):
    execution_id = run_task(settled, complexity=0.5)[1]["execution_id"]
    with CaptureQueriesContext(connection) as block:
        response = settled.client.post(f"agents/{settled.agent_id}/executions/{execution_id}/feedback",
                                       {"rating": 0.8, "issues": []})
    # Token with its agent, rate limit; the execution (locked), its update, the event.
    assert response.status_code == 200 and len(statements(block)) == 5, "\n".join(statements(block))
