"""Calibrated safeguard settings: proposed where a drill shows the rule
miscalibrated for an agent's traffic, applied by an admin, audited."""

import pytest

from learning import drills
from learning.models import DrillTrigger, Safeguard
from qefleet.memory.models import AuditEvent
from tests.learning.drill_helpers import logged_history

pytestmark = pytest.mark.django_db


@pytest.fixture
def noisy(alice):
    """Durations spread over +- 3 s make a 20-task window's mean noisy: too many warnings."""
    logged_history(alice, tasks=600, success_rate=0.7, ms_spread=3000)
    return drills.drill(alice, DrillTrigger.COMMAND, seed=1)


def test_a_miscalibrated_rule_gets_a_proposal(noisy):
    proposal = noisy.figures["calibration"]
    assert proposal["changed"] and proposal["stable_rollbacks"] == 0
    assert proposal["rule"]["window"] > 20 or proposal["rule"]["z"] > 1.96


def test_an_admin_applies_it_once_audited(admin, viewer, noisy):
    proposal = noisy.figures["calibration"]["rule"]
    page = admin.get("/ops/statistics/alice/").content.decode()
    assert (
        "Apply this setting" in page
        and "Apply this setting" not in viewer.get("/ops/statistics/alice/").content.decode()
    )
    response = admin.post("/ops/statistics/alice/calibrate", {"drill_run": noisy.pk})
    assert response.status_code == 302
    guard = Safeguard.objects.get(agent__agent_id="alice")
    assert (guard.window, guard.confidence_z, guard.consecutive, guard.check_every) == (
        proposal["window"],
        proposal["z"],
        proposal["consecutive"],
        proposal["check_every"],
    )
    assert guard.known_good_after >= guard.window
    audit = AuditEvent.objects.get(action="calibrate_safeguard")
    assert audit.detail["before"]["window"] == 20 and audit.detail["after"]["window"] == proposal["window"]
    admin.post("/ops/statistics/alice/calibrate", {"drill_run": noisy.pk})  # a second click changes nothing
    assert AuditEvent.objects.filter(action="calibrate_safeguard").count() == 1


def test_an_operator_cannot_apply_it(operator, noisy):
    assert operator.post("/ops/statistics/alice/calibrate", {"drill_run": noisy.pk}).status_code == 403


def test_a_bad_drill_run_is_refused(admin, noisy):
    assert admin.post("/ops/statistics/alice/calibrate", {"drill_run": "x"}).status_code == 400
    assert admin.post("/ops/statistics/alice/calibrate", {"drill_run": noisy.pk + 99}).status_code == 404
    assert not AuditEvent.objects.filter(action="calibrate_safeguard").exists()
