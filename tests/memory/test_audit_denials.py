"""Every access the policy refuses is audited, in one insert, while the
caller learns nothing more than the 404 or 403 it already got."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from qefleet.memory.models import AuditEvent

pytestmark = pytest.mark.django_db


def denials():
    return list(AuditEvent.objects.filter(action="access_denied").order_by("pk"))


def test_it_audits_a_read_of_a_private_entry_and_answers_as_if_it_did_not_exist(alice, bob):
    alice.client.put("memory/default/secret", {"value": 1})
    refused = bob.client.get("memory/default/secret")
    missing = bob.client.get("memory/default/nothing")
    assert refused.status_code == missing.status_code == 404
    assert refused.json() == missing.json()
    [audit] = denials()  # a key that does not exist is no denial
    assert (audit.actor, audit.target) == ("bob", "memory:default/secret")
    assert audit.detail == {"operation": "read", "reason": "no read permission at the private level", "status": 404}
    assert audit.request_id == refused["X-Request-ID"] and audit.remote_addr == "127.0.0.1"


def test_it_audits_in_one_insert(alice, bob):
    alice.client.put("memory/default/secret", {"value": 1})
    with CaptureQueriesContext(connection) as queries:
        bob.client.get("memory/default/secret")
    inserts = [query["sql"] for query in queries if query["sql"].startswith("INSERT")]
    assert sum(AuditEvent._meta.db_table in sql for sql in inserts) == 1


def test_it_audits_a_blocked_agent(alice, bob):
    alice.client.put("memory/default/plan", {"value": 1, "access_level": "team"})
    alice.client.put("acl/default/plan", {"grants": {}, "blocks": ["bob"]})
    assert bob.client.put("memory/default/plan", {"value": 2}).status_code == 404
    assert denials()[0].detail["reason"] == "blocked"


def test_it_audits_a_write_to_a_public_entry_with_403(alice, carol):
    alice.client.put("memory/default/notice", {"value": 1, "access_level": "public"})
    assert carol.client.put("memory/default/notice", {"value": 2}).status_code == 403
    [audit] = denials()
    assert (audit.actor, audit.detail["operation"], audit.detail["status"]) == ("carol", "write", 403)


def test_it_audits_acl_changes_by_others(alice, bob):
    alice.client.put("memory/default/plan", {"value": 1, "access_level": "team"})
    assert bob.client.put("acl/default/plan", {"grants": {}, "blocks": ["alice"]}).status_code == 403
    assert bob.client.put("acl/default/plan", {"grants": {"bob": ["delete"]}, "blocks": []}).status_code == 403
    assert [audit.detail["operation"] for audit in denials()] == ["change", "share"]


def test_it_audits_a_clear_by_an_agent_that_is_not_a_system_agent(alice):
    assert alice.client.delete("memory/default").status_code == 403
    assert denials()[0].target == "partition:default"


def test_it_audits_the_system_level_asked_for_by_others(alice):
    assert alice.client.put("memory/default/k", {"value": 1, "access_level": "system"}).status_code == 403
    assert denials()[0].detail["operation"] == "set system level"


def test_it_audits_another_agents_routes(alice, bob):
    assert alice.client.get("agents/bob").status_code == 404
    assert alice.client.get("agents/nobody").status_code == 404
    assert [audit.target for audit in denials()] == ["agent:bob", "agent:nobody"]


def test_it_audits_other_tables_by_record(alice, bob):
    created = alice.client.post("workflows", {"name": "release"}).json()
    assert bob.client.get(f"workflows/{created['id']}").status_code == 404
    assert denials()[0].target == f"workflowstate:{created['id']}"
