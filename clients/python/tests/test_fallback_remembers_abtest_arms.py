"""A recommendation chosen by a running A/B test is remembered for the
fallback like any other (its arm is that decision's, not kept)."""

import httpx
from qefleet_client import Task


def test_an_abtest_recommendation_is_remembered_without_its_arm(server, make_client):
    system_token = server.manage("register_agent", "py-system", "--type", "coordinator", "--swarm", "clients",
                                 "--system").split()[-1]  # fmt: skip
    created = httpx.post(f"{server.url}/api/v1/abtests", headers={"Authorization": f"Bearer {system_token}"},
                         json={"agent": "py-abtest", "task_type": "ab-type", "treatment": "parallel-execution"},
                         timeout=60)  # fmt: skip
    assert created.status_code == 201, created.text
    client = make_client("py-abtest")
    recommendation = client.recommend(Task(type="ab-type"))
    assert recommendation.abtest is not None and recommendation.abtest.id == created.json()["id"]
    remembered = client._last_strategies("py-abtest").recall("ab-type")
    assert (remembered.strategy, remembered.source, remembered.abtest) == (recommendation.strategy, "last-known", None)
