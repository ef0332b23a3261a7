"""The "Is it learning?" panels: the agent page's figures in words and
numbers over the window they name, and the fleet page's verdict per agent."""

import pytest

from learning.models import AppliedStrategy, Decision, Execution
from tests.learning.helpers import run_task, strategy

pytestmark = pytest.mark.django_db


def text_of(response):
    return " ".join(response.content.decode().split())


def test_the_agent_panel_says_it_is_learning_with_the_numbers_it_rests_on(viewer, alice):
    for _ in range(40):
        run_task(alice)
    response = viewer.get("/ops/agents/alice/")
    health = response.context["learning_health"]
    assert (health["verdict"], health["outcomes"], health["outcomes_changing_values"]) == ("learning", 40, 40)
    page = text_of(response)
    assert "Is it learning?" in page and "✓</span> learning" in page
    assert "over its last 100 tasks (40 reported so far)" in page
    assert '100 % <span class="muted">40 of 40 outcomes' in page
    assert f"{health['default']} of 40 (over 50 % raises an alert)" in page
    assert "1 of the 1 (task type, state) pairs its tasks were in" in page


def test_the_agent_panel_says_when_values_do_not_move(viewer, alice):
    for _ in range(40):
        run_task(alice)
    Execution.objects.filter(agent=alice).update(q_value=0.5, previous_q=0.5)
    page = text_of(viewer.get("/ops/agents/alice/"))
    assert "not learning</span> <span>Outcomes arrive but its learned values do not move" in page
    assert '0 % <span class="muted">0 of 40 outcomes' in page


def test_the_agent_panel_of_a_newcomer_says_it_is_too_early(viewer, alice):
    page = text_of(viewer.get("/ops/agents/alice/"))
    assert "too early to tell" in page and "no outcome yet" in page


def test_the_fleet_page_gives_each_agent_its_verdict_and_the_fleet_its_figures(viewer, alice, bob, carol):
    for agent in (alice, bob):
        for _ in range(35):
            run_task(agent)
    Decision.objects.filter(agent=bob).update(fallback="default")
    response = viewer.get("/ops/")
    verdicts = {row["agent_id"]: row["verdict"] for row in response.context["learning_rows"]}
    assert verdicts == {"alice": "learning", "bob": "mostly-default", "carol": "too-early"}
    fleet = response.context["learning_fleet"]
    assert (fleet["outcomes"], fleet["decisions"]) == (70, 70)
    assert fleet["default"] == 35 + Decision.objects.filter(agent=alice, fallback="default").count()
    page = text_of(response)
    assert (
        "Is each agent learning?" in page
        and "Over each agent's last 100 tasks: 1 learning, 1 mostly default, 1 too early to tell." in page
    )
    assert 'href="/ops/agents/bob/#is-it-learning"' in page
    # Both agents ran one strategy in one state 35 times: that is the fleet's best, and each is measured against it.
    assert fleet["regret"]["tasks"] == 70 and fleet["regret"]["cells"] == 2
    margin = (fleet["regret"]["high"] - fleet["regret"]["per_task"]) * 100
    assert f'+0.0 ± {margin:.1f} points <span class="muted">over 70</span>' in page


def test_the_agent_panel_does_not_call_decisions_set_for_it_learned(viewer, alice):
    AppliedStrategy.objects.create(agent=alice, task_type="unit-tests", strategy=strategy("adaptive-retry"))
    for _ in range(40):
        run_task(alice)
    response = viewer.get("/ops/agents/alice/")
    assert response.context["learning_health"]["verdict"] == "learning"
    page = text_of(response)
    assert ("most of its decisions were set for it (40 from the strategy applied for the task type), not chosen by "
            "it") in page
    assert "mostly come from what it learned" not in page
    assert "Decisions borrowed or set for it" in page
