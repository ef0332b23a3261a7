"""The Django admin of the learning app: the catalog and the learning settings
are edited with validation, the engine's records are browse-only, a referenced
strategy cannot be deleted, and lists use the memory admin's fast base class."""

import math

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission as AuthPermission
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from learning.models import (
    ABTest,
    Alert,
    AppliedStrategy,
    Decision,
    Execution,
    FailurePattern,
    ImprovementCycle,
    LearnedPattern,
    LearningProfile,
    LiveVersion,
    Mitigation,
    PatternImport,
    QEntry,
    Rollback,
    Safeguard,
    SharedPattern,
    SilenceRule,
    Snapshot,
    StateVersion,
    Strategy,
)
from qefleet.memory import admin as memory_admin
from qefleet.memory.models import AuditEvent

LEARNING_MODELS = {
    Strategy, LearningProfile, AppliedStrategy, QEntry, Decision, Execution, LearnedPattern, FailurePattern, Snapshot,
}
RECORDS = [QEntry, Decision, Execution, LearnedPattern, FailurePattern, Snapshot]
SECRET_RESPONSE = "response-that-stays-off-the-list"


def url(model, view="changelist", *args):
    return reverse(f"admin:learning_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def parallel(db):
    return Strategy.objects.get(name="parallel-execution")


@pytest.fixture
def rows(alice, bob, parallel):
    """A row in every learning table (the catalog is seeded by a migration)."""
    sequential = Strategy.objects.get(name="sequential-execution")
    LearningProfile.objects.create(agent=alice, task_count=12, baseline_score=0.61, baseline_task=0,
                                   baseline_set_at=timezone.now())
    LearningProfile.objects.create(agent=bob, enabled=False)
    AppliedStrategy.objects.create(agent=alice, task_type="unit-tests", strategy=parallel, source="improvement")
    state = "0.6,0.1,0.0,0.8,1.0"
    QEntry.objects.create(agent=alice, task_type="unit-tests", state_key=state, strategy=parallel, q_value=0.7,
                          visits=3)
    QEntry.objects.create(agent=bob, task_type="e2e", state_key=state, strategy=sequential, q_value=-0.2, visits=1)
    decision = Decision.objects.create(agent=alice, task_id="task-1", task_type="unit-tests", state_key=state,
                                       strategy=parallel, explored=False, propensity=0.85, epsilon=0.3, q_value=0.7)
    Execution.objects.create(
        agent=alice, decision=decision, idempotency_key="key-1", request_digest="d" * 64, sequence=1,
        task_id="task-1", task_type="unit-tests", state_key=state, next_state_key=state, strategy=parallel,
        success=True, execution_time_ms=2350, reward=1.46, previous_q=0.0, q_value=0.146,
        response={"note": SECRET_RESPONSE},
    )
    LearnedPattern.objects.create(agent=alice, task_type="unit-tests", strategy=parallel, uses=4, successes=3,
                                  confidence=0.6)
    FailurePattern.objects.create(agent=alice, task_type="unit-tests", failure_class="timeout", frequency=2,
                                  confidence=0.2, mitigation="Raise the timeout or split the suite.")
    Snapshot.objects.create(agent=alice, first_task=1, last_task=10, tasks=10, success_rate=0.8,
                            avg_execution_ms=2100.0, error_rate=0.1, score=0.72, improvement=0.05)
    return decision


@pytest.fixture
def operator(db, client):
    """A staff user who is not a superuser, with every learning permission."""
    user = User.objects.create_user("operator", password="unused-password-123", is_staff=True)
    user.user_permissions.add(*AuthPermission.objects.filter(content_type__app_label__in=["learning", "memory"]))
    client.force_login(user)
    return client


def form_errors(response):
    assert response.status_code == 200, response.status_code
    return response.context["adminform"].form.errors


# --- every table lists ------------------------------------------------------------


def test_it_registers_every_learning_table_on_the_fast_base_class():
    registered = {model for model in admin.site._registry if model._meta.app_label == "learning"}
    # Versions, safeguards, alerts and the improvement loop have their own tests.
    assert registered == LEARNING_MODELS | {StateVersion, LiveVersion, Safeguard, Rollback, Alert, ABTest,
                                            ImprovementCycle, Mitigation, SharedPattern, PatternImport, SilenceRule}
    for model in registered:
        model_admin = admin.site._registry[model]
        assert isinstance(model_admin, memory_admin.MemoryModelAdmin), model
        assert model_admin.show_full_result_count is False, model
        assert issubclass(model_admin.paginator, memory_admin.CappedPaginator), model
        assert model_admin.date_hierarchy is None, model


def test_it_lists_every_table(admin_client, rows):
    for model in LEARNING_MODELS:
        response = admin_client.get(url(model))
        assert response.status_code == 200, model
        assert response.context["cl"].result_count >= 1, model


def test_it_opens_every_row(admin_client, rows):
    for model in LEARNING_MODELS:
        for record in model.objects.all():
            assert admin_client.get(url(model, "change", record.pk)).status_code == 200, (model, record)


def test_it_lists_strategies_with_their_action_key(admin_client, rows):
    content = admin_client.get(url(Strategy)).content.decode()
    assert "parallel-execution:1.0:exponential" in content
    assert "sequential-execution:0.0:fixed" in content


def test_it_searches_and_filters_lists(admin_client, rows, alice, parallel):
    response = admin_client.get(url(QEntry), {"q": "alice"})
    assert [entry.agent_id for entry in response.context["cl"].result_list] == [alice.pk]
    response = admin_client.get(url(QEntry), {"task_type": "e2e"})
    assert [entry.task_type for entry in response.context["cl"].result_list] == ["e2e"]
    response = admin_client.get(url(QEntry), {"strategy__id__exact": parallel.pk})
    assert [entry.strategy_id for entry in response.context["cl"].result_list] == [parallel.pk]
    response = admin_client.get(url(LearningProfile), {"enabled__exact": "0"})
    assert [profile.agent.agent_id for profile in response.context["cl"].result_list] == ["bob"]
    response = admin_client.get(url(LearningProfile), {"q": "ali"})
    assert [profile.agent.agent_id for profile in response.context["cl"].result_list] == ["alice"]
    for model in (Decision, Execution, Snapshot):
        response = admin_client.get(url(model), {"created_at__gte": "2000-01-01 00:00:00+00:00"})
        assert response.status_code == 200 and response.context["cl"].result_count == 1, model


def test_it_never_renders_the_response_or_digest_in_the_execution_list(admin_client, rows):
    with CaptureQueriesContext(connection) as queries:
        content = admin_client.get(url(Execution)).content.decode()
    assert SECRET_RESPONSE not in content and "d" * 64 not in content
    selects = [query["sql"] for query in queries if "learning_execution" in query["sql"] and "SELECT" in query["sql"]]
    assert selects and all('"response"' not in sql and '"request_digest"' not in sql for sql in selects)

    execution = Execution.objects.get()
    detail = admin_client.get(url(Execution, "change", execution.pk)).content.decode()
    assert SECRET_RESPONSE in detail and "d" * 64 not in detail


def test_it_never_counts_a_whole_table_on_a_list_page(admin_client, alice, parallel, monkeypatch):
    for number in range(7):
        Decision.objects.create(agent=alice, task_id=f"task-{number}", task_type="unit-tests", state_key="0.0",
                                strategy=parallel, explored=True, propensity=0.1, epsilon=0.3, q_value=0.0)
    monkeypatch.setattr(memory_admin.CappedPaginator, "cap", 5)
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(url(Decision))
    counts = [sql for sql in (query["sql"] for query in queries) if "COUNT(" in sql.upper() and "decision" in sql]
    assert counts and all("LIMIT 6" in sql for sql in counts)
    assert "5+ decisions" in " ".join(response.content.decode().split())


# --- the strategy catalog ------------------------------------------------------------


def strategy_data(**changes):
    data = {"name": "canary-first", "parallelization": "0.2", "retry_policy": "fixed", "description": "",
            "active": "on"}
    data.update(changes)
    return {name: value for name, value in data.items() if value is not None}


def test_it_adds_and_edits_a_strategy(admin_client, db):
    response = admin_client.post(url(Strategy, "add"), strategy_data())
    assert response.status_code == 302
    strategy = Strategy.objects.get(name="canary-first")
    assert (strategy.parallelization, strategy.retry_policy, strategy.active) == (0.2, "fixed", True)
    assert strategy.action_key == "canary-first:0.2:fixed"

    response = admin_client.post(url(Strategy, "change", strategy.pk),
                                 strategy_data(parallelization="0.4", active=None))
    assert response.status_code == 302
    strategy.refresh_from_db()
    assert (strategy.parallelization, strategy.active) == (0.4, False)


@pytest.mark.parametrize("value, message", [("1.5", "Must be between 0 and 1."), ("-0.1", "Must be between 0 and 1."),
                                            ("nan", "Enter a number."), ("", "This field is required.")])
def test_it_rejects_a_parallelization_outside_0_to_1(admin_client, db, value, message):
    errors = form_errors(admin_client.post(url(Strategy, "add"), strategy_data(parallelization=value)))
    assert errors["parallelization"] == [message]
    assert not Strategy.objects.filter(name="canary-first").exists()


def test_it_refuses_a_second_default_with_a_form_error(admin_client, db):
    current = Strategy.objects.get(is_default=True)
    errors = form_errors(admin_client.post(url(Strategy, "add"), strategy_data(is_default="on")))
    assert list(errors) == ["is_default"] and current.name in errors["is_default"][0]

    other = Strategy.objects.get(name="adaptive-retry")
    data = strategy_data(name=other.name, parallelization="0.5", retry_policy="adaptive", is_default="on")
    errors = form_errors(admin_client.post(url(Strategy, "change", other.pk), data))
    assert list(errors) == ["is_default"]
    assert list(Strategy.objects.filter(is_default=True)) == [current]

    # Untick the old default first, then the new one may be the default.
    data = strategy_data(name=current.name, parallelization=str(current.parallelization),
                         retry_policy=current.retry_policy, description=current.description)
    assert admin_client.post(url(Strategy, "change", current.pk), data).status_code == 302
    data = strategy_data(name=other.name, parallelization="0.5", retry_policy="adaptive", is_default="on")
    assert admin_client.post(url(Strategy, "change", other.pk), data).status_code == 302
    assert list(Strategy.objects.filter(is_default=True)) == [other]

    # Saving the default itself again is fine.
    assert admin_client.post(url(Strategy, "change", other.pk), data).status_code == 302


def test_it_refuses_to_delete_a_referenced_strategy_with_the_normal_page(admin_client, rows, parallel):
    response = admin_client.get(url(Strategy, "delete", parallel.pk))
    assert response.status_code == 200
    assert response.context["protected"]
    content = " ".join(response.content.decode().split())
    assert "Cannot delete strategy" in content or "would require deleting the following protected" in content
    assert "1 Q entry" in content and "1 decision" in content and "1 execution" in content
    assert f"strategy__id__in={parallel.pk}" in content

    response = admin_client.post(url(Strategy, "delete", parallel.pk), {"post": "yes"})
    assert response.status_code == 200 and response.context["protected"]
    response = admin_client.post(
        url(Strategy), {"action": "delete_selected", "_selected_action": [parallel.pk], "post": "yes"}
    )
    assert response.status_code == 200 and response.context["protected"]
    assert Strategy.objects.filter(pk=parallel.pk).exists()

    # The refusal's links lead to the referring rows.
    response = admin_client.get(url(QEntry), {"strategy__id__in": parallel.pk})
    assert response.status_code == 200 and response.context["cl"].result_count == 1


def test_it_deletes_an_unreferenced_strategy(admin_client, db):
    strategy = Strategy.objects.create(name="unused", parallelization=0.1, retry_policy="none")
    response = admin_client.get(url(Strategy, "delete", strategy.pk))
    assert response.status_code == 200 and not response.context["protected"]
    assert admin_client.post(url(Strategy, "delete", strategy.pk), {"post": "yes"}).status_code == 302
    assert not Strategy.objects.filter(pk=strategy.pk).exists()


# --- learning settings -----------------------------------------------------------------


def profile_data(profile, **changes):
    data = {name: str(getattr(profile, name)) for name in
            ("learning_rate", "discount_factor", "exploration_rate", "exploration_decay", "min_exploration_rate",
             "max_experiences", "baseline_window", "mode")}
    data.update({f"initial-{name}": value for name, value in data.items()}, **{"initial-enabled": str(profile.enabled)})
    if profile.enabled:
        data["enabled"] = "on"
    data.update(changes)
    return {name: value for name, value in data.items() if value is not None}


def test_it_saves_valid_learning_settings(admin_client, alice):
    profile = LearningProfile.objects.create(agent=alice, task_count=5)
    data = profile_data(profile, learning_rate="0.2", discount_factor="0.9", exploration_rate="0.5",
                        max_experiences="500", baseline_window="20", enabled=None)
    response = admin_client.post(url(LearningProfile, "change", profile.pk), data)
    assert response.status_code == 302
    profile.refresh_from_db()
    assert profile.config() == {"learning_rate": 0.2, "discount_factor": 0.9, "exploration_rate": 0.5,
                                "exploration_decay": 0.995, "min_exploration_rate": 0.01, "max_experiences": 500}
    assert (profile.enabled, profile.baseline_window, profile.task_count) == (False, 20, 5)


def test_it_keeps_counters_the_engine_updated_meanwhile(admin_client, alice):
    profile = LearningProfile.objects.create(agent=alice)
    page = admin_client.get(url(LearningProfile, "change", profile.pk)).content.decode()
    assert 'name="initial-exploration_rate" value="0.3"' in page  # what the form was loaded with
    data = profile_data(profile, learning_rate="0.2")
    # A task finishes between loading the form and saving it.
    LearningProfile.objects.filter(pk=profile.pk).update(task_count=7, exploration_rate=0.25)
    assert admin_client.post(url(LearningProfile, "change", profile.pk), data).status_code == 302
    profile.refresh_from_db()
    assert (profile.learning_rate, profile.task_count, profile.exploration_rate) == (0.2, 7, 0.25)


def test_it_shows_counters_read_only(admin_client, alice):
    profile = LearningProfile.objects.create(agent=alice, task_count=3)
    form = admin_client.get(url(LearningProfile, "change", profile.pk)).context["adminform"].form
    for name in ("task_count", "baseline_score", "baseline_set_at", "baseline_task", "updated_at", "agent"):
        assert name not in form.fields, name
    response = admin_client.post(url(LearningProfile, "change", profile.pk), profile_data(profile, task_count="99"))
    assert response.status_code == 302
    profile.refresh_from_db()
    assert profile.task_count == 3


@pytest.mark.parametrize("field, value, message", [
    ("learning_rate", "nan", "Enter a number."),
    ("learning_rate", "0", "must be in (0.0, 1.0]"),
    ("discount_factor", "1.5", "must be in [0.0, 1.0]"),
    ("exploration_decay", "inf", "Enter a number."),
    ("max_experiences", "5", "must be in [10, 100000]"),
    ("min_exploration_rate", "0.5", "must not exceed exploration_rate"),
])
def test_it_rejects_bad_learning_settings_naming_the_field(admin_client, alice, field, value, message):
    profile = LearningProfile.objects.create(agent=alice)
    before = profile.config()
    response = admin_client.post(url(LearningProfile, "change", profile.pk), profile_data(profile, **{field: value}))
    errors = form_errors(response)
    assert list(errors) == [field]
    assert errors[field] == [message]
    profile.refresh_from_db()
    assert profile.config() == before and all(math.isfinite(v) for v in before.values())


def test_it_adds_a_profile_for_an_agent(admin_client, alice):
    profile = LearningProfile(agent=alice)
    response = admin_client.post(url(LearningProfile, "add"), {**profile_data(profile, learning_rate="0.3"),
                                                               "agent": alice.pk})
    assert response.status_code == 302
    assert LearningProfile.objects.get(agent=alice).learning_rate == 0.3
    errors = form_errors(admin_client.post(url(LearningProfile, "add"), {**profile_data(profile), "agent": alice.pk}))
    assert "agent" in errors  # one profile per agent


def test_it_rebaselines_selected_profiles(admin_client, alice, bob):
    first = LearningProfile.objects.create(agent=alice, task_count=40, baseline_score=0.55, baseline_task=0,
                                           baseline_set_at=timezone.now())
    other = LearningProfile.objects.create(agent=bob, task_count=9, baseline_score=0.4, baseline_task=0)
    response = admin_client.post(url(LearningProfile), {"action": "rebaseline", "_selected_action": [first.pk]},
                                 follow=True)
    assert response.status_code == 200
    assert "new improvement baseline for 1 agent" in response.content.decode()
    first.refresh_from_db()
    other.refresh_from_db()
    assert (first.baseline_score, first.baseline_set_at, first.baseline_task) == (None, None, 40)
    assert (other.baseline_score, other.baseline_task) == (0.4, 0)


def test_it_offers_the_rebaseline_action_by_its_description(admin_client, alice):
    LearningProfile.objects.create(agent=alice)
    content = admin_client.get(url(LearningProfile)).content.decode()
    assert "Re-baseline: start a new improvement baseline" in content


# --- applied strategies ----------------------------------------------------------------


def test_it_applies_a_strategy_as_an_operator(admin_client, alice, parallel):
    data = {"agent": alice.pk, "task_type": "unit-tests", "strategy": parallel.pk,
            "applied_at_0": "2025-01-02", "applied_at_1": "03:04:05"}
    assert admin_client.post(url(AppliedStrategy, "add"), data).status_code == 302
    applied = AppliedStrategy.objects.get()
    assert (applied.agent, applied.strategy, applied.source) == (alice, parallel, "operator")

    errors = form_errors(admin_client.post(url(AppliedStrategy, "add"), data))
    # One applied strategy per agent and task type.
    assert "already exists" in str(errors) and AppliedStrategy.objects.count() == 1

    AppliedStrategy.objects.filter(pk=applied.pk).update(source="improvement")
    form = admin_client.get(url(AppliedStrategy, "change", applied.pk)).context["adminform"].form
    assert "source" not in form.fields
    sequential = Strategy.objects.get(name="sequential-execution")
    response = admin_client.post(url(AppliedStrategy, "change", applied.pk), {**data, "strategy": sequential.pk})
    assert response.status_code == 302
    applied.refresh_from_db()
    assert (applied.strategy, applied.source) == (sequential, "operator")


def test_it_autocompletes_the_applied_strategys_agent(operator, alice, bob):
    response = operator.get(
        "/admin/autocomplete/",
        {"app_label": "learning", "model_name": "appliedstrategy", "field_name": "agent", "term": "ali"},
    )
    assert response.status_code == 200
    assert [row["text"] for row in response.json()["results"]] == [str(alice)]


# --- browse-only records -----------------------------------------------------------------


def test_it_never_adds_or_changes_records(admin_client, rows):
    for model in RECORDS:
        response = admin_client.get(url(model))
        assert response.context["has_add_permission"] is False, model
        assert url(model, "add") not in response.content.decode(), model
        assert admin_client.get(url(model, "add")).status_code == 403, model
        record = model.objects.first()
        response = admin_client.get(url(model, "change", record.pk))
        assert response.status_code == 200 and not response.context["has_change_permission"], model
        assert admin_client.post(url(model, "change", record.pk), {}).status_code == 403, model


def test_it_lets_only_superusers_delete_records(operator, admin_client, rows):
    record = QEntry.objects.first()
    assert operator.get(url(QEntry)).status_code == 200
    assert operator.get(url(QEntry, "delete", record.pk)).status_code == 403
    assert operator.post(url(QEntry, "delete", record.pk), {"post": "yes"}).status_code == 403
    operator.post(url(QEntry), {"action": "delete_selected", "_selected_action": [record.pk], "post": "yes"})
    assert QEntry.objects.filter(pk=record.pk).exists()

    assert admin_client.post(url(QEntry, "delete", record.pk), {"post": "yes"}).status_code == 302
    assert not QEntry.objects.filter(pk=record.pk).exists()


def test_it_lets_operators_edit_the_settings(operator, alice):
    profile = LearningProfile.objects.create(agent=alice)
    response = operator.post(url(LearningProfile, "change", profile.pk), profile_data(profile, learning_rate="0.4"))
    assert response.status_code == 302
    profile.refresh_from_db()
    assert profile.learning_rate == 0.4


def test_a_change_of_mode_goes_through_the_operation_and_is_audited(admin_client, alice):
    profile = LearningProfile.objects.create(agent=alice, task_count=5)
    response = admin_client.post(url(LearningProfile, "change", profile.pk), profile_data(profile, mode="shadow"))
    assert response.status_code == 302
    profile.refresh_from_db()
    assert profile.in_shadow and profile.shadow_since is not None
    assert AuditEvent.objects.get(action="shadow_learning").detail["reason"] == "changed in the Django admin"
    admin_client.post(url(LearningProfile, "change", profile.pk), profile_data(profile, mode="active"))
    profile.refresh_from_db()
    assert not profile.in_shadow and profile.shadow_since is None
    assert AuditEvent.objects.filter(action="promote_shadow").count() == 1
