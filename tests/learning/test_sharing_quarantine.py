"""Quarantine: after a rollback, what the agent shared since the restored
version is withdrawn from the swarm and from its importers."""

from datetime import timedelta

import pytest
from django.db import transaction

from learning import safeguard, sharing, versions
from learning.models import LearningProfile, PatternImport, SharedPattern, Strategy, VersionReason
from qefleet.memory.models import Pattern
from tests.learning.sharing_helpers import learned

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(alice, bob, carol):
    """alice shares unit-tests before v1 and load-tests after it; bob and carol import both."""
    learned(alice, task_type="unit-tests")
    version = versions.capture(alice, VersionReason.ON_DEMAND)
    sharing.share_and_import(now=version.created_at - timedelta(minutes=5))
    learned(alice, task_type="load-tests")
    sharing.share_and_import(now=version.created_at + timedelta(minutes=5))
    before = SharedPattern.objects.get(task_type="unit-tests")
    after = SharedPattern.objects.get(task_type="load-tests")
    return version, before, after


def test_it_quarantines_what_was_shared_after_the_version(alice, history):
    version, before, after = history
    assert PatternImport.objects.filter(shared=after).count() == 2
    assert sharing.quarantine_since(alice, version, "rolled back to v1") == 1
    after.refresh_from_db()
    before.refresh_from_db()
    assert after.status == "quarantined" and after.quarantine_reason == "rolled back to v1"
    assert after.quarantined_at is not None
    assert before.status == "active"
    assert set(PatternImport.objects.filter(shared=after).values_list("status", flat=True)) == {"quarantined"}
    assert set(PatternImport.objects.filter(shared=before).values_list("status", flat=True)) == {"probation"}


def test_the_swarm_copy_goes_private(alice, bob, history):
    version, _, after = history
    sharing.quarantine_since(alice, version, "rolled back")
    copy = Pattern.objects.get(owner=alice, pattern=after.key)
    assert copy.access_level == "private" and copy.metadata["status"] == "quarantined"
    assert bob.client.get(f"patterns/{copy.pk}").status_code == 404
    assert Pattern.objects.get(owner=alice, pattern="unit-tests:parallel-execution").access_level == "swarm"


def test_quarantined_imports_are_never_used_nor_taken_again(alice, bob, history):
    version, _, _ = history
    sharing.quarantine_since(alice, version, "rolled back")
    assert sharing.imported_choice(bob, "load-tests", Strategy.catalog()) is None
    assert sharing.import_shared()["imported"] == 0
    assert sharing.quarantine_since(alice, version, "again") == 0


def test_decided_imports_are_quarantined_too(alice, bob, history):
    version, _, after = history
    learned(bob, task_type="load-tests", uses=sharing.CONFIRM_USES, successes=10)
    assert sharing.import_shared()["confirmed"] == 1
    sharing.quarantine_since(alice, version, "rolled back")
    assert PatternImport.objects.get(agent=bob, shared=after).status == "quarantined"


def test_a_rollback_quarantines_through_the_safeguard(alice, bob, history):
    version, before, after = history
    with transaction.atomic():
        profile = LearningProfile.objects.select_for_update().get(agent=alice)
        safeguard.roll_back(alice, profile, version, automatic=False, actor="operator")
    assert SharedPattern.objects.get(pk=after.pk).status == "quarantined"
    assert SharedPattern.objects.get(pk=before.pk).status == "active"
    assert PatternImport.objects.get(agent=bob, shared=after).status == "quarantined"
    assert "rolled back to v1" in SharedPattern.objects.get(pk=after.pk).quarantine_reason


def test_a_quarantined_pattern_is_not_shared_again_for_a_week(alice, history):
    version, _, after = history
    sharing.quarantine_since(alice, version, "rolled back")
    # Alice's learned pattern still qualifies, but the quarantine holds.
    assert sharing.publish()["published"] == 0
    later = after.published_at + timedelta(days=sharing.QUARANTINE_DAYS, hours=1)
    assert sharing.publish(now=later)["published"] == 1
    assert SharedPattern.objects.filter(task_type="load-tests", status="active").count() == 1
