"""The Django admin of the swarm memory: every table lists, tokens are shown
once, ACL edits are validated and versioned, system-level records are for
superusers, and list pages never count a whole table."""

import json
import re
from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission as AuthPermission
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from qefleet.memory import admin as memory_admin
from qefleet.memory.models import (
    AccessLevel,
    Agent,
    AgentToken,
    Artifact,
    AuditEvent,
    ConsensusProposal,
    Event,
    GoapAction,
    GoapGoal,
    GoapPlan,
    Hint,
    MemoryACL,
    MemoryEntry,
    OodaCycle,
    Pattern,
    PerformanceMetric,
    SwarmSession,
    WorkflowState,
    digest,
)
from tests.memory.helpers import entry, entry_form, errors_of, save_entry, url

TOKEN_RE = re.compile(r"qef_[A-Za-z0-9_-]{20,}")


def owned(model, owner, level=AccessLevel.SWARM, **fields):
    record = model(**fields)
    record.assign_owner(owner, level)
    record.save()
    return record


@pytest.fixture
def rows(alice, bob, root):
    """A few rows in every table, some expired."""
    past = timezone.now() - timedelta(hours=1)
    AuditEvent.record("admin", "issue_token", "agent:alice")
    first = entry(alice, "notes/one")
    entry(alice, "notes/old", expires_at=past)
    entry(root, "system/config", AccessLevel.SYSTEM)
    MemoryACL.objects.create(entry=first, granted_permissions={"bob": ["read"]}, blocked_agents=[])
    owned(Event, alice, type="test.done", payload={"ok": True})
    owned(Event, alice, type="test.old", payload={}, expires_at=past)
    owned(Pattern, alice, pattern="retry-flaky", confidence=0.8)
    owned(PerformanceMetric, alice, metric="latency_ms", value=12.5, unit="ms")
    owned(WorkflowState, alice, name="release", step="build", checkpoint={"n": 1})
    owned(ConsensusProposal, alice, decision={"ship": True}, votes={"bob": "approve"}, quorum=2)
    owned(Artifact, alice, kind="code", path="src/a.py", sha256="ab" * 32, tags=["x"])
    owned(SwarmSession, alice, state={"a": 1}, checkpoints=[{"n": 1}])
    goal = owned(GoapGoal, alice, name="green build", conditions={"tests": "pass"})
    owned(GoapAction, alice, name="run tests", effects={"tests": "pass"}, agent_type="test-executor")
    owned(GoapPlan, alice, goal=goal, sequence=[1], total_cost=1.0)
    owned(OodaCycle, alice, observations=["slow"], result=None)
    owned(Hint, alice, key="hint/one", value="look at flaky tests")
    owned(Hint, alice, key="hint/old", value="gone", expires_at=past)
    return first


@pytest.fixture
def operator(db, client):
    """A staff user who is not a superuser, with every memory permission."""
    user = User.objects.create_user("operator", password="unused-password-123", is_staff=True)
    user.user_permissions.add(*AuthPermission.objects.filter(content_type__app_label="memory"))
    client.force_login(user)
    return client


# --- every table lists ------------------------------------------------------------


def test_it_registers_all_fifteen_tables_and_tokens():
    registered = {model for model in admin.site._registry if model._meta.app_label == "memory"}
    assert registered == {
        Agent, AgentToken, MemoryEntry, MemoryACL, Event, Pattern, PerformanceMetric, WorkflowState,
        ConsensusProposal, Artifact, SwarmSession, GoapGoal, GoapAction, GoapPlan, OodaCycle, Hint, AuditEvent,
    }


def test_it_uses_the_fast_base_class_everywhere():
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label != "memory":
            continue
        assert isinstance(model_admin, memory_admin.MemoryModelAdmin), model
        assert model_admin.show_full_result_count is False, model
        assert issubclass(model_admin.paginator, memory_admin.CappedPaginator), model


def test_it_lists_every_table(admin_client, rows):
    for model in admin.site._registry:
        if model._meta.app_label != "memory":
            continue
        response = admin_client.get(url(model))
        assert response.status_code == 200, model
        assert response.context["cl"].result_count >= 1, model


