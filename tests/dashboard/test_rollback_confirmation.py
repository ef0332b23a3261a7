"""Rolling back goes through a confirmation page that shows the preview
and asks for a reason; the reason is required and audited; the live version
has no rollback."""

import pytest

from learning import versions
from learning.models import Rollback, VersionReason
from qefleet.memory.models import AuditEvent
from tests.learning.helpers import profile, run_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def learned(alice):
    for _ in range(5):
        run_task(alice)
    good = versions.capture(alice, VersionReason.ON_DEMAND)
    for _ in range(5):
        run_task(alice, success=False, complexity=0.1)
    versions.capture(alice, VersionReason.ON_DEMAND)  # v2, live
    return good


def test_the_confirmation_shows_the_preview_and_asks_why(operator, learned):
    response = operator.get("/ops/agents/alice/rollback/confirm?version=1")
    page = response.content.decode()
    assert response.status_code == 200 and "Roll alice back to v1?" in page
    assert 'data-preview-url="/ops/agents/alice/preview?version=1"' in page
    assert 'name="reason" type="text" maxlength="200" required' in page
    assert 'action="/ops/agents/alice/rollback"' in page and 'name="version" value="1"' in page
    assert not Rollback.objects.exists()  # looking changes nothing


def test_the_live_version_offers_no_rollback(operator, learned):
    page = operator.get("/ops/agents/alice/rollback/confirm?version=2").content.decode()
    assert "v2 is the live version" in page and 'action="/ops/agents/alice/rollback"' not in page


def test_a_rollback_without_a_reason_is_refused_and_changes_nothing(operator, learned):
    before = versions.checksum(versions.learned_state(learned.agent, profile(learned.agent)))
    response = operator.post("/ops/agents/alice/rollback", {"version": "1", "reason": ""})
    assert response.status_code == 400 and "reason" in response.content.decode()
    assert versions.checksum(versions.learned_state(learned.agent, profile(learned.agent))) == before
    assert not Rollback.objects.exists() and not AuditEvent.objects.filter(action="rollback").exists()


def test_the_reason_is_audited_and_shown(operator, learned):
    operator.post("/ops/agents/alice/rollback", {"version": "1", "reason": "score slipping since the deploy"})
    assert AuditEvent.objects.get(action="rollback").detail["reason"] == "score slipping since the deploy"
    assert Rollback.objects.get().reason == "score slipping since the deploy"
    page = operator.get("/ops/agents/alice/").content.decode()
    assert "operator rolled back alice from v3 to v1: “score slipping since the deploy”" in page


@pytest.mark.parametrize("query, status", [("", 400), ("?version=x", 400), ("?version=9", 404)])
def test_the_confirmation_needs_an_existing_version(operator, learned, query, status):
    assert operator.get(f"/ops/agents/alice/rollback/confirm{query}").status_code == status


def test_viewers_get_no_confirmation(viewer, learned):
    assert viewer.get("/ops/agents/alice/rollback/confirm?version=1").status_code == 403
