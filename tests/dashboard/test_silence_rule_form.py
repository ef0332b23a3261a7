"""The inbox's silence-rule form: operators add and end rules; bad input
answers 400 naming the field and stores nothing."""

from datetime import timedelta

import pytest
from django.utils import timezone

from learning import alerts
from learning.models import Alert, SilenceRule

pytestmark = pytest.mark.django_db


def until(hours=3):
    return (timezone.now() + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M")


def test_an_operator_adds_a_rule_that_silences_the_matching_card(operator, alice):
    alerts.raise_alert("failure:needs_operator", "warning", "alice validation", {}, alice, task_type="unit-tests")
    response = operator.post(
        "/ops/alerts/silences",
        {"kind": "failure:needs_operator", "agent": "alice", "until": until(), "comment": "fixtures rebuilt"},
    )
    assert response.status_code == 302
    rule = SilenceRule.objects.get()
    assert (rule.kind, rule.agent.agent_id, rule.created_by) == ("failure:needs_operator", "alice", "operator")
    page = operator.get("/ops/alerts/")
    assert page.context["inbox"].decisions == [] and page.context["inbox"].silenced_count == 1
    html = page.content.decode()
    assert f'id="silence-rule-{rule.pk}"' in html and "fixtures rebuilt" in html
    operator.post(f"/ops/alerts/silences/{rule.pk}/end")
    assert operator.get("/ops/alerts/").context["inbox"].decision_count == 1


@pytest.mark.parametrize(
    "form, field",
    [
        ({"until": until()}, "kind"),  # matches everything
        ({"agent": "nobody", "until": until()}, "agent"),
        ({"kind": "failure:needs_operator", "until": "tomorrow"}, "until"),
        ({"kind": "failure:needs_operator", "until": until(24 * 40)}, "until"),
        ({"kind": "failure:needs_operator", "severity": "dire", "until": until()}, "severity"),
    ],
)
def test_bad_input_answers_400_naming_the_field_and_stores_nothing(operator, alice, form, field):
    response = operator.post("/ops/alerts/silences", form)
    assert response.status_code == 400 and field in response.content.decode()
    assert not SilenceRule.objects.exists()


def test_viewers_cannot_add_rules(viewer, alice):
    assert viewer.post("/ops/alerts/silences", {"kind": "x", "until": until()}).status_code == 403
    assert not SilenceRule.objects.exists() and not Alert.objects.exists()
