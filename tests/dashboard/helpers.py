"""Helpers of the dashboard tests: a logged-in client per role, and
improvement-loop history built through the real services (A/B tests looked
at slot after slot, shared patterns imported)."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.test import Client

from learning import abtests, improvement, sharing
from tests.learning.abtest_helpers import set_arms, start_test
from tests.learning.sharing_helpers import shared_by


def client_for(role):
    """A client logged in as a user holding `role` (viewer, operator or admin)."""
    user, created = User.objects.get_or_create(username=role)
    if created:
        user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


def look_each_slot(test, counts):
    """Set the arms' counts, then let the loop look, once per slot up to the
    current one; counts: [((n, successes), (n, successes)) of control and
    treatment]. A test decided at a look is not looked at again."""
    latest = improvement.slot_start()
    for slots_ago, (control, treatment) in zip(range(len(counts) - 1, -1, -1), counts):
        set_arms(test, control, treatment)
        abtests.review(latest - timedelta(seconds=settings.CYCLE_SLOT_SECONDS * slots_ago))
    test.refresh_from_db()
    return test


def running_test(agent, task_type="unit-tests"):
    """Three looks, an interval still across zero at n = 120 of 200."""
    return look_each_slot(start_test(agent, task_type, horizon=200),
                          [((40, 30), (40, 31)), ((80, 60), (80, 64)), ((120, 90), (120, 97))])


def inconclusive_test(agent, task_type="unit-tests"):
    """Decided at its horizon of 100 per arm with the interval across zero."""
    return look_each_slot(start_test(agent, task_type, horizon=100), [((50, 37), (50, 39)), ((100, 75), (100, 78))])


def control_wins_test(agent, task_type="unit-tests"):
    """Decided at one look past its horizon of 100 per arm (the arms reached
    110 and 130 between looks): the treatment is clearly worse, and slower
    and more error-prone too, which no guardrail needs to judge."""
    return look_each_slot(start_test(agent, task_type, horizon=100),
                          [((130, 104, 2000, 5), (110, 55, 3000, 30))])


def applied_test(agent, task_type="unit-tests"):
    """A clear early winner, applied and now monitored."""
    return look_each_slot(start_test(agent, task_type, horizon=400), [((150, 75), (150, 140))])


def shared_and_imported(source, task_types=("unit-tests",)):
    """`source` shares a pattern per task type; its swarm imports them."""
    shared = [shared_by(source, task_type=task_type) for task_type in task_types]
    sharing.import_shared()
    return shared
