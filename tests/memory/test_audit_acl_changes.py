"""Every change of who may use a record is on the audit trail, with the
access before and after, through the API and through the admin."""

import pytest

from qefleet.memory.models import AccessLevel, AuditEvent, MemoryACL
from tests.memory.helpers import entry, entry_form, errors_of, save_entry, url

pytestmark = pytest.mark.django_db


def changes():
    return list(AuditEvent.objects.filter(action="acl_change").order_by("pk"))


def test_it_audits_an_acl_change_through_the_api(alice, bob, carol):
    alice.client.put("memory/default/plan", {"value": 1})
    response = alice.client.put("acl/default/plan", {"grants": {"bob": ["read"]}, "blocks": ["carol"],
                                                     "access_level": "team"})
    assert response.status_code == 200
    [audit] = changes()
    assert (audit.actor, audit.target) == ("alice", "memory:default/plan")
    assert audit.detail["before"] == {"owner": "alice", "access_level": "private", "team": "core", "swarm": "qe",
                                      "grants": {}, "blocks": []}
    assert audit.detail["after"]["grants"] == {"bob": ["read"]} and audit.detail["after"]["blocks"] == ["carol"]
    assert audit.detail["after"]["access_level"] == "team"
    assert audit.request_id == response["X-Request-ID"] and audit.remote_addr == "127.0.0.1"


def test_it_audits_a_change_of_owner(alice, bob):
    alice.client.put("memory/default/plan", {"value": 1})
    alice.client.put("acl/default/plan", {"grants": {}, "blocks": [], "owner": "bob"})
    assert changes()[0].detail["after"]["owner"] == "bob"


def test_it_does_not_audit_an_acl_left_as_it_was(alice):
    alice.client.put("memory/default/plan", {"value": 1})
    assert alice.client.put("acl/default/plan", {"grants": {}, "blocks": []}).status_code == 200
    assert changes() == []


def test_it_audits_grants_blocks_and_level_changed_in_the_admin(admin_client, alice, bob, carol):
    record = entry(alice)
    data = entry_form(admin_client, record, grants={"bob": ["read"]}, blocks=["carol"],
                      access_level=AccessLevel.SWARM)
    response = save_entry(admin_client, data, record)
    assert response.status_code == 302, errors_of(response)
    [audit] = changes()
    assert (audit.actor, audit.target) == ("admin", "memory:default/notes/plan")
    assert (audit.detail["before"]["access_level"], audit.detail["before"]["grants"]) == ("private", {})
    assert audit.detail["after"]["grants"] == {"bob": ["read"]} and audit.detail["after"]["blocks"] == ["carol"]


def test_it_does_not_audit_an_admin_edit_of_the_value_only(admin_client, alice):
    record = entry(alice)
    response = save_entry(admin_client, entry_form(admin_client, record, value='{"step": 2}'), record)
    assert response.status_code == 302, errors_of(response)
    assert changes() == []


def test_it_audits_an_acl_deleted_in_the_admin(admin_client, alice, bob):
    acl = MemoryACL.objects.create(entry=entry(alice), granted_permissions={"bob": ["read"]})
    admin_client.post(url(MemoryACL), {"action": "delete_selected", "_selected_action": [acl.pk], "post": "yes"})
    [audit] = changes()
    assert audit.detail == {"before": {"grants": {"bob": ["read"]}, "blocks": []},
                            "after": {"grants": {}, "blocks": []}}
