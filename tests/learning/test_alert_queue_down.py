"""An alert is stored even when its notification cannot be queued."""

from unittest import mock

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from learning import alerts
from learning.models import Alert, Severity

pytestmark = pytest.mark.django_db


def test_it_keeps_the_alert_when_the_broker_is_down(django_capture_on_commit_callbacks):
    with mock.patch("django_q.tasks.async_task", side_effect=RedisConnectionError("connection refused")) as queue:
        with django_capture_on_commit_callbacks(execute=True):
            alert, created = alerts.raise_alert("safeguard:degraded", Severity.HIGH, "test-executor degraded", {})
    assert created and queue.called
    assert Alert.objects.get().pk == alert.pk
