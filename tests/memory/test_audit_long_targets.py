"""A denial on a record whose name is longer than the audit trail's target
column is audited like any other (the name cut to fit, marked), and answers
the same 404 as a missing record: never a 500 that says the key exists."""

import pytest

from qefleet.memory.models import AuditEvent

pytestmark = pytest.mark.django_db

LONG_KEY = "k" * 400


def test_it_audits_a_denial_on_a_long_existing_key_and_answers_404(alice, bob):
    assert alice.client.put(f"memory/default/{LONG_KEY}", {"value": 1}).status_code == 201
    missing = bob.client.get(f"memory/default/{LONG_KEY}x")

    for response in (bob.client.get(f"memory/default/{LONG_KEY}"),
                     bob.client.put(f"memory/default/{LONG_KEY}", {"value": 2}),
                     bob.client.delete(f"memory/default/{LONG_KEY}")):
        assert response.status_code == 404
        assert response.json() == missing.json()
    denials = AuditEvent.objects.filter(actor="bob", action="access_denied")
    assert denials.count() == 3
    target = denials.first().target
    assert len(target) == AuditEvent._meta.get_field("target").max_length
    assert target.startswith("memory:default/kkk") and target.endswith("…")


def test_it_audits_a_request_on_a_long_agent_id_and_answers_404(alice):
    response = alice.client.get(f"agents/{'a' * 300}")
    assert response.status_code == 404
    assert AuditEvent.objects.filter(actor="alice", action="access_denied").count() == 1
