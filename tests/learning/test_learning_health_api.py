"""GET agents/{id}/learning answers "Is it learning?" under the status
endpoint's access rules, with its window as a checked parameter."""

import pytest

from learning.models import Execution
from tests.learning.helpers import run_task

pytestmark = pytest.mark.django_db


def test_it_reports_an_agent_that_learns_from_every_outcome(alice):
    for _ in range(30):
        run_task(alice)
    health = alice.client.get("agents/alice/learning").json()["learning_health"]
    assert health["window_tasks"] == 100
    assert (health["outcomes"], health["outcomes_changing_values"], health["changed_share"]) == (30, 30, 1.0)
    assert health["verdict"] == "learning" and health["verdict_words"] == "learning"
    assert health["states_seen"] == 1 and health["states_learned"] == 1 and health["coverage"] == 1.0
    assert health["decisions"] == 30
    assert health["own"] + health["borrowed"] + health["default"] == 30
    assert health["default"] == 1  # the very first task knew nothing yet
    assert health["explored"] == round(health["explored_share"] * 30)
    assert health["patterns"] == {"imports": 0, "imports_unused": 0, "shared_imports": 0, "shared_unused": 0}


def test_it_says_values_that_do_not_move(alice):
    for _ in range(30):
        run_task(alice)
    Execution.objects.filter(agent=alice, sequence__gt=10).update(q_value=0.5, previous_q=0.5)
    health = alice.client.get("agents/alice/learning").json()["learning_health"]
    assert (health["outcomes_changing_values"], health["verdict"]) == (10, "not-learning")


def test_the_window_is_the_last_n_tasks(alice):
    for _ in range(25):
        run_task(alice)
    health = alice.client.get("agents/alice/learning?tasks=10").json()["learning_health"]
    assert (health["window_tasks"], health["outcomes"], health["verdict"]) == (10, 10, "too-early")
    assert health["default"] == 0  # the first task's default is outside the window


def test_a_system_agent_reads_its_swarm_and_nobody_else_does(alice, bob, dave, root):
    run_task(alice)
    assert root.client.get("agents/alice/learning").status_code == 200
    assert bob.client.get("agents/alice/learning").status_code == 404
    assert dave.client.get("agents/alice/learning").status_code == 404
    assert root.client.get("agents/nobody/learning").status_code == 404


def test_it_needs_a_token(anonymous, alice):
    response = anonymous.get("agents/alice/learning")
    assert response.status_code == 401 and response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("window", ["9", "1001", "ten", "-5", ""])
def test_a_window_it_cannot_use_is_a_4xx_naming_the_parameter(alice, window):
    response = alice.client.get(f"agents/alice/learning?tasks={window}")
    assert 400 <= response.status_code < 500
    assert "tasks" in response.content.decode()
