"""Imported patterns not used: an import no decision of the importer's
window came from, counted for the importer and for the agent that shared it."""

import pytest

from learning import sharing
from learning.learning_health import pattern_use, task_groups
from learning.models import LearningProfile, PatternImport
from tests.learning.helpers import run_task
from tests.learning.sharing_helpers import shared_by

pytestmark = pytest.mark.django_db


def use_now(agent=None):
    return pattern_use(task_groups()[0], agent)


def test_an_import_is_used_once_a_decision_of_the_window_comes_from_it(alice, bob, carol):
    shared_by(alice)  # unit-tests: parallel-execution
    sharing.import_shared()
    assert PatternImport.objects.count() == 2  # bob and carol
    assert use_now()[bob.pk] == {"imports": 1, "imports_unused": 1, "shared_imports": 0, "shared_unused": 0}
    # Bob's first unit-tests task knows nothing of its own: the imported pattern chooses (no exploring).
    LearningProfile.objects.create(agent=bob, exploration_rate=0.0, min_exploration_rate=0.0)
    decision, _ = run_task(bob)
    assert decision["strategy"] == "parallel-execution" and "shared that" in decision["reasoning"]
    use = use_now()
    assert use[bob.pk]["imports_unused"] == 0 and use[carol.pk]["imports_unused"] == 1
    assert use[alice.pk] == {"imports": 0, "imports_unused": 0, "shared_imports": 2, "shared_unused": 1}
    assert use_now(bob) == {
        bob.pk: use[bob.pk],
        alice.pk: {"imports": 0, "imports_unused": 0, "shared_imports": 1, "shared_unused": 0},
    }
    health = bob.client.get("agents/bob/learning").json()["learning_health"]
    assert health["patterns"]["imports_unused"] == 0
    assert health["borrowed_sources"] == [
        {"source": "shared", "words": "a pattern imported from its swarm", "decisions": 1}
    ]


def test_a_use_that_left_the_window_no_longer_counts(bob, alice):
    shared_by(alice)
    sharing.import_shared()
    LearningProfile.objects.create(agent=bob, exploration_rate=0.0, min_exploration_rate=0.0)
    run_task(bob)  # chosen by the import; its own values take over from here
    for _ in range(10):
        run_task(bob)
    assert pattern_use(task_groups(10)[0], bob)[bob.pk]["imports_unused"] == 1
