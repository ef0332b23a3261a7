"""Issuing and revoking a token is on the audit trail, whichever way it is done."""

import pytest
from django.core.management import call_command

from qefleet.memory.fleet import issue_token
from qefleet.memory.models import AgentToken, AuditEvent, digest
from tests.memory.helpers import url

pytestmark = pytest.mark.django_db


def test_it_audits_a_token_issued_in_code(alice):
    token, _ = issue_token(alice, "ci")
    audit = AuditEvent.objects.get(action="token_issue", detail__prefix=token.prefix)
    assert (audit.actor, audit.target, audit.detail["label"]) == ("system", "agent:alice", "ci")


def test_it_audits_tokens_issued_and_revoked_by_commands(alice, capsys):
    call_command("issue_token", "alice")
    prefix = capsys.readouterr().out.strip().splitlines()[-1][4:12]
    # "--prefix=": a random prefix can start with "-", which argparse would
    # take for an option.
    call_command("revoke_token", "alice", f"--prefix={prefix}")
    issued = AuditEvent.objects.get(action="token_issue", detail__prefix=prefix)
    revoked = AuditEvent.objects.get(action="token_revoke")
    assert issued.actor.startswith("cli") and revoked.actor == issued.actor
    assert (revoked.target, revoked.detail["prefix"]) == ("agent:alice", prefix)


def test_it_audits_tokens_issued_and_revoked_in_the_admin(admin_client, alice):
    response = admin_client.post(url(type(alice)), {"action": "issue_token", "_selected_action": [alice.pk],
                                                    "apply": "1", "label": "", "expires_at_0": "", "expires_at_1": ""})
    assert response.status_code == 200
    issued = AuditEvent.objects.filter(action="token_issue", actor="admin").get()
    assert issued.target == "agent:alice" and len(issued.request_id) == 32 and issued.remote_addr == "127.0.0.1"

    token = AgentToken.objects.get(digest=digest(alice.token))
    admin_client.post(url(AgentToken), {"action": "revoke_tokens", "_selected_action": [token.pk]})
    revoked = AuditEvent.objects.get(action="token_revoke")
    assert (revoked.actor, revoked.detail["prefix"]) == ("admin", token.prefix)


def test_it_audits_a_revocation_once(alice):
    token = AgentToken.objects.get(agent=alice)
    token.revoke("ops")
    token.revoke("ops")
    assert AuditEvent.objects.filter(action="token_revoke").count() == 1
