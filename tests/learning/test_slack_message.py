"""The Slack-compatible webhook: a body with `text` and blocks, sent when
ALERT_SLACK_WEBHOOK_URL is set, with Slack's markup characters escaped."""

import json
from unittest import mock

import pytest

from learning import alerts

pytestmark = pytest.mark.django_db


def test_the_body_has_a_text_and_blocks_with_the_facts(alice):
    alert, _ = alerts.raise_alert(
        "safeguard:rollback",
        "high",
        "alice rolled back to v3 <@here> & more",
        {"change_pct": -12.5},
        alice,
        task_type="unit-tests",
    )
    body = alerts.slack_message(alert)
    assert body["text"] == "[QE Fleet high] alice rolled back to v3 <@here> & more"
    headline, context = body["blocks"]
    assert headline["text"]["text"] == "*[QE Fleet high] alice rolled back to v3 &lt;@here&gt; &amp; more*"
    facts = context["elements"][0]["text"]
    assert "safeguard:rollback · agent alice · unit-tests" in facts and "change_pct -12.5" in facts


def test_notify_posts_it_when_the_slack_url_is_set(alice, settings):
    settings.ALERT_SLACK_WEBHOOK_URL = "https://hooks.slack.example/services/T/B/X"
    settings.ALERT_WEBHOOK_URL, settings.ALERT_EMAILS = "", []
    alert, _ = alerts.raise_alert("safeguard:degraded", "high", "alice degraded", {}, alice)
    with mock.patch("urllib.request.urlopen") as urlopen:
        assert alerts.notify(alert.pk) == "sent"
    request = urlopen.call_args.args[0]
    assert request.full_url == settings.ALERT_SLACK_WEBHOOK_URL and request.get_method() == "POST"
    assert json.loads(request.data) == alerts.slack_message(alert)
