import numpy as np
import pytest
from django.core import mail

from learning import alerts, safeguard, versions
from learning.core import stats
from learning.models import (
    Alert, AlertState, Rollback, Safeguard, SafeguardState, StateVersion, VersionReason,
)
from qefleet.memory.models import Event
from tests.learning.helpers import degrade, healthy_history, profile, run_task

pytestmark = pytest.mark.django_db


def test_judging_needs_the_interval_below_the_line():
    ok = np.full(20, 0.9)
    assert stats.judge(ok, 0.9, 0.0, 5, 1.645)[0] == SafeguardState.OK
    noisy = np.array([1.0, 0.7] * 10)  # mean 0.85, under the 0.855 line, but noisy
    assert stats.judge(noisy, 0.9, 0.0, 5, 1.645)[0] == SafeguardState.WARNING
    bad = np.full(20, 0.5)
    state, change = stats.judge(bad, 0.9, 0.0, 5, 1.645)
    assert state == SafeguardState.DEGRADED and change == pytest.approx(-44.44, abs=0.01)


def test_there_is_no_verdict_without_a_known_good_version(alice):
    for _ in range(20):
        _, body = run_task(alice)
    assert body["safeguard"] == {"state": "insufficient-data", "consecutive_degraded": 0, "change_pct": None}


def test_a_version_healthy_for_a_window_becomes_known_good(alice):
    version = healthy_history(alice)
    version.refresh_from_db()
    guard = Safeguard.objects.get(agent=alice)
    assert version.known_good and guard.reference_version == version
    assert guard.reference_score > 0.8


def test_the_third_consecutive_degraded_check_rolls_back(alice):
    good = healthy_history(alice)
    bodies = degrade(alice, 30)
    states = [body["safeguard"]["consecutive_degraded"] for body in bodies[9::10]]
    assert states == [1, 2, 0]  # reset after acting
    assert [body["rolled_back"] for body in bodies].count(True) == 1 and bodies[-1]["rolled_back"]
    assert versions.checksum(versions.learned_state(alice, profile(alice))) == good.checksum
    assert profile(alice).enabled is False
    assert Event.objects.filter(owner=alice, type="learning:rollback").count() == 1
    alert = Alert.objects.get(kind="safeguard:rollback")
    assert alert.severity == "high" and alert.numbers["to"] == "v1"
    rollback = Rollback.objects.get()
    assert rollback.automatic and rollback.to_version == good
    assert rollback.from_version.reason == VersionReason.BEFORE_ROLLBACK
    assert rollback.numbers["checks"] == 3 and rollback.numbers["change_pct"] < -5


def test_a_healthy_check_resets_the_count(alice):
    healthy_history(alice)
    counts = [body["safeguard"]["consecutive_degraded"] for body in degrade(alice, 10)]
    for _ in range(20):
        _, body = run_task(alice)
        counts.append(body["safeguard"]["consecutive_degraded"])
    assert counts[9::10] == [1, 2, 0]  # the window still held bad tasks at task 60
    assert not Rollback.objects.exists()


@pytest.mark.parametrize("action,kind", [("notify", "safeguard:degraded"), ("freeze", "safeguard:frozen")])
def test_the_other_actions(alice, action, kind):
    healthy_history(alice)
    Safeguard.objects.filter(agent=alice).update(action=action)
    before = versions.checksum(versions.learned_state(alice, profile(alice)))
    bodies = degrade(alice, 30)
    assert not any(body["rolled_back"] for body in bodies)
    assert not Rollback.objects.exists()
    assert Alert.objects.get().kind == kind
    assert profile(alice).enabled is (action == "notify")
    if action == "freeze":
        assert versions.checksum(versions.learned_state(alice, profile(alice))) != before  # frozen, not restored


def test_a_dry_run_records_what_would_have_happened(alice):
    healthy_history(alice)
    Safeguard.objects.filter(agent=alice).update(dry_run=True)
    degrade(alice, 30)
    assert not Rollback.objects.exists() and profile(alice).enabled
    event = Event.objects.get(type="learning:rollback_dry_run")
    assert event.payload["action"] == "rollback" and event.payload["target"] == "v1"
    assert Alert.objects.get().severity == "warning"


