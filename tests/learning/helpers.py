"""Building recommendation and execution bodies for the learning tests."""

import itertools

_ids = itertools.count(1)


def task(**overrides):
    body = {"id": f"task-{next(_ids)}", "type": "unit-tests", "complexity": 0.6,
            "required_capabilities": ["jest"], "previous_attempts": 0, "available_resources": 0.8}
    body.update(overrides)
    return body


def recommend(agent, **task_fields):
    response = agent.client.post(f"agents/{agent.agent_id}/recommendations", {"task": task(**task_fields)})
    assert response.status_code == 200, response.content
    return response.json()


def report(agent, decision=None, body_task=None, headers=None, **result):
    outcome = {"success": True, "execution_time_ms": 2350, "errors": []}
    outcome.update(result)
    body = {"task": body_task or task(), "result": outcome}
    if decision is not None:
        body["decision_id"] = decision["decision_id"]
    return agent.client.post(f"agents/{agent.agent_id}/executions", body, headers=headers)


def run_task(agent, success=True, **task_fields):
    decision = recommend(agent, **task_fields)
    response = report(agent, decision, task(**task_fields), success=success)
    assert response.status_code == 201, response.content
    return decision, response.json()
