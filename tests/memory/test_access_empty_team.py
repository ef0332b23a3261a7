"""Agents without a team are nobody's team mates: an empty team never matches."""

import pytest

from qefleet.memory.models import MemoryEntry
from tests.conftest import make_agent

pytestmark = pytest.mark.django_db

PATH = "memory/notes/phase2/team-only"


def test_it_hides_a_teamless_owners_team_entry_from_other_teamless_agents():
    owner = make_agent("loner", "", "s1")
    other = make_agent("drifter", "", "s1")
    assert owner.client.put(PATH, {"value": {"n": 1}, "access_level": "team"}).status_code == 201
    assert other.client.get(PATH).status_code == 404
    assert other.client.put(PATH, {"value": {"n": 2}}).status_code == 404
    assert "phase2/team-only" not in [item["key"] for item in other.client.get("memory/notes?prefix=phase2/").json()["items"]]
    assert MemoryEntry.objects.get(key="phase2/team-only").value == {"n": 1}