def test_it_opens_every_row_and_add_form(admin_client, rows):
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label != "memory":
            continue
        queryset = model_admin.get_queryset(None) if hasattr(model, "with_expired") else model._default_manager.all()
        for record in queryset:
            assert admin_client.get(url(model, "change", record.pk)).status_code == 200, (model, record)
        expected = 403 if model in (AgentToken, MemoryACL, AuditEvent) else 200
        assert admin_client.get(url(model, "add")).status_code == expected, model


def test_it_searches_and_filters_lists(admin_client, rows, alice):
    for model in (MemoryEntry, Event, Pattern, Hint, ConsensusProposal):
        for expiry in ("expired", "expires", "never"):
            assert admin_client.get(url(model), {"expiry": expiry}).status_code == 200
    response = admin_client.get(url(MemoryEntry), {"owner__agent_id__exact": alice.agent_id, "access_level": "private"})
    assert {str(row) for row in response.context["cl"].result_list} == {"default:notes/one", "default:notes/old"}
    response = admin_client.get(url(MemoryEntry), {"q": "notes/one"})
    assert [str(row) for row in response.context["cl"].result_list] == ["default:notes/one"]
    response = admin_client.get(url(Event), {"q": "test.done"})
    assert response.status_code == 200 and response.context["cl"].result_count == 1


@pytest.mark.parametrize("model, query", [
    (Agent, {"team": "core\x00"}), (MemoryEntry, {"owner__agent_id__exact": "alice\x00"}),
    (Event, {"type": "test\x00"}),
])
def test_it_answers_400_to_a_filter_value_holding_nul(admin_client, rows, model, query):
    """PostgreSQL refuses NUL in text (a 500); SQLite matched nothing."""
    assert admin_client.get(url(model), query).status_code == 400


def test_it_shows_expired_rows_not_yet_swept(admin_client, rows):
    response = admin_client.get(url(MemoryEntry), {"expiry": "expired"})
    shown = list(response.context["cl"].result_list)
    assert [str(row) for row in shown] == ["default:notes/old"]
    assert MemoryEntry.objects.filter(key="notes/old").count() == 0  # hidden from the API's manager
    assert "icon-yes" in response.content.decode()  # the "expired" column
    assert admin_client.get(url(MemoryEntry, "change", shown[0].pk)).status_code == 200


def test_it_never_renders_a_json_box_as_null(admin_client, rows):
    """Clearing a NOT NULL JSON box stores its default, not NULL (a 500)."""
    record = rows
    response = admin_client.post(url(MemoryEntry, "change", record.pk), entry_form(admin_client, record, metadata=""))
    assert response.status_code == 302
    record.refresh_from_db()
    assert record.metadata == {}


# --- tokens --------------------------------------------------------------------------


def test_it_issues_a_token_shown_once_whose_digest_alone_is_stored(admin_client, alice):
    first = admin_client.post(url(Agent), {"action": "issue_token", "_selected_action": [alice.pk]})
    assert first.status_code == 200
    assert not TOKEN_RE.search(first.content.decode())  # step 1 only asks for a label

    response = admin_client.post(
        url(Agent), {"action": "issue_token", "_selected_action": [alice.pk], "apply": "yes", "label": "ci runner"}
    )
    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]
    plain = TOKEN_RE.findall(response.content.decode())
    assert len(plain) == 1
    plain = plain[0]
    assert AgentToken.authenticate(plain) == alice

    token = AgentToken.objects.get(label="ci runner")
    assert token.agent == alice and token.digest == digest(plain)
    assert plain not in [token.prefix, token.digest, token.label] and plain.startswith("qef_" + token.prefix)
    assert not AgentToken.objects.filter(digest=plain).exists()

    # Nowhere else: not in a cookie or message, not on the agent or token pages.
    assert plain not in str(response.cookies)
    for page in (url(Agent), url(Agent, "change", alice.pk), url(AgentToken), url(AgentToken, "change", token.pk)):
        content = admin_client.get(page).content.decode()
        assert plain not in content and token.digest not in content
        assert token.prefix in content or page == url(Agent)


