import pytest

from learning.models import Execution
from learning.tracker import window_stats
from tests.learning.helpers import run_task

pytestmark = pytest.mark.django_db


def test_late_feedback_sets_satisfaction_and_the_score_uses_it(alice):
    _, body = run_task(alice)
    before = window_stats(alice, 1, 1)
    assert before["satisfaction"] is None
    response = alice.client.post(f"agents/alice/executions/{body['execution_id']}/feedback",
                                 {"rating": 0.2, "issues": ["flaky"]})
    assert response.json() == {"execution_id": body["execution_id"], "satisfaction": 0.2}
    assert Execution.objects.get().satisfaction == 0.2
    after = window_stats(alice, 1, 1)
    assert after["satisfaction"] == 0.2 and after["score"] < before["score"]


def test_feedback_for_another_agents_execution_is_404(alice, bob):
    _, body = run_task(bob)
    response = alice.client.post(f"agents/alice/executions/{body['execution_id']}/feedback", {"rating": 1})
    assert response.status_code == 404
    assert Execution.objects.get().satisfaction is None


@pytest.mark.parametrize("payload", [{"rating": 1.5}, {"rating": -0.1}, {}, {"rating": 0.5, "issues": "x"}])
def test_feedback_is_validated(alice, payload):
    _, body = run_task(alice)
    response = alice.client.post(f"agents/alice/executions/{body['execution_id']}/feedback", payload)
    assert response.status_code == 422
    assert Execution.objects.get().satisfaction is None
