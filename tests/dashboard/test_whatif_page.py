"""The What-if page at /ops/whatif/, its estimate beside an undecided A/B
test, and the rollback preview's expected score."""

import pytest
from django.test import Client

from learning import versions
from learning.models import LearningProfile, VersionReason
from tests.dashboard.helpers import running_test
from tests.learning.offline_helpers import log_tasks

pytestmark = pytest.mark.django_db

QUESTION = "/ops/whatif/?policy=fixed&agent=alice&task_type=integration-tests&strategy=adaptive-retry"


def test_it_requires_a_login():
    response = Client().get("/ops/whatif/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_it_answers_with_the_estimate_its_interval_and_the_effective_sample_size(viewer, alice):
    log_tasks(alice, 1000)
    response = viewer.get(QUESTION)
    page = response.content.decode()
    answer = response.context["answer"]
    assert answer["rows"] == 1000 and "refused" not in answer
    success = answer["success"]["doubly_robust"]
    assert f"{success['low'] * 100:.1f} % to {success['high'] * 100:.1f} %" in page
    assert f"Effective sample size {answer['effective_samples']:.0f} of 1000" in page
    assert 'data-testid="whatif-outlook"' in page and "tasks per arm" in page
    assert 'aria-current="page">What if</a>' in page


def test_it_names_the_reason_when_the_logs_do_not_cover_the_policy(viewer, alice):
    log_tasks(alice, 300, only=(0, 1))
    page = viewer.get(QUESTION).content.decode()
    assert 'data-reason="no_overlap"' in page and "The logs cannot tell" in page


def test_a_missing_input_is_named_on_the_page(viewer, alice):
    page = viewer.get("/ops/whatif/?policy=fixed&agent=alice&strategy=adaptive-retry").content.decode()
    assert 'data-testid="whatif-error"' in page and "task_type: A fixed strategy is for one task type." in page


@pytest.mark.parametrize(("query", "name"), [("policy=guess", "policy"), ("policy=fixed&days=0", "days"),
                                             ("policy=fixed&agent=nobody", "agent"),
                                             ("policy=current&agent=alice&exploration_pct=101", "exploration_pct")])
def test_a_bad_parameter_is_a_400_naming_it(viewer, alice, query, name):
    response = viewer.get(f"/ops/whatif/?{query}")
    assert response.status_code == 400 and f'<p class="panel">{name} ' in response.content.decode()


def test_without_a_question_it_shows_the_form(viewer, alice):
    page = viewer.get("/ops/whatif/").content.decode()
    assert "Choose a policy and press Estimate" in page and 'name="strategy"' in page


def test_an_undecided_abtest_shows_what_the_logs_expect_of_its_treatment(viewer, alice):
    log_tasks(alice, 600, task_type="unit-tests")
    test = running_test(alice)
    page = viewer.get(f"/ops/abtests/{test.pk}/").content.decode()
    assert "Expected, from the logs" in page and 'data-testid="whatif-answer"' in page
    assert 'data-testid="abtest-outlook"' in page or 'data-testid="whatif-refused"' in page


def test_the_rollback_preview_carries_the_versions_expected_score(viewer, alice):
    LearningProfile.objects.get_or_create(agent=alice)
    version = versions.capture(alice, VersionReason.ON_DEMAND)
    log_tasks(alice, 400)
    offline = viewer.get(f"/ops/agents/alice/preview?version={version.number}").json()["offline"]
    assert offline["rows"] == 400
    assert "refused" in offline or offline["score"]["low"] <= offline["score"]["value"] <= offline["score"]["high"]
