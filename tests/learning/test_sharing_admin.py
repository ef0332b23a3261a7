"""The sharing admin: browse-only lists, and the quarantine action for
whoever may roll agents back."""

import pytest
from django.contrib.auth.models import Permission as AuthPermission
from django.contrib.auth.models import User
from django.urls import reverse

from learning import sharing
from learning.models import PatternImport, SharedPattern
from qefleet.memory.models import AuditEvent
from tests.learning.sharing_helpers import shared_by

pytestmark = pytest.mark.django_db

SHARED = reverse("admin:learning_sharedpattern_changelist")
IMPORTS = reverse("admin:learning_patternimport_changelist")


def staff(client, *codenames):
    user = User.objects.create_user("staff", password="unused-password-123", is_staff=True)
    user.user_permissions.add(*AuthPermission.objects.filter(content_type__app_label="learning",
                                                             codename__in=codenames))
    client.force_login(user)
    return client


@pytest.fixture
def shared(alice, bob, carol):
    pattern = shared_by(alice)
    sharing.import_shared()
    return pattern


def test_it_lists_shared_patterns_and_imports(admin_client, shared):
    response = admin_client.get(SHARED, {"status": "active"})
    assert [item.pk for item in response.context["cl"].result_list] == [shared.pk]
    response = admin_client.get(IMPORTS, {"q": "alice"})  # by source
    assert {item.agent.agent_id for item in response.context["cl"].result_list} == {"bob", "carol"}
    assert admin_client.get(reverse("admin:learning_sharedpattern_change", args=[shared.pk])).status_code == 200


def test_they_are_never_added_or_edited_here(admin_client, shared):
    assert admin_client.get(reverse("admin:learning_sharedpattern_add")).status_code == 403
    assert admin_client.get(reverse("admin:learning_patternimport_add")).status_code == 403
    item = PatternImport.objects.first()
    response = admin_client.post(reverse("admin:learning_patternimport_change", args=[item.pk]),
                                 {"status": "active", "confidence": "1"})
    assert response.status_code == 403


def test_an_operator_quarantines_selected_patterns(client, shared):
    operator = staff(client, "view_sharedpattern", "rollback_agent")
    response = operator.post(SHARED, {"action": "quarantine_selected", "_selected_action": [str(shared.pk)]},
                             follow=True)
    assert "Quarantined 1 shared pattern and their imports." in response.content.decode()
    shared.refresh_from_db()
    assert shared.status == "quarantined" and shared.quarantine_reason == "quarantined by staff"
    assert set(PatternImport.objects.values_list("status", flat=True)) == {"quarantined"}
    audit = AuditEvent.objects.get(action="quarantine_shared_pattern")
    assert audit.actor == "staff" and audit.target == f"shared_pattern:{shared.pk}"


def test_the_action_needs_the_rollback_permission(client, shared):
    viewer = staff(client, "view_sharedpattern")
    response = viewer.get(SHARED)
    assert "quarantine_selected" not in response.content.decode()
    viewer.post(SHARED, {"action": "quarantine_selected", "_selected_action": [str(shared.pk)]})
    assert SharedPattern.objects.get().status == "active"
