"""Concurrent writers lose no update, on SQLite and PostgreSQL alike."""

import pytest

from qefleet.memory.models import ConsensusProposal, MemoryACL, MemoryEntry
from tests.conftest import make_agent
from tests.helpers import run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)

WRITERS = 6
WRITES_EACH = 10


def test_concurrent_updates_of_one_entry_all_count():
    agents = [make_agent(f"writer-{index}", "core", "qe") for index in range(WRITERS)]
    agents[0].client.put("memory/default/shared", {"value": 0, "access_level": "team"})

    def write(index):
        return [agents[index].client.put("memory/default/shared", {"value": index}).status_code
                for _ in range(WRITES_EACH)]

    statuses = [status for batch in run_in_threads(WRITERS, write) for status in batch]
    assert statuses == [200] * WRITERS * WRITES_EACH
    assert MemoryEntry.objects.get(key="shared").version == 1 + WRITERS * WRITES_EACH


def test_concurrent_first_writes_create_one_entry():
    agents = [make_agent(f"racer-{index}", "core", "qe") for index in range(WRITERS)]

    def write(index):
        return agents[index].client.put("memory/default/fresh", {"value": index, "access_level": "team"}).status_code

    statuses = run_in_threads(WRITERS, write)
    assert statuses.count(201) == 1
    assert set(statuses) <= {200, 201, 409}
    assert MemoryEntry.objects.filter(key="fresh").count() == 1


def test_concurrent_votes_are_all_counted():
    proposer = make_agent("proposer", "core", "qe")
    voters = [make_agent(f"voter-{index}", "core", "qe") for index in range(WRITERS)]
    proposal_id = proposer.client.post("consensus", {"decision": {}, "quorum": WRITERS + 1}).json()["id"]

    def vote(index):
        return voters[index].client.post(f"consensus/{proposal_id}/votes", {"vote": "approve"}).status_code

    assert run_in_threads(WRITERS, vote) == [200] * WRITERS
    assert len(ConsensusProposal.objects.get().votes) == WRITERS


def test_concurrent_identical_grants_on_an_entry_without_an_acl_all_succeed():
    owner = make_agent("granter", "core", "qe")
    make_agent("grantee", "core", "qe")
    owner.client.put("memory/default/granted", {"value": 1})
    body = {"grants": {"grantee": ["read"]}, "blocks": []}

    def grant(index):
        return [owner.client.put("acl/default/granted", body).status_code for _ in range(WRITES_EACH)]

    statuses = [status for batch in run_in_threads(WRITERS, grant) for status in batch]
    assert statuses == [200] * WRITERS * WRITES_EACH
    assert MemoryACL.objects.get(entry__key="granted").granted_permissions == {"grantee": ["read"]}
