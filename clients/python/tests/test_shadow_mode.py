"""An agent in shadow mode names its own strategy and gets it back, and its
learning status carries the shadow figures (the server's README, "Shadow mode")."""

import sqlite3

import pytest
from qefleet_client import Task
from qefleet_client.errors import ApiError


def put_in_shadow(server, agent_id):
    """What an operator's "Put in shadow" stores, written straight into the server's database."""
    with sqlite3.connect(server.database) as db:
        db.execute(
            "UPDATE learning_learningprofile SET mode = 'shadow', shadow_since = datetime('now', '-1 minute') "
            "WHERE agent_id = (SELECT id FROM agent_registry WHERE agent_id = ?)",
            (agent_id,),
        )


def test_an_agent_in_shadow_runs_its_own_strategy(server, make_client):
    client = make_client("py-shadow")
    assert client.recommend(Task(type="unit-test"), own_strategy="adaptive-retry").mode == "active"
    put_in_shadow(server, "py-shadow")
    recommendation = client.recommend(Task(type="unit-test"), own_strategy="adaptive-retry")
    assert (recommendation.mode, recommendation.strategy, recommendation.propensity) == ("shadow", "adaptive-retry", 1.0)
    status = client.learning_status()
    assert status.mode == "shadow" and status.shadow.decisions == 1 and status.shadow.estimator == "doubly robust"


def test_an_unknown_own_strategy_is_refused_naming_the_field(make_client):
    with pytest.raises(ApiError) as refused:
        make_client("py-agent").recommend(Task(type="unit-test"), own_strategy="no-such-strategy")
    assert refused.value.status == 400 and refused.value.field == "own_strategy"
