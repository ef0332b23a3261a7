"""The agent page keeps operators' actions apart from agents' refused
requests: no number of denials pushes an operator's action off the panel."""

import pytest

from learning import operations
from qefleet.memory.models import AuditEvent
from tests.conftest import make_agent
from tests.dashboard.helpers import client_for

pytestmark = pytest.mark.django_db


def test_denials_do_not_push_operator_actions_off_the_panel(history, alice):
    operator = client_for("operator")
    operator.post("/ops/agents/alice/run-cycle")
    mallory = make_agent("mallory", "core", "qe")
    for _ in range(12):
        assert mallory.client.get("agents/alice").status_code == 404

    context = client_for("viewer").get("/ops/agents/alice/").context
    assert [entry.action for entry in context["audit"]] == ["run_cycle"]
    denials = context["denials"]
    assert len(denials) == 5 and {(entry.actor, entry.action) for entry in denials} == {("mallory", "access_denied")}
    assert AuditEvent.objects.filter(action="access_denied").count() == 12
    assert set(operations.AGENT_ACTIONS) >= {"rollback", "undo_rollback", "re_enable_learning", "run_cycle"}
