"""Every dashboard page and action reads its parameters one way: a value it
cannot use answers 400 naming the parameter and changes nothing, never a 500
(digits that are not ASCII, NUL, out-of-range dates, overlong text)."""

import pytest

from learning import alerts
from learning.models import Rollback
from qefleet.memory.models import AuditEvent
from tests.learning.abtest_helpers import start_test

pytestmark = pytest.mark.django_db

SUPERSCRIPT_TWO = "\u00b2"  # "²".isdigit() is True, int("²") raises
ARABIC_SEVEN = "\u0667"  # int() reads it as 7: still not a number a URL should carry


@pytest.mark.parametrize("url, name", [
    ("/ops/agents/alice/?preview={}", "preview"),
    ("/ops/agents/alice/?qpage={}", "qpage"),
    ("/ops/agents/alice/preview?version={}", "version"),
    ("/ops/agents/alice/report/?days={}", "days"),
    ("/ops/report/?days={}", "days"),
    ("/ops/report.csv?days={}", "days"),
    ("/ops/agents/alice/decisions.csv?days={}", "days"),
    ("/ops/abtests/?page={}", "page"),
    ("/ops/patterns/?page={}", "page"),
])
@pytest.mark.parametrize("digits", [SUPERSCRIPT_TWO, ARABIC_SEVEN])
def test_it_answers_400_naming_a_number_parameter_given_non_ascii_digits(admin, history, url, name, digits):
    response = admin.get(url.format(digits))
    assert response.status_code == 400
    assert name in response.content.decode()


@pytest.mark.parametrize("url, name", [
    ("/ops/agents/alice/?q=a%00b", "q"),
    ("/ops/alerts/?agent=a%00b", "agent"),
    ("/ops/abtests/?agent=a%00b", "agent"),
    ("/ops/agents/alice/report/?start=2026-01-01%00&end=2026-01-02", "start"),
])
def test_it_answers_400_naming_a_text_parameter_holding_nul(admin, history, url, name):
    response = admin.get(url)
    assert response.status_code == 400
    assert name in response.content.decode()


@pytest.mark.parametrize("url, name", [
    ("/ops/agents/alice/?range=5d", "range"),
    ("/ops/alerts/?state=burning", "state"),
    ("/ops/alerts/?severity=apocalyptic", "severity"),
    ("/ops/abtests/?state=maybe", "state"),
    ("/ops/patterns/?status=famous", "status"),
    ("/ops/agents/alice/?q=" + "x" * 201, "q"),
])
def test_it_answers_400_naming_a_parameter_outside_its_values(admin, history, url, name):
    response = admin.get(url)
    assert response.status_code == 400
    assert name in response.content.decode()


def test_it_escapes_nothing_it_was_sent_into_the_400(admin, history):
    response = admin.get("/ops/alerts/?state=<script>alert(1)</script>")
    assert response.status_code == 400
    assert "<script>" not in response.content.decode()


@pytest.mark.parametrize("version", [SUPERSCRIPT_TWO, ARABIC_SEVEN, "1\x00", "-1", ""])
def test_it_refuses_a_rollback_to_a_version_that_is_not_a_number(operator, history, version):
    response = operator.post("/ops/agents/alice/rollback", {"version": version})
    assert response.status_code == 400
    assert "version" in response.content.decode()
    assert not Rollback.objects.exists() and not AuditEvent.objects.filter(action="rollback").exists()


@pytest.mark.parametrize("url, data, name", [
    ("/ops/agents/alice/rollback", {"version": "1", "reason": "bad\x00deploy"}, "reason"),
    ("/ops/agents/alice/rollback", {"version": "1", "reason": "x" * 201}, "reason"),
])
def test_it_refuses_an_action_whose_text_holds_nul_or_runs_too_long(operator, history, url, data, name):
    response = operator.post(url, data)
    assert response.status_code == 400
    assert name in response.content.decode()
    assert not Rollback.objects.exists()


@pytest.mark.parametrize("action, data, name", [
    ("acknowledge", {"note": "on\x00it"}, "note"),
    ("resolve", {"note": "x" * 501}, "note"),
    ("silence", {"until": "2099-01-01T00:00", "note": "a\x00b"}, "note"),
])
def test_it_refuses_an_alert_note_that_holds_nul_or_runs_too_long(operator, alice, action, data, name):
    alert, _ = alerts.raise_alert("safeguard:degraded", "high", "alice degraded", {}, alice)
    response = operator.post(f"/ops/alerts/{alert.pk}/{action}", data)
    assert response.status_code == 400
    assert name in response.content.decode()
    alert.refresh_from_db()
    assert (alert.state, alert.note) == ("firing", "")
    assert not AuditEvent.objects.filter(action__startswith="alert_").exists()


def test_it_refuses_an_abort_reason_holding_nul(admin, alice):
    test = start_test(alice, "unit-tests", horizon=200)
    response = admin.post(f"/ops/abtests/{test.pk}/abort", {"reason": "no\x00pe"})
    assert response.status_code == 400
    assert "reason" in response.content.decode()
    test.refresh_from_db()
    assert test.state == "running"


def test_it_still_reads_good_parameters(admin, history):
    assert admin.get("/ops/agents/alice/?range=30d&q=unit&qpage=1&preview=1").status_code == 200
    assert admin.get("/ops/agents/alice/?preview=known-good").status_code == 200
    assert admin.get("/ops/alerts/?state=all&severity=high&agent=alice&page=1").status_code == 200
    assert admin.get("/ops/agents/alice/preview?version=1").status_code == 200
    assert admin.get("/ops/report/?days=7").status_code == 200
