"""Event types the server writes (`learning:...`) are the server's alone: an
agent's event may not pose as a rollback or a training step on the
operator's agent page."""

import pytest

from qefleet.memory.models import Event

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("kind", ["learning:rollback_dry_run", "learning:training", "Learning:rollback", "learning:"])
def test_it_refuses_an_agents_event_in_the_servers_namespace(alice, kind):
    response = alice.client.post("events", {"type": kind, "payload": {"version": 3}})
    assert response.status_code == 400
    assert response.json()["field"] == "type"
    assert not Event.objects.exists()


def test_it_takes_an_agents_own_event_types(alice):
    assert alice.client.post("events", {"type": "qe:learning:note"}).status_code == 201
    assert alice.client.post("events", {"type": "learnings:note"}).status_code == 201