def test_it_issues_tokens_with_an_expiry_and_rejects_one_in_the_past(admin_client, alice):
    base = {"action": "issue_token", "_selected_action": [alice.pk], "apply": "yes"}
    response = admin_client.post(url(Agent), {**base, "expires_at_0": "2001-01-01", "expires_at_1": "00:00:00"})
    assert response.status_code == 200 and not TOKEN_RE.search(response.content.decode())
    assert "must be in the future" in response.content.decode()
    count = AgentToken.objects.filter(agent=alice).count()

    response = admin_client.post(url(Agent), {**base, "expires_at_0": "2999-01-01", "expires_at_1": "00:00:00"})
    plain = TOKEN_RE.search(response.content.decode()).group(0)
    assert AgentToken.objects.filter(agent=alice).count() == count + 1
    token = AgentToken.objects.get(digest=digest(plain))
    assert token.expires_at.year == 2999 and token.label.startswith("issued in the admin by")


def test_it_lets_only_superusers_issue_tokens_for_system_agents(operator, root, alice):
    count = AgentToken.objects.count()
    response = operator.post(
        url(Agent), {"action": "issue_token", "_selected_action": [root.pk], "apply": "yes"}, follow=True
    )
    assert "Only superusers may issue tokens for system agents" in response.content.decode()
    assert AgentToken.objects.count() == count
    response = operator.post(url(Agent), {"action": "issue_token", "_selected_action": [alice.pk], "apply": "yes"})
    assert AgentToken.authenticate(TOKEN_RE.search(response.content.decode()).group(0)) == alice


def test_it_revokes_selected_tokens(admin_client, alice, bob):
    alice_token = AgentToken.objects.get(digest=digest(alice.token))
    assert AgentToken.authenticate(alice.token) == alice
    response = admin_client.post(url(AgentToken), {"action": "revoke_tokens", "_selected_action": [alice_token.pk]})
    assert response.status_code == 302
    assert AgentToken.authenticate(alice.token) is None
    assert AgentToken.authenticate(bob.token) == bob
    alice_token.refresh_from_db()
    assert alice_token.revoked_at is not None


def test_it_edits_only_label_and_expiry_of_a_token(admin_client, alice):
    token = AgentToken.objects.get(digest=digest(alice.token))
    form = admin_client.get(url(AgentToken, "change", token.pk)).context["adminform"].form
    assert set(form.fields) == {"label", "expires_at"}
    response = admin_client.post(
        url(AgentToken, "change", token.pk),
        {"label": "renamed", "expires_at_0": "2999-01-01", "expires_at_1": "00:00:00", "agent": "999", "digest": "x"},
    )
    assert response.status_code == 302
    before = token.digest
    token.refresh_from_db()
    assert (token.label, token.expires_at.year, token.agent_id, token.digest) == ("renamed", 2999, alice.pk, before)


# --- ACL editing -------------------------------------------------------------------


def test_it_saves_grants_and_blocks_and_bumps_the_version(admin_client, alice, bob, carol):
    record = entry(alice)
    response = admin_client.post(
        url(MemoryEntry, "change", record.pk),
        entry_form(admin_client, record, grants={"bob": ["write", "read", "read"]}, blocks=["carol"]),
    )
    assert response.status_code == 302, errors_of(response)
    record.refresh_from_db()
    assert record.version == 2
    assert record.acl.granted_permissions == {"bob": ["read", "write"]}
    assert record.acl.blocked_agents == ["carol"]

    response = save_entry(admin_client, entry_form(admin_client, record, grants={}, blocks=[]), record)
    assert response.status_code == 302, errors_of(response)
    record = MemoryEntry.objects.get(pk=record.pk)
    assert record.version == 3
    assert (record.acl.granted_permissions, record.acl.blocked_agents) == ({}, [])


