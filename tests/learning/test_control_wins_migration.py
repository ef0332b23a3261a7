"""Migration 0018 gives the tests the control won, stored as "winner"
before the state existed, their own state, and their timeline too."""

import importlib

import pytest
from django.apps import apps

from learning.models import ABTest, ABTestState, ABTransition
from tests.dashboard.helpers import applied_test, control_wins_test

pytestmark = pytest.mark.django_db

migration = importlib.import_module("learning.migrations.0018_control_wins_state_and_withdrawn_label")


def test_it_moves_tests_the_control_won_and_only_them(alice):
    won, applied = control_wins_test(alice), applied_test(alice, "integration-tests")
    ABTest.objects.filter(pk=won.pk).update(state=ABTestState.WINNER)  # as stored before the state existed
    ABTransition.objects.filter(test=won, to_state=ABTestState.CONTROL_WINS).update(to_state=ABTestState.WINNER)
    migration.control_wins(apps, None)
    won.refresh_from_db()
    applied.refresh_from_db()
    assert won.state == ABTestState.CONTROL_WINS
    assert list(won.transitions.values_list("to_state", flat=True)) == ["draft", "running", "control-wins"]
    assert applied.state == ABTestState.MONITORING
    assert "winner" in applied.transitions.values_list("to_state", flat=True)
    migration.winner_again(apps, None)
    assert ABTest.objects.get(pk=won.pk).state == ABTestState.WINNER