def test_the_flap_guard_stops_after_the_daily_budget(alice):
    good = healthy_history(alice)
    Safeguard.objects.filter(agent=alice).update(max_auto_rollbacks=1)
    degrade(alice, 30)
    assert Rollback.objects.count() == 1
    safeguard.re_enable(profile(alice))
    degrade(alice, 30)
    assert Rollback.objects.count() == 1
    assert Alert.objects.filter(kind="safeguard:operator_needed").count() == 1
    # Not restored a second time: the live state is what the degraded tasks
    # left, and the known-good version is stored as it was.
    live = versions.checksum(versions.learned_state(alice, profile(alice)))
    assert live != good.checksum
    assert StateVersion.objects.values_list("checksum", flat=True).get(pk=good.pk) == good.checksum


def test_undo_restores_the_state_before_the_rollback(alice, admin_user):
    healthy_history(alice)
    degrade(alice, 30)
    rollback = Rollback.objects.get()
    safeguard.roll_forward(alice, profile(alice), rollback, actor="admin")
    assert versions.checksum(versions.learned_state(alice, profile(alice))) == rollback.from_version.checksum
    assert Rollback.objects.count() == 2 and Rollback.objects.first().actor == "admin"


def test_alerts_deduplicate_and_resolve_after_healthy_checks(alice):
    first, created = alerts.raise_alert("safeguard:degraded", "high", "x", {"n": 1}, alice)
    again, created_again = alerts.raise_alert("safeguard:degraded", "high", "x", {"n": 2}, alice)
    assert created and not created_again and first.pk == again.pk
    again.refresh_from_db()
    assert again.occurrences == 2 and again.numbers == {"n": 2}
    assert alerts.resolve_healthy(alice, 2) == 0
    assert alerts.resolve_healthy(alice, 3) == 1
    assert Alert.objects.get().state == AlertState.RESOLVED


def test_a_rollbacks_alert_stays_open_while_learning_is_off(alice):
    healthy_history(alice)
    degrade(alice, 30)
    assert profile(alice).enabled is False
    for _ in range(40):  # healthy checks of the restored state
        run_task(alice)
    assert Alert.objects.get(kind="safeguard:rollback").state == AlertState.FIRING


def test_notifications_email_and_sign_the_webhook(alice, settings):
    import hashlib
    import hmac
    import http.server
    import json
    import threading

    received = {}

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received["body"] = self.rfile.read(int(self.headers["Content-Length"]))
            received["signature"] = self.headers["X-QEFleet-Signature"]
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    with http.server.HTTPServer(("127.0.0.1", 0), Hook) as server:  # closes its socket at the end
        threading.Thread(target=server.handle_request, daemon=True).start()
        settings.ALERT_EMAILS = ["ops@example.com"]
        settings.ALERT_WEBHOOK_URL = f"http://127.0.0.1:{server.server_port}/hook"
        settings.ALERT_WEBHOOK_SECRET = "s3cret"
        alert, _ = alerts.raise_alert("safeguard:degraded", "high", "alice degraded", {"n": 1}, alice)
        assert alerts.notify(alert.pk) == "sent"
    assert mail.outbox[0].subject == "[QE Fleet high] alice degraded"
    expected = hmac.new(b"s3cret", received["body"], hashlib.sha256).hexdigest()
    assert received["signature"] == f"sha256={expected}"
    assert json.loads(received["body"])["summary"] == "alice degraded"