@pytest.mark.parametrize(
    "grants, blocks, message",
    [
        ({"mallory": ["read"]}, [], "Unknown agents: mallory"),
        ({}, ["mallory"], "Unknown agents: mallory"),
        ({"bob": ["read", "admin"]}, [], "Unknown permission(s) for 'bob': admin"),
        ({"bob": []}, [], "must be a non-empty list"),
        ({"bob": [{"read": 1}]}, [], "must be a non-empty list"),
        (["bob"], [], "Grants must be a JSON object"),
        ({}, '"bob"', "Blocked agents must be a list"),
        ({}, "[bob", "Enter a valid JSON"),
        ("null", [], "Grants must be a JSON object"),
        ({}, [1], "Blocked agents must be a list"),
    ],
)
def test_it_rejects_bad_grants_and_blocks_and_changes_nothing(admin_client, alice, bob, grants, blocks, message):
    record = entry(alice)
    MemoryACL.objects.create(entry=record, granted_permissions={"bob": ["read"]})
    response = admin_client.post(
        url(MemoryEntry, "change", record.pk),
        entry_form(admin_client, record, grants=grants, blocks=blocks, value=json.dumps({"step": 2})),
    )
    assert response.status_code == 200
    assert message in errors_of(response)
    record.refresh_from_db()
    assert (record.version, record.value) == (1, {"step": 1})
    assert (record.acl.granted_permissions, record.acl.blocked_agents) == ({"bob": ["read"]}, [])


def test_it_creates_an_acl_from_the_inline(admin_client, alice, bob):
    record = entry(alice)
    response = save_entry(admin_client, entry_form(admin_client, record, grants={"bob": ["share"]}), record)
    assert response.status_code == 302, errors_of(response)
    record = MemoryEntry.objects.get(pk=record.pk)
    assert record.acl.granted_permissions == {"bob": ["share"]} and record.version == 2


def test_it_refuses_a_stale_version(admin_client, alice, bob):
    record = entry(alice)
    data = entry_form(admin_client, record, grants={"bob": ["read"]}, value=json.dumps({"step": "mine"}))
    assert data["loaded_version"] == "1"
    # Someone else changes the entry (e.g. through the API) meanwhile.
    MemoryEntry.objects.filter(pk=record.pk).update(version=2, value={"step": "theirs"})
    response = admin_client.post(url(MemoryEntry, "change", record.pk), data)
    assert response.status_code == 200
    assert "Someone else changed this memory entry meanwhile" in errors_of(response)
    record.refresh_from_db()
    assert (record.version, record.value, record.acl) == (2, {"step": "theirs"}, None)

    # Without the version at all, it is refused too.
    response = admin_client.post(url(MemoryEntry, "change", record.pk), {**data, "loaded_version": ""})
    assert response.status_code == 200 and "Someone else changed" in errors_of(response)

    # Reloaded, the same change goes through.
    response = admin_client.post(url(MemoryEntry, "change", record.pk), entry_form(admin_client, record, value="3"))
    assert response.status_code == 302, errors_of(response)
    record.refresh_from_db()
    assert (record.version, record.value) == (3, 3)


def test_it_versions_consensus_proposals_too(admin_client, alice):
    proposal = owned(ConsensusProposal, alice, decision={"ship": True}, quorum=2)
    data = {
        "owner": alice.agent_id, "access_level": "swarm", "team": alice.team, "swarm": alice.swarm,
        "decision": '{"ship": false}', "votes": "{}", "quorum": "2", "status": "pending",
        "decided_at_0": "", "decided_at_1": "", "expires_at_0": "", "expires_at_1": "",
    }
    response = admin_client.post(url(ConsensusProposal, "change", proposal.pk), {**data, "loaded_version": 0})
    assert response.status_code == 200 and "Someone else changed" in errors_of(response)
    response = admin_client.post(url(ConsensusProposal, "change", proposal.pk), {**data, "loaded_version": 1})
    assert response.status_code == 302, errors_of(response)
    proposal.refresh_from_db()
    assert (proposal.version, proposal.decision) == (2, {"ship": False})


