"""The inbox's digest: info alerts summarised by kind, not cards to act on."""

import pytest

from learning import alerts

pytestmark = pytest.mark.django_db


def test_the_inbox_summarises_info_alerts_in_its_digest(viewer, alice, bob):
    for agent in (alice, bob):
        alerts.raise_alert(
            "failure:needs_operator", "info", f"{agent.agent_id} steady", {}, agent, task_type="unit-tests"
        )
    response = viewer.get("/ops/alerts/")
    inbox = response.context["inbox"]
    assert inbox.decisions == [] and inbox.digest_count == 2 and len(inbox.digest) == 1
    page = response.content.decode()
    assert "Digest: 2 for information" in page
    assert "<strong>Failures no strategy change fixes</strong>: 2 alerts from alice, bob; task types unit-tests" in page
