"""phase2/learning/shared/patterns/{id} through the memory API: swarm access,
owned by the source, read-only, listed, and still readable in quarantine."""

import uuid

import pytest

from learning import sharing
from learning.models import SharedPattern
from tests.learning.sharing_helpers import PATTERN, learned, shared_by

pytestmark = pytest.mark.django_db

BASE = "memory/learning/phase2/learning/shared/patterns"


def test_a_swarm_mate_reads_it_and_another_swarm_gets_404(alice, bob, carol, dave):
    shared = shared_by(alice)
    body = bob.client.get(f"{BASE}/{shared.pk}").json()
    assert (body["owner"], body["access_level"], body["swarm"]) == ("alice", "swarm", "qe")
    value = body["value"]
    assert value["pattern"] == PATTERN and value["source"] == "alice" and value["status"] == "active"
    assert value["confidence"] == round(shared.confidence, 4) and value["success_rate"] == 0.975
    assert value["uses"] == 40 and value["lower_bound"] == round(shared.lower_bound, 4)
    assert carol.client.get(f"{BASE}/{shared.pk}").status_code == 200
    assert dave.client.get(f"{BASE}/{shared.pk}").status_code == 404


def test_it_is_read_only(alice, bob):
    shared = shared_by(alice)
    assert bob.client.put(f"{BASE}/{shared.pk}", {"value": {}}).status_code == 403
    assert alice.client.put(f"{BASE}/{shared.pk}", {"value": {}}).status_code == 403
    assert alice.client.delete(f"{BASE}/{shared.pk}").status_code == 403
    assert SharedPattern.objects.get().status == "active"


def test_the_namespace_holds_no_ordinary_entries(alice):
    assert alice.client.put(f"{BASE}/not-a-pattern", {"value": 1}).status_code == 404
    assert alice.client.get(f"{BASE}/{uuid.uuid4()}").status_code == 404


def test_listing_shows_the_swarms_patterns(alice, bob, dave):
    first = shared_by(alice)
    second = shared_by(alice, task_type="integration-tests")
    learned(dave, task_type="chaos")
    sharing.publish()
    theirs = SharedPattern.objects.get(source=dave)
    listed = bob.client.get("memory/learning?prefix=phase2/learning/shared/patterns/").json()["items"]
    assert [item["key"] for item in listed] == sorted(f"phase2/learning/shared/patterns/{pk}"
                                                      for pk in (first.pk, second.pk))
    listed = dave.client.get("memory/learning?prefix=phase2/learning/shared/").json()["items"]
    assert [item["value"]["id"] for item in listed] == [str(theirs.pk)]


def test_listing_pages_through_the_keys(alice, bob):
    for task_type in ("a", "b", "c"):
        shared_by(alice, task_type=task_type)
    keys = sorted(f"phase2/learning/shared/patterns/{pk}" for pk in SharedPattern.objects.values_list("pk", flat=True))
    page = bob.client.get("memory/learning?prefix=phase2/learning/shared/patterns/&limit=2").json()
    assert [item["key"] for item in page["items"]] == keys[:2]
    rest = bob.client.get(f"memory/learning?prefix=phase2/learning/shared/patterns/&limit=2"
                          f"&cursor={page['next_cursor']}").json()
    assert [item["key"] for item in rest["items"]] == keys[2:] and rest["next_cursor"] is None


def test_a_quarantined_pattern_stays_readable_with_its_status(alice, bob):
    shared = shared_by(alice)
    sharing.quarantine(SharedPattern.objects.all(), "alice was rolled back")
    value = bob.client.get(f"{BASE}/{shared.pk}").json()["value"]
    assert value["status"] == "quarantined" and value["quarantine_reason"] == "alice was rolled back"
    assert value["quarantined_at"] is not None