def test_it_moves_team_and_swarm_with_a_new_owner(admin_client, alice, dave):
    record = entry(alice)
    response = admin_client.post(url(MemoryEntry, "change", record.pk), entry_form(admin_client, record, owner="dave"))
    assert response.status_code == 302, errors_of(response)
    record.refresh_from_db()
    assert (record.owner_id, record.team, record.swarm, record.version) == ("dave", "other", "far", 2)


def test_it_adds_an_entry_and_checks_its_key(admin_client, alice):
    data = {
        "partition": "default", "key": "added/by-admin", "value": '"hello"', "metadata": "", "owner": "alice",
        "access_level": "team", "team": "", "swarm": "", "expires_at_0": "", "expires_at_1": "",
        "loaded_version": "", "acl_record-TOTAL_FORMS": "1", "acl_record-INITIAL_FORMS": "0",
        "acl_record-MIN_NUM_FORMS": "0", "acl_record-MAX_NUM_FORMS": "1",
        "acl_record-0-granted_permissions": "{}", "acl_record-0-blocked_agents": "[]",
    }
    response = admin_client.post(url(MemoryEntry, "add"), data)
    assert response.status_code == 302, errors_of(response)
    record = MemoryEntry.objects.get(key="added/by-admin")
    assert (record.owner_id, record.team, record.swarm, record.version, record.acl) == ("alice", "core", "qe", 1, None)

    response = admin_client.post(url(MemoryEntry, "add"), {**data, "key": "bad//key"})
    assert response.status_code == 200 and "Key segments" in errors_of(response)


def test_it_reports_a_clash_with_an_expired_unswept_entry(admin_client, alice):
    entry(alice, "notes/old", expires_at=timezone.now() - timedelta(minutes=1))
    data = {
        "partition": "default", "key": "notes/old", "value": "1", "metadata": "{}", "owner": "alice",
        "access_level": "private", "team": "", "swarm": "", "expires_at_0": "", "expires_at_1": "",
        "acl_record-TOTAL_FORMS": "0", "acl_record-INITIAL_FORMS": "0",
        "acl_record-MIN_NUM_FORMS": "0", "acl_record-MAX_NUM_FORMS": "1",
    }
    response = admin_client.post(url(MemoryEntry, "add"), data)
    assert response.status_code == 200
    assert "has not been swept yet" in errors_of(response)


# --- system level ------------------------------------------------------------------


def test_it_keeps_system_entries_from_staff_who_are_not_superusers(operator, admin_client, root, alice):
    record = entry(root, "system/config", AccessLevel.SYSTEM)
    page = operator.get(url(MemoryEntry, "change", record.pk))
    assert page.status_code == 200  # view permission: a read-only page
    assert 'name="_save"' not in page.content.decode()
    assert page.context["has_change_permission"] is False

    response = save_entry(operator, entry_form(admin_client, record, access_level="private"), record)
    assert response.status_code == 403
    assert operator.post(url(MemoryEntry, "delete", record.pk), {"post": "yes"}).status_code == 403
    operator.post(url(MemoryEntry), {"action": "delete_selected", "_selected_action": [record.pk], "post": "yes"})
    record.refresh_from_db()
    assert (record.access_level, record.version) == ("system", 1)


def test_it_forbids_staff_to_set_the_system_level(operator, alice):
    record = entry(alice)
    response = operator.post(url(MemoryEntry, "change", record.pk), entry_form(operator, record, access_level="system"))
    assert response.status_code == 200
    assert "Only superusers may set the system access level" in errors_of(response)
    record.refresh_from_db()
    assert (record.access_level, record.version) == ("private", 1)

    # Other changes still work for them.
    response = operator.post(url(MemoryEntry, "change", record.pk), entry_form(operator, record, access_level="team"))
    assert response.status_code == 302, errors_of(response)
    record.refresh_from_db()
    assert (record.access_level, record.version) == ("team", 2)


