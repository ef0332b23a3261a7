"""A rollback restores the agent's own learned state and leaves its swarm's pooled values."""

import pytest
from django.db.models import Q, Sum

from learning import versions
from learning.models import Execution, LearningProfile, PooledValue, QEntry, Rollback
from tests.learning.helpers import degrade, healthy_history

pytestmark = pytest.mark.django_db


def test_a_safeguard_rollback_restores_own_q_and_keeps_the_pool(alice):
    version = healthy_history(alice)
    pooled_before = PooledValue.objects.filter(abstract_key="*").aggregate(visits=Sum("visits"))["visits"]
    degrade(alice, 30)
    rollback = Rollback.objects.filter(agent=alice).latest("created_at")
    profile = LearningProfile.objects.get(agent=alice)
    # The agent's own state is a version's again, and it learns no more until re-enabled.
    assert versions.checksum(versions.learned_state(alice, profile)) == rollback.to_version.checksum
    assert not profile.enabled
    assert QEntry.objects.filter(agent=alice).aggregate(visits=Sum("visits"))["visits"] <= 70
    # The pool kept every outcome learned from, the degraded ones up to the rollback included: it is the swarm's.
    pooled_after = PooledValue.objects.filter(abstract_key="*").aggregate(visits=Sum("visits"))["visits"]
    learned = Execution.objects.filter(Q(response__learning_enabled=True) | Q(response__rolled_back=True)).count()
    assert pooled_before == 70 and pooled_after == learned > pooled_before and version.q_entries >= 1


def test_the_version_does_not_capture_the_swarms_pool(alice):
    healthy_history(alice)
    state = versions.learned_state(alice, LearningProfile.objects.get(agent=alice))
    assert set(state) == {"q", "patterns", "applied", "config"}
