"""Agents without a team (or a swarm) are nobody's team (or swarm) mates: an
empty name never matches another empty name."""

import pytest

from qefleet.memory.models import MemoryEntry
from tests.conftest import make_agent

pytestmark = pytest.mark.django_db

PATH = "memory/notes/phase2/members-only"


@pytest.mark.parametrize("level, owner, other", [
    ("team", ("", "s1"), ("", "s1")),
    ("swarm", ("t1", ""), ("t2", "")),
])
def test_it_hides_an_entry_of_an_empty_team_or_swarm_from_other_agents_without_one(level, owner, other):
    owner = make_agent("loner", *owner)
    other = make_agent("drifter", *other)
    assert owner.client.put(PATH, {"value": {"n": 1}, "access_level": level}).status_code == 201
    assert other.client.get(PATH).status_code == 404
    assert other.client.put(PATH, {"value": {"n": 2}}).status_code == 404
    listed = other.client.get("memory/notes?prefix=phase2/").json()["items"]
    assert "phase2/members-only" not in [item["key"] for item in listed]
    assert MemoryEntry.objects.get(key="phase2/members-only").value == {"n": 1}