def test_a_silenced_alert_is_not_notified(alice, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.ALERT_EMAILS = ["ops@example.com"]
    alert, _ = alerts.raise_alert("safeguard:degraded", "high", "x", {}, alice)
    Alert.objects.filter(pk=alert.pk).update(silenced_until=timezone.now() + timedelta(hours=1))
    assert alerts.notify(alert.pk) == "skipped" and not mail.outbox


def test_the_learning_status_shows_the_safeguard(alice):
    healthy_history(alice)
    for _ in range(10):
        run_task(alice)
    body = alice.client.get("agents/alice/learning").json()
    assert body["safeguard"]["state"] == "ok" and body["policy_version"] == "v1+60"
    assert StateVersion.objects.get().known_good


def test_no_further_action_while_learning_is_off(alice):
    healthy_history(alice)
    degrade(alice, 30)
    bodies = degrade(alice, 40)  # still degraded, but the agent no longer learns
    assert Rollback.objects.count() == 1 and not any(body["rolled_back"] for body in bodies)
    assert bodies[-1]["safeguard"]["consecutive_degraded"] >= 3
    assert Alert.objects.count() == 1


def test_the_reference_is_uncertain_too():
    window = np.array([0.9, 0.3] * 10)  # mean 0.6, SE ~0.069
    assert stats.judge(window, 0.8, 0.0, 5, 1.645)[0] == SafeguardState.DEGRADED
    assert stats.judge(window, 0.8, 0.08, 5, 1.645)[0] == SafeguardState.WARNING


def test_the_reference_averages_the_policys_last_tasks_whichever_version_ran_them(alice, monkeypatch):
    monkeypatch.setattr(safeguard, "REFERENCE_TASKS", 60)
    for number in range(20):  # before v1 went live: tasks 1 and 2 fail, outside the last 60; task 15 fails, inside
        run_task(alice, success=number + 1 not in (1, 2, 15))
    versions.capture(alice, VersionReason.ON_DEMAND)
    for _ in range(50):
        run_task(alice)
    guard = Safeguard.objects.get(agent=alice)
    expected = safeguard.scores_between(alice, 10, 69)
    assert guard.reference_score == pytest.approx(expected.mean())
    assert guard.reference_spread == pytest.approx(stats.standard_error(expected))
    assert guard.reference_score < safeguard.scores_between(alice, 21, 69).mean()  # not v1's tasks alone


def test_right_after_a_rollback_the_reference_stays_the_restored_versions(alice):
    healthy_history(alice)
    reference = Safeguard.objects.get(agent=alice).reference_score
    degrade(alice, 30)
    assert Rollback.objects.exists()
    for _ in range(30):
        run_task(alice)
    guard = Safeguard.objects.get(agent=alice)
    safeguard._measure_reference(alice, profile(alice), guard)  # too few tasks since the restore
    assert guard.reference_score == reference


def test_the_reference_never_reaches_back_before_the_last_restore(alice):
    healthy_history(alice)
    degrade(alice, 30)
    restored_at = Rollback.objects.get().from_version.task_count
    assert safeguard.last_restore_task(alice) == restored_at == 100
    for _ in range(60):
        run_task(alice)
    guard = Safeguard.objects.get(agent=alice)
    safeguard._measure_reference(alice, profile(alice), guard)
    assert guard.reference_score == pytest.approx(safeguard.scores_between(alice, 101, 159).mean())


def test_it_anchors_the_reference_at_an_undo_too(alice):
    healthy_history(alice)
    degrade(alice, 30)
    for _ in range(5):
        run_task(alice)
    safeguard.roll_forward(alice, profile(alice), Rollback.objects.get(), actor="admin")
    assert safeguard.last_restore_task(alice) == 105


def test_a_version_with_a_warning_since_it_went_live_does_not_become_known_good(alice):
    good = healthy_history(alice)
    for _ in range(30):
        run_task(alice)
    bodies = degrade(alice, 6)  # v2 is captured at task 105
    for _ in range(54):
        _, body = run_task(alice)
        bodies.append(body)
    assert bodies[9]["safeguard"]["state"] in ("warning", "degraded")  # the check at task 110
    assert bodies[-1]["safeguard"]["state"] == "ok"  # ok checks since, 55 tasks after it went live
    second = StateVersion.objects.get(agent=alice, number=2)
    assert not second.known_good
    assert Safeguard.objects.get(agent=alice).reference_version == good


def test_a_version_with_only_ok_checks_since_it_went_live_becomes_known_good(alice):
    healthy_history(alice)
    for _ in range(90):
        run_task(alice)  # v2 is captured at task 105, live for 50 ok tasks at 155, judged at 160
    second = StateVersion.objects.get(agent=alice, number=2)
    assert second.known_good and Safeguard.objects.get(agent=alice).reference_version == second