def test_it_forbids_staff_to_set_the_system_level_on_other_tables(operator, alice):
    hint = owned(Hint, alice, key="hint/x", value="v")
    data = {"key": "hint/x", "value": '"v"', "owner": "alice", "access_level": "system", "team": "core",
            "swarm": "qe", "expires_at_0": "", "expires_at_1": ""}
    response = operator.post(url(Hint, "change", hint.pk), data)
    assert response.status_code == 200 and "Only superusers" in str(response.context["errors"])
    hint.refresh_from_db()
    assert hint.access_level == "swarm"


def test_it_lets_superusers_change_system_entries(admin_client, root):
    record = entry(root, "system/config", AccessLevel.SYSTEM)
    response = save_entry(admin_client, entry_form(admin_client, record, value='{"step": 9}'), record)
    assert response.status_code == 302, errors_of(response)
    record.refresh_from_db()
    assert (record.value, record.version, record.access_level) == ({"step": 9}, 2, "system")


def test_it_lets_only_superusers_make_system_agents(operator, admin_client, alice):
    form = operator.get(url(Agent, "change", alice.pk)).context["adminform"].form
    assert "is_system" not in form.fields and "agent_id" not in form.fields
    assert "is_system" in admin_client.get(url(Agent, "change", alice.pk)).context["adminform"].form.fields


# --- bounded counting --------------------------------------------------------------


def test_it_counts_at_most_cap_plus_one_rows(alice, monkeypatch):
    for number in range(7):
        entry(alice, f"many/{number}")
    monkeypatch.setattr(memory_admin.CappedPaginator, "cap", 3)
    with CaptureQueriesContext(connection) as queries:
        paginator = memory_admin.CappedPaginator(MemoryEntry.objects.order_by("key"), 2)
        assert paginator.count == 3
    assert paginator.is_capped and paginator.num_pages == 2
    assert len(queries) == 1 and "LIMIT 4" in queries[0]["sql"] and "ORDER BY" not in queries[0]["sql"]
    assert len(paginator.page(2).object_list) == 1

    small = memory_admin.CappedPaginator(MemoryEntry.objects.filter(key="many/1").order_by("pk"), 2)
    assert (small.count, small.is_capped) == (1, False)


def test_it_never_counts_a_whole_table_on_a_list_page(admin_client, alice, monkeypatch):
    for number in range(7):
        entry(alice, f"many/{number}")
    monkeypatch.setattr(memory_admin.CappedPaginator, "cap", 5)
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(url(MemoryEntry))
    assert response.status_code == 200
    counts = [sql for sql in (query["sql"] for query in queries) if "COUNT(" in sql.upper() and "memory_entries" in sql]
    assert counts and all("LIMIT 6" in sql for sql in counts)
    assert response.context["cl"].result_count == 5
    assert "5+ memory entries" in " ".join(response.content.decode().split())


# --- odds and ends ------------------------------------------------------------------


def test_it_autocompletes_owners_by_agent_id(operator, alice, bob):
    response = operator.get(
        "/admin/autocomplete/",
        {"app_label": "memory", "model_name": "memoryentry", "field_name": "owner", "term": "ali"},
    )
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == ["alice"]


def test_it_bumps_the_entry_version_when_an_acl_is_deleted_from_its_list(admin_client, alice, bob):
    record = entry(alice)
    acl = MemoryACL.objects.create(entry=record, granted_permissions={"bob": ["read"]})
    response = admin_client.post(
        url(MemoryACL), {"action": "delete_selected", "_selected_action": [acl.pk], "post": "yes"}
    )
    assert response.status_code == 302
    record.refresh_from_db()
    assert (record.acl, record.version) == (None, 2)


def test_it_edits_acls_only_on_their_entry(admin_client, alice, bob):
    acl = MemoryACL.objects.create(entry=entry(alice), granted_permissions={"bob": ["read"]})
    page = admin_client.get(url(MemoryACL, "change", acl.pk))
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    data = {"granted_permissions": "{}", "blocked_agents": "[]"}
    response = admin_client.post(url(MemoryACL, "change", acl.pk), data)
    assert response.status_code == 403
    acl.refresh_from_db()
    assert acl.granted_permissions == {"bob": ["read"]}
