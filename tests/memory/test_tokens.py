from datetime import timedelta

import pytest
from django.utils import timezone

from qefleet.memory.models import AgentStatus, AgentToken, digest
from tests.conftest import AgentClient

pytestmark = pytest.mark.django_db


def test_it_stores_only_a_digest_and_a_prefix(alice):
    token = AgentToken.objects.get(agent=alice)
    assert token.digest == digest(alice.token)
    assert alice.token not in (token.digest, token.prefix)
    assert alice.token[4:12] == token.prefix
    assert AgentToken.objects.filter(digest__contains=alice.token).count() == 0


def test_it_issues_256_random_bits(alice):
    _, plain = AgentToken.issue(alice)
    assert plain.startswith("qef_") and len(plain) == 4 + 43  # 32 bytes, url-safe base64
    assert AgentToken.issue(alice)[1] != plain


def test_it_authenticates_and_records_last_use(alice):
    assert alice.client.get("agents/alice").status_code == 200
    assert AgentToken.objects.get(agent=alice).last_used_at is not None


def test_it_rejects_a_missing_token(anonymous, alice):
    response = anonymous.get("agents/alice")
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert response["WWW-Authenticate"] == "Bearer"


def test_it_rejects_a_revoked_token_on_the_next_request(alice):
    assert alice.client.get("agents/alice").status_code == 200
    AgentToken.objects.get(agent=alice).revoke()
    assert alice.client.get("agents/alice").status_code == 401


def test_it_rejects_an_expired_token(alice):
    AgentToken.objects.filter(agent=alice).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert alice.client.get("agents/alice").status_code == 401


def test_it_accepts_a_token_before_its_expiry(alice):
    AgentToken.objects.filter(agent=alice).update(expires_at=timezone.now() + timedelta(hours=1))
    assert alice.client.get("agents/alice").status_code == 200


def test_it_rejects_tokens_of_terminated_agents(alice):
    alice.status = AgentStatus.TERMINATED
    alice.save()
    assert alice.client.get("agents/alice").status_code == 401


def test_it_rejects_malformed_authorization_headers(alice):
    client = AgentClient(None)
    for header in ("Basic abc", "Bearer", f"Token {alice.token}", "Bearer " + "x" * 500):
        assert client.get("agents/alice", headers={"Authorization": header}).status_code == 401


def test_identity_comes_only_from_the_token(alice, bob):
    # A body naming another owner is refused, and the stored owner is the token's agent.
    response = alice.client.put("memory/default/k", {"value": 1, "owner": "bob"})
    assert response.status_code == 422
    assert response.json()["field"] == "owner"
    assert alice.client.put("memory/default/k", {"value": 1}).json()["owner"] == "alice"
