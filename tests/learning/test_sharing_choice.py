"""imported_choice: the import a recommendation falls back on for a task type
the agent knows nothing of."""

import pytest

from learning import sharing
from learning.models import Decision, ImportStatus, LearningProfile, PatternImport, SharedPattern, Strategy
from tests.learning.helpers import recommend, strategy
from tests.learning.sharing_helpers import learned

pytestmark = pytest.mark.django_db


def take(agent, source, strategy_name, status, confidence, task_type="unit-tests"):
    shared = SharedPattern.objects.create(source=source, task_type=task_type, strategy=strategy(strategy_name),
                                          confidence=0.9, success_rate=0.9, lower_bound=0.8, uses=50)
    return PatternImport.objects.create(agent=agent, shared=shared, status=status, confidence=confidence)


def test_it_prefers_active_imports_then_confidence(alice, bob, carol, django_assert_num_queries):
    strategies = Strategy.catalog()
    take(bob, alice, "parallel-execution", ImportStatus.PROBATION, 0.47)
    best = take(bob, carol, "adaptive-retry", ImportStatus.ACTIVE, 0.86)
    take(bob, carol, "sequential-execution", ImportStatus.ACTIVE, 0.84)
    with django_assert_num_queries(1):
        index, chosen = sharing.imported_choice(bob, "unit-tests", strategies)
        assert chosen.shared.source.agent_id == "carol"
    assert chosen == best and strategies[index].name == "adaptive-retry"


def test_probation_imports_count_when_nothing_is_confirmed(alice, bob):
    strategies = Strategy.catalog()
    on_probation = take(bob, alice, "parallel-execution", ImportStatus.PROBATION, 0.45)
    assert sharing.imported_choice(bob, "unit-tests", strategies) == (
        [item.name for item in strategies].index("parallel-execution"), on_probation)


@pytest.mark.parametrize("status", [ImportStatus.REJECTED, ImportStatus.QUARANTINED])
def test_rejected_and_quarantined_imports_are_never_used(alice, bob, status):
    take(bob, alice, "parallel-execution", status, 0.9)
    assert sharing.imported_choice(bob, "unit-tests", Strategy.catalog()) is None


def test_only_imports_of_that_task_type_and_the_given_strategies(alice, bob):
    take(bob, alice, "parallel-execution", ImportStatus.ACTIVE, 0.9, task_type="load-tests")
    assert sharing.imported_choice(bob, "unit-tests", Strategy.catalog()) is None
    fallback = take(bob, alice, "adaptive-retry", ImportStatus.PROBATION, 0.4)
    take(bob, alice, "sequential-execution", ImportStatus.ACTIVE, 0.9)
    without_sequential = [item for item in Strategy.catalog() if item.name != "sequential-execution"]
    index, chosen = sharing.imported_choice(bob, "unit-tests", without_sequential)
    assert chosen == fallback and without_sequential[index].name == "adaptive-retry"


def test_another_agents_imports_do_not_count(alice, bob, carol):
    take(carol, alice, "parallel-execution", ImportStatus.ACTIVE, 0.9)
    assert sharing.imported_choice(bob, "unit-tests", Strategy.catalog()) is None


def test_an_import_informs_the_recommendation_for_an_unseen_task_type(alice, bob):
    LearningProfile.objects.create(agent=bob, exploration_rate=0.0, min_exploration_rate=0.0)
    learned(alice, strategy_name="parallel-execution")
    sharing.share_and_import()
    assert Strategy.default().name != "parallel-execution"
    decision = recommend(bob, type="unit-tests")
    assert decision["strategy"] == "parallel-execution"
    assert Decision.objects.get(pk=decision["decision_id"]).fallback == "shared"
    assert recommend(bob, type="integration-tests")["strategy"] == Strategy.default().name
