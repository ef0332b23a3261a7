"""Info alerts ask for no decision: they notify nobody (the inbox's digest
summarises them: tests/dashboard/test_alert_digest_page.py)."""

from unittest import mock

import pytest

from learning import alerts

pytestmark = pytest.mark.django_db


def test_an_info_alert_notifies_nobody_and_a_warning_does(alice, django_capture_on_commit_callbacks):
    with mock.patch("learning.alerts._queue_notification") as queue, django_capture_on_commit_callbacks(execute=True):
        alerts.raise_alert("failure:needs_operator", "info", "steady validation failures", {}, alice)
        warning, _ = alerts.raise_alert("safeguard:degraded", "warning", "alice degraded", {}, alice)
    assert [call.args for call in queue.call_args_list] == [(warning.pk,)]
