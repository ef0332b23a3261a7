"""The inbox's "silence until" form: an ISO text input sends a time
without an offset (minutes only), which the label says is UTC; a time with an
offset is read in its offset; a moment the calendar cannot hold, or past the
longest silence, answers 400 and changes nothing."""

import re
from datetime import UTC, datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.utils import timezone

from learning import alerts
from learning.alerts import MAX_SILENCE
from learning.models import Alert
from qefleet.memory.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def alert(alice):
    return alerts.raise_alert("safeguard:degraded", "high", "alice degraded", {}, alice)[0]


def silence(client, alert, until):
    return client.post(f"/ops/alerts/{alert.pk}/silence", {"until": until, "next": "/ops/alerts/"})


def test_it_silences_until_the_utc_time_the_form_sends(operator, alert):
    page = operator.get("/ops/alerts/").content.decode()
    assert '<label for="inbox-until-safeguarddegraded">Silence until (UTC)</label>' in page
    # A text input with an ISO pattern: a browser's datetime-local picker shows 12-hour local formats.
    sent, latest = re.search(
        r'id="inbox-until-safeguarddegraded" name="until" value="([^"]+)" type="text" pattern="[^"]+" '
        r'placeholder="YYYY-MM-DD HH:MM" title="24-hour UTC, YYYY-MM-DD HH:MM, at most ([^"]+)"', page).groups()
    assert timezone.now().strftime("%Y-%m-%dT%H:%M") < sent < latest
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d", sent)  # what the browser posts back, unchanged
    response = operator.post("/ops/alerts/bulk", {"alert": alert.pk, "action": "silence", "until": sent})
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.silenced_until == datetime.fromisoformat(sent).replace(tzinfo=UTC)


def test_it_reads_a_time_with_an_offset_in_that_offset(operator, alert):
    until = (timezone.now() + timedelta(hours=3)).replace(microsecond=0)
    assert silence(operator, alert, until.astimezone(dt_timezone(timedelta(hours=-5))).isoformat()).status_code == 302
    alert.refresh_from_db()
    assert alert.silenced_until == until


@pytest.mark.parametrize("until", [
    "9999-12-31T23:59:59-14:00",  # past the calendar once in UTC
    "9999-12-31T23:59",
    "2030-02-30T10:00",
    "next tuesday",
    "",
    "2020-01-01T00:00",  # the past
])
def test_it_refuses_a_moment_it_cannot_silence_until(operator, alert, until):
    response = silence(operator, alert, until)
    assert response.status_code == 400
    assert "until" in response.content.decode()
    alert.refresh_from_db()
    assert (alert.state, alert.silenced_until) == ("firing", None)
    assert not AuditEvent.objects.filter(action="alert_silence").exists()


def test_it_silences_for_at_most_the_longest_silence(operator, alert):
    longest = timezone.now() + MAX_SILENCE - timedelta(minutes=1)
    assert silence(operator, alert, longest.strftime("%Y-%m-%dT%H:%M")).status_code == 302
    assert Alert.objects.get(pk=alert.pk).silenced_until is not None
    assert silence(operator, alert, (longest + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M")).status_code == 400
