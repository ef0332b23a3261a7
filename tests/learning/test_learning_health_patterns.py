"""Patterns never used: an import no decision of the importer came from,
counted for the importer and for the agent that shared it."""

import pytest

from learning import sharing
from learning.learning_health import pattern_use
from learning.models import LearningProfile, PatternImport
from tests.learning.helpers import run_task
from tests.learning.sharing_helpers import shared_by

pytestmark = pytest.mark.django_db


def test_an_import_is_used_once_a_decision_comes_from_it(alice, bob, carol):
    shared_by(alice)  # unit-tests: parallel-execution
    sharing.import_shared()
    assert PatternImport.objects.count() == 2  # bob and carol
    assert pattern_use()[bob.pk] == {"imports": 1, "imports_never_used": 1, "shared_imports": 0, "shared_never_used": 0}
    # Bob's first unit-tests task knows nothing of its own: the imported pattern chooses (no exploring).
    LearningProfile.objects.create(agent=bob, exploration_rate=0.0, min_exploration_rate=0.0)
    decision, _ = run_task(bob)
    assert decision["strategy"] == "parallel-execution" and "shared that" in decision["reasoning"]
    use = pattern_use()
    assert use[bob.pk]["imports_never_used"] == 0 and use[carol.pk]["imports_never_used"] == 1
    assert use[alice.pk] == {"imports": 0, "imports_never_used": 0, "shared_imports": 2, "shared_never_used": 1}
    assert pattern_use(bob) == {
        bob.pk: use[bob.pk],
        alice.pk: {"imports": 0, "imports_never_used": 0, "shared_imports": 1, "shared_never_used": 0},
    }
    health = bob.client.get("agents/bob/learning").json()["learning_health"]
    assert health["patterns"]["imports_never_used"] == 0
    assert health["borrowed_sources"] == [
        {"source": "shared", "words": "a pattern imported from its swarm", "decisions": 1}
    ]
