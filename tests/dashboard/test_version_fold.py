import pytest
from django.contrib.auth.models import User

from learning import operations, versions
from learning.models import StateVersion, VersionReason
from tests.learning.helpers import run_task

pytestmark = pytest.mark.django_db


def test_it_shows_the_newest_versions_and_the_live_one_and_folds_the_rest(operator, history, alice):
    for task in range(10):
        run_task(alice, success=task % 2 == 0)  # a changed state, so each capture keeps a version
        versions.capture(alice, VersionReason.ON_DEMAND)
    operations.roll_back_to(alice, 1, User.objects.get(username="operator"), "worse")
    response = operator.get("/ops/agents/alice/")
    shown = [row.version.number for row in response.context["versions"]]
    older = [row.version.number for row in response.context["older_versions"]]
    every = list(StateVersion.objects.filter(agent=alice).order_by("-number").values_list("number", flat=True))
    assert shown == every[:8] + [1]  # the newest eight, then the live v1 where it stands
    assert older == every[8:-1]
    assert f"Older versions ({len(older)})" in response.content.decode()
