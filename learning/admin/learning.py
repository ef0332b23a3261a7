"""The Django admin for the learning app.

- The strategy catalog, the agents' learning settings and the applied
  strategies are edited here; everything the engine records (Q entries,
  decisions, executions, patterns, failure patterns, snapshots) is browsable
  only, and deleted by superusers only.
- Lists use the memory admin's fast base class: no full COUNT(*), no facet
  counts, and no date hierarchy (decisions and executions are big tables).
- Only one strategy may be the default: ticking "default" on a second one is
  a form error naming the current default.
- A strategy that Q entries, decisions, ... still refer to cannot be deleted;
  the refusal page counts the references (capped) instead of listing them.
- Learning settings are checked by the model's clean() (engine.validate_config);
  a save writes only the settings that changed, so the counters the engine
  updates meanwhile (task count, decaying exploration rate) are not reverted.
"""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse
from django.utils.html import format_html

from learning import abtests, alerts, operations, versions
from learning.core import engine, stats
from learning.models import (
    ABArm,
    ABTest,
    ABTestState,
    ABTransition,
    Alert,
    AppliedStrategy,
    Decision,
    Execution,
    FailurePattern,
    ImprovementCycle,
    LearnedPattern,
    LearningMode,
    LearningProfile,
    LiveVersion,
    Mitigation,
    QEntry,
    Rollback,
    Safeguard,
    SilenceRule,
    Snapshot,
    StateVersion,
    Strategy,
)
from qefleet.memory.admin import CappedPaginator
from qefleet.memory.errors import Invalid

from .base import CREATED_RANGE, LearningModelAdmin, RecordAdmin

# --- the strategy catalog --------------------------------------------------------


class StrategyForm(forms.ModelForm):
    class Meta:
        model = Strategy
        fields = ["name", "parallelization", "retry_policy", "description", "is_default", "active"]

    def clean_is_default(self):
        is_default = self.cleaned_data.get("is_default")
        if is_default:
            current = Strategy.objects.filter(is_default=True).exclude(pk=self.instance.pk).first()
            if current is not None:
                raise ValidationError(
                    f"“{current.name}” is the default strategy; only one strategy can be the default. "
                    f"Untick “default” on “{current.name}” first.",
                    code="one_default",
                )
        return is_default

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("parallelization") is None and self.instance.parallelization is None:
            # The model's clean() compares it with 0 and 1; the field's own error
            # ("Enter a number.", "This field is required.") is what the form shows.
            self.instance.parallelization = 0.0
        return cleaned


def protecting_relations(model):
    """The relations whose rows PROTECT a `model` row from deletion."""
    return [
        relation
        for relation in model._meta.get_fields(include_hidden=True)
        if relation.auto_created and not relation.concrete and relation.one_to_many
        and relation.on_delete is models.PROTECT
    ]


@admin.register(Strategy)
class StrategyAdmin(LearningModelAdmin):
    form = StrategyForm
    list_display = ["name", "action_key", "parallelization", "retry_policy", "is_default", "active", "created_at"]
    list_filter = ["active", "retry_policy"]
    list_select_related = []
    search_fields = ["name", "description"]
    fields = ["name", "parallelization", "retry_policy", "description", "is_default", "active", "created_at"]
    readonly_fields = ["created_at"]

    @admin.display(description="action key")
    def action_key(self, obj):
        return obj.action_key

    def get_deleted_objects(self, objs, request):
        """Refuse when anything refers to the strategies, counting the references
        (at most CappedPaginator.cap) instead of loading every one of them."""
        pks = [obj.pk for obj in objs]
        protected = []
        for relation in protecting_relations(self.model):
            related = relation.related_model
            rows = related._base_manager.filter(**{f"{relation.field.name}__in": pks})
            seen = rows.order_by().values("pk")[: CappedPaginator.cap + 1].count()
            if not seen:
                continue
            opts = related._meta
            count = f"{CappedPaginator.cap}+" if seen > CappedPaginator.cap else str(seen)
            label = f"{count} {opts.verbose_name if seen == 1 else opts.verbose_name_plural}"
            related_admin = self.admin_site._registry.get(related)
            if related_admin is not None and related_admin.has_view_permission(request):
                link = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist", current_app=self.admin_site.name)
                ids = ",".join(str(pk) for pk in pks)
                query = f"{relation.field.name}__id__in={ids}"
                protected.append(format_html('<a href="{}?{}">{}</a>', link, query, label))
            else:
                protected.append(label)
        if protected:
            return [], {}, set(), protected
        return super().get_deleted_objects(objs, request)


# --- per-agent learning settings ---------------------------------------------------

CONFIG_FIELDS = list(engine.DEFAULT_CONFIG)
PROFILE_EDITABLE = ["enabled", "imports_patterns", *CONFIG_FIELDS, "baseline_window"]


def bounds_help(name):
    low, high, low_allowed = engine.CONFIG_BOUNDS[name]
    return f"In {'[' if low_allowed else '('}{low}, {high}]."


class LearningProfileForm(forms.ModelForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in PROFILE_EDITABLE:
            # changed_data compares with the value the form was loaded with, not
            # the row at save time: what the engine changed meanwhile is no change.
            self.fields[name].show_hidden_initial = True

    class Meta:
        model = LearningProfile
        fields = ["agent", "mode", *PROFILE_EDITABLE]
        help_texts = {
            "learning_rate": f"Alpha of the Q-update. {bounds_help('learning_rate')}",
            "discount_factor": f"Gamma: weight of the next state's best Q-value. {bounds_help('discount_factor')}",
            "exploration_rate": "Epsilon, the current chance of exploring; it decays after every task. "
            + bounds_help("exploration_rate"),
            "exploration_decay": f"Epsilon is multiplied by this after every task. {bounds_help('exploration_decay')}",
            "min_exploration_rate": "Epsilon never decays below this; at most the exploration rate. "
            + bounds_help("min_exploration_rate"),
            "max_experiences": f"The agent's last this-many executions are its experiences. "
            f"{bounds_help('max_experiences')}",
        }


@admin.register(LearningProfile)
class LearningProfileAdmin(LearningModelAdmin):
    form = LearningProfileForm
    list_display = ["agent", "enabled", "mode", "exploration_rate", "task_count", "baseline_score", "updated_at"]
    list_filter = ["enabled", "mode"]
    search_fields = ["agent__agent_id"]
    autocomplete_fields = ["agent"]
    actions = ["rebaseline", "capture_version", "run_cycle"]
    fieldsets = [
        (None, {"fields": ["agent", "enabled", "mode", "shadow_since", "imports_patterns"]}),
        (
            "Learning settings",
            {"fields": CONFIG_FIELDS, "description": "Changes apply from the agent's next task on."},
        ),
        ("Improvement baseline", {"fields": ["baseline_window", "baseline_score", "baseline_set_at", "baseline_task"]}),
        ("Counters", {"fields": ["task_count", "live_version", "live_since_task", "updated_at"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        readonly = ["shadow_since", "task_count", "baseline_score", "baseline_set_at", "baseline_task", "live_version",
                    "live_since_task", "updated_at"]
        if obj is not None:
            readonly.insert(0, "agent")  # one profile per agent
        return readonly

    def save_model(self, request, obj, form, change):
        if not change:
            obj.save()
            return
        # Only what the operator changed: the engine updates the counters and
        # decays the exploration rate between loading the form and saving it.
        changed = [name for name in PROFILE_EDITABLE if name in form.changed_data]
        # The mode changes through the operation, audited like the dashboard's.
        mode, obj.mode = obj.mode, form.initial.get("mode", obj.mode)
        obj.save(update_fields=[*changed, "updated_at"])
        if mode != obj.mode:
            change_mode = operations.put_in_shadow if mode == LearningMode.SHADOW else operations.promote
            change_mode(obj.agent, request.user, "changed in the Django admin", request)

    @admin.action(description="Re-baseline: start a new improvement baseline", permissions=["change"])
    def rebaseline(self, request, queryset):
        count = 0
        for profile in queryset.select_related("agent"):
            profile = operations.rebaseline(profile.agent, request.user, request)
            self.log_change(request, profile, f"Re-baselined at task {profile.task_count}.")
            count += 1
        self.message_user(
            request,
            f"Started a new improvement baseline for {count} agent{'s' if count != 1 else ''}; "
            "it is measured over the next tasks.",
            messages.SUCCESS,
        )

    @admin.action(description="Capture a state version now", permissions=["change"])
    def capture_version(self, request, queryset):
        labels = []
        for profile in queryset.select_related("agent"):
            version = operations.capture_version(profile.agent, request.user, request)
            self.log_change(request, profile, f"Captured {version}.")
            labels.append(str(version))
        self.message_user(request, f"Captured {', '.join(labels)}.", messages.SUCCESS)

    @admin.action(description="Run the improvement cycle now", permissions=["run_cycle"])
    def run_cycle(self, request, queryset):
        ran = [cycle for profile in queryset.select_related("agent")
               if (cycle := operations.run_cycle(profile.agent, request.user, request)) is not None]
        self.message_user(request, f"Ran {len(ran)} cycle(s); agents with learning disabled are skipped.",
                          messages.SUCCESS)

    def has_run_cycle_permission(self, request):
        return request.user.has_perm("learning.run_cycle")


@admin.register(AppliedStrategy)
class AppliedStrategyAdmin(LearningModelAdmin):
    list_display = ["agent", "task_type", "strategy", "source", "applied_at"]
    list_filter = ["strategy", "source"]
    list_select_related = ["agent", "strategy"]
    search_fields = ["agent__agent_id", "task_type"]
    autocomplete_fields = ["agent"]
    fields = ["agent", "task_type", "strategy", "source", "applied_at"]
    readonly_fields = ["source"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "strategy":
            kwargs.setdefault("help_text", "Inactive strategies are never recommended, even when applied.")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if not change or form.changed_data:
            obj.source = "operator"  # whoever set it before, an operator set it now
        super().save_model(request, obj, form, change)


# --- what the engine records (browse only) -----------------------------------------


@admin.register(QEntry)
class QEntryAdmin(RecordAdmin):
    list_display = ["agent", "task_type", "state_key", "strategy", "q_value", "visits", "updated_at"]
    list_filter = ["task_type", "strategy"]
    search_fields = ["=agent__agent_id", "state_key"]


@admin.register(Decision)
class DecisionAdmin(RecordAdmin):
    list_display = ["agent", "task_id", "task_type", "state_key", "strategy", "explored", "propensity", "fallback",
                    "created_at"]
    list_filter = ["explored", "strategy", CREATED_RANGE]
    search_fields = ["=agent__agent_id", "=task_id", "=task_type", "=state_key"]
    ordering = ["-created_at"]


@admin.register(Execution)
class ExecutionAdmin(RecordAdmin):
    list_display = ["agent", "sequence", "task_type", "strategy", "success", "execution_time_ms", "reward", "q_value",
                    "created_at"]
    list_filter = ["success", "strategy", CREATED_RANGE]
    search_fields = ["=agent__agent_id", "=task_id", "=task_type", "=idempotency_key"]
    # The request digest is never shown; the stored response only on the detail page.
    fields = [
        "agent", "sequence", "task_id", "task_type", "decision", "idempotency_key", "state_key", "next_state_key",
        "strategy", "success", "execution_time_ms", "error_count", "coverage", "satisfaction", "efficiency", "reward",
        "previous_q", "q_value", "stored_response", "created_at",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        # The list never needs the (possibly large) response or the digest.
        return super().get_queryset(request).defer("response", "request_digest")

    @admin.display(description="response")
    def stored_response(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.response, ensure_ascii=False, indent=2, default=str))


@admin.register(LearnedPattern)
class LearnedPatternAdmin(RecordAdmin):
    list_display = ["agent", "task_type", "strategy", "uses", "successes", "success_rate", "confidence",
                    "last_used_at"]
    list_filter = ["strategy"]
    search_fields = ["=agent__agent_id", "task_type"]

    @admin.display(description="success rate")
    def success_rate(self, obj):
        return f"{obj.success_rate:.1%}"


@admin.register(FailurePattern)
class FailurePatternAdmin(RecordAdmin):
    list_display = ["agent", "task_type", "failure_class", "frequency", "confidence", "mitigation_preview",
                    "last_seen_at"]
    list_filter = ["failure_class"]
    list_select_related = ["agent"]
    search_fields = ["=agent__agent_id", "task_type", "mitigation"]

    @admin.display(description="mitigation")
    def mitigation_preview(self, obj):
        text = obj.mitigation
        return text if len(text) <= 100 else text[:99] + "…"


@admin.register(Snapshot)
class SnapshotAdmin(RecordAdmin):
    list_display = ["agent", "first_task", "last_task", "tasks", "success_rate", "avg_execution_ms", "error_rate",
                    "score", "improvement", "created_at"]
    list_filter = [CREATED_RANGE]
    list_select_related = ["agent"]
    search_fields = ["=agent__agent_id"]


# --- state versions ---------------------------------------------------------------


@admin.register(StateVersion)
class StateVersionAdmin(LearningModelAdmin):
    """Versions are immutable: only `pinned` and `known_good` change, by action."""

    list_display = ["__str__", "agent", "reason", "task_count", "score", "q_entries", "size_bytes", "pinned",
                    "known_good", "created_at"]
    list_filter = ["reason", "pinned", "known_good"]
    search_fields = ["=agent__agent_id"]
    exclude = ["payload"]
    readonly_fields = ["agent", "number", "reason", "task_count", "score", "q_entries", "checksum", "size_bytes",
                       "pinned", "known_good", "created_at", "state_preview"]
    actions = ["pin", "unpin", "mark_known_good"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="learned state (Q entries, patterns, applied strategies, config)")
    def state_preview(self, obj):
        state = versions.decode(obj)["state"]
        text = json.dumps({**state, "q": state["q"][:50]}, indent=2)
        more = len(state["q"]) - 50
        return format_html("<pre>{}</pre>{}", text, f"… and {more} more Q entries" if more > 0 else "")

    def _flag(self, request, queryset, **change):
        count = queryset.update(**change)
        for version in queryset:
            self.log_change(request, version, ", ".join(f"{name}={value}" for name, value in change.items()))
        self.message_user(request, f"Updated {count} version{'s' if count != 1 else ''}.", messages.SUCCESS)

    @admin.action(description="Pin: never prune", permissions=["change"])
    def pin(self, request, queryset):
        self._flag(request, queryset, pinned=True)

    @admin.action(description="Unpin", permissions=["change"])
    def unpin(self, request, queryset):
        self._flag(request, queryset, pinned=False)

    @admin.action(description="Mark as known good", permissions=["change"])
    def mark_known_good(self, request, queryset):
        self._flag(request, queryset, known_good=True)


@admin.register(LiveVersion)
class LiveVersionAdmin(RecordAdmin):
    list_display = ["agent", "version", "cause", "live_from", "live_until"]
    list_select_related = ["agent", "version"]
    list_filter = ["cause"]
    search_fields = ["=agent__agent_id"]


# --- safeguards, rollbacks and alerts -----------------------------------------------


@admin.register(Safeguard)
class SafeguardAdmin(LearningModelAdmin):
    list_display = ["agent", "state", "consecutive_degraded", "change_pct", "action", "dry_run", "reference_score",
                    "reference_version", "checked_at"]
    list_filter = ["state", "action", "dry_run"]
    search_fields = ["=agent__agent_id"]
    list_select_related = ["agent", "reference_version"]
    fieldsets = [
        (None, {"fields": ["agent"]}),
        ("Settings", {"fields": ["check_every", "window", "known_good_after", "threshold_pct", "confidence_z",
                                 "consecutive", "action",
                                 "dry_run", "max_auto_rollbacks"]}),
        ("State", {"fields": ["state", "consecutive_degraded", "change_pct", "healthy_checks", "reference_score",
                              "reference_version", "checked_at"]}),
    ]
    readonly_fields = ["agent", "state", "consecutive_degraded", "change_pct", "healthy_checks", "reference_score",
                       "reference_version", "checked_at"]

    def has_add_permission(self, request):
        return False  # created with the agent's first task

    def save_model(self, request, obj, form, change):
        # Settings only: the checks update the state between load and save.
        obj.save(update_fields=[name for name in form.changed_data if name in form.base_fields])


@admin.register(Rollback)
class RollbackAdmin(RecordAdmin):
    list_display = ["agent", "from_version", "to_version", "automatic", "actor", "reason", "created_at"]
    list_select_related = ["agent", "from_version", "to_version"]
    list_filter = ["automatic", CREATED_RANGE]
    search_fields = ["=agent__agent_id"]


@admin.register(Alert)
class AlertAdmin(LearningModelAdmin):
    list_display = ["summary", "agent", "severity", "state", "occurrences", "silenced_until", "acknowledged_by",
                    "last_seen_at"]
    list_filter = ["state", "severity", "kind"]
    search_fields = ["=agent__agent_id", "summary"]
    readonly_fields = [field.name for field in Alert._meta.fields]
    actions = ["acknowledge", "resolve"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # alerts change through their actions only

    def _act(self, request, queryset, action):
        operations.act_on_alerts(list(queryset.values_list("pk", flat=True)), action, request.user, "from the admin",
                                 request=request)
        self.message_user(request, f"{queryset.count()} alert(s): {action}.", messages.SUCCESS)

    @admin.action(description="Acknowledge", permissions=["act"])
    def acknowledge(self, request, queryset):
        self._act(request, queryset, "acknowledge")

    @admin.action(description="Resolve", permissions=["act"])
    def resolve(self, request, queryset):
        self._act(request, queryset, "resolve")

    def has_act_permission(self, request):
        return request.user.has_perm("learning.act_on_alert")


@admin.register(SilenceRule)
class SilenceRuleAdmin(LearningModelAdmin):
    """Admins edit silence rules here; saving one goes through
    operations.save_silence, so it is audited and quiets what it matches."""

    list_display = ["__str__", "comment", "created_by", "created_at"]
    list_filter = ["kind", "severity"]
    search_fields = ["=agent__agent_id", "kind", "task_type", "comment"]
    autocomplete_fields = ["agent"]
    readonly_fields = ["created_by", "created_at"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user.get_username()
        operations.save_silence(obj, request.user, request)  # the form's clean() refused a rule matching everything

    def delete_model(self, request, obj):
        alerts.release(obj)
        super().delete_model(request, obj)


# --- the improvement loop ------------------------------------------------------------


class ABTestForm(forms.ModelForm):
    """A new test: its two strategies and the control's share of tasks."""

    control = forms.ModelChoiceField(Strategy.objects.active(), required=False,
                                     help_text="Empty: the agent's own learned policy.")
    treatment = forms.ModelChoiceField(Strategy.objects.active(), help_text="The strategy tested against it.")
    control_weight = forms.FloatField(initial=0.5, min_value=stats.CONTROL_WEIGHT_RANGE[0],
                                      max_value=stats.CONTROL_WEIGHT_RANGE[1],
                                      help_text="Share of the task type's tasks that run the control.")

    class Meta:
        model = ABTest
        fields = ["agent", "task_type", "name", "hypothesis", "mde", "power"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["name"].required = False
        self.fields["name"].help_text = "Default: “task type: treatment vs control”."

    def clean(self):
        data = super().clean()
        if data.get("control") and data.get("control") == data.get("treatment"):
            self.add_error("treatment", "Choose a strategy other than the control.")
        try:
            abtests.check_design(data.get("mde", stats.DEFAULT_MDE), data.get("power", stats.DEFAULT_POWER),
                                 data.get("control_weight", 0.5))
        except Invalid as error:
            self.add_error(error.field, str(error))
        if data.get("agent") and ABTest.objects.open().filter(agent=data["agent"],
                                                             task_type=data.get("task_type")).exists():
            self.add_error("task_type", "This agent already has an open A/B test for this task type.")
        return data


class ArmInline(admin.TabularInline):
    model = ABArm
    fields = readonly_fields = ["role", "label", "weight", "n", "successes", "total_ms", "error_tasks"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class TransitionInline(admin.TabularInline):
    model = ABTransition
    fields = readonly_fields = ["from_state", "to_state", "reason", "at"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ABTest)
class ABTestAdmin(LearningModelAdmin):
    """Tests are created here as drafts and started with an action; the loop
    and the API create them too. Numbers and states change only through the
    lifecycle (abtests.py), never by editing."""

    list_display = ["__str__", "agent", "task_type", "state", "source", "horizon", "created_at", "decided_at"]
    list_filter = ["state", "source", CREATED_RANGE]
    search_fields = ["=agent__agent_id", "task_type", "name"]
    autocomplete_fields = ["agent"]
    actions = ["start", "abort"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ABTestForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["agent", "task_type", "control", "treatment", "control_weight", "name", "hypothesis", "mde",
                    "power"]
        return ["agent", "task_type", "name", "hypothesis", "state", "source", "created_by", "mde", "power", "horizon",
                "decision", "verdict", "previous_strategy", "version_before", "reference_score", "degraded_checks",
                "created_at", "started_at", "decided_at", "applied_at", "monitor_until", "finished_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        editable = {"name", "hypothesis"}
        return [name for name in self.get_fields(request, obj) if name not in editable]

    def get_inlines(self, request, obj):
        return [ArmInline, TransitionInline] if obj is not None else []

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["name", "hypothesis"])
            return
        data = form.cleaned_data
        created = abtests.create(data["agent"], data["task_type"], data["control"], data["treatment"],
                                 source="admin", created_by=request.user.get_username(), name=data["name"],
                                 hypothesis=data["hypothesis"], mde=data["mde"], power=data["power"],
                                 control_weight=data["control_weight"], start=False)
        obj.pk, obj.name, obj._state.adding = created.pk, created.name, False

    @admin.action(description="Start selected draft tests", permissions=["change"])
    def start(self, request, queryset):
        started = 0
        for test in queryset.filter(state=ABTestState.DRAFT).select_related("agent"):
            if operations.start_test(test.pk, request.user, request) is not None:
                started += 1
                self.log_change(request, test, "Started.")
        self.message_user(request, f"Started {started} test(s); drafts only.", messages.SUCCESS)

    @admin.action(description="Abort selected tests", permissions=["change"])
    def abort(self, request, queryset):
        aborted = 0
        for test in queryset.select_related("agent"):
            if operations.abort_test(test.pk, request.user, request) is not None:
                aborted += 1
                self.log_change(request, test, "Aborted.")
        self.message_user(request, f"Aborted {aborted} test(s); only draft and running tests can be.",
                          messages.SUCCESS)


@admin.register(ImprovementCycle)
class ImprovementCycleAdmin(RecordAdmin):
    list_display = ["agent", "slot_start", "trigger", "duration_ms", "finished_at"]
    list_select_related = ["agent"]
    list_filter = ["trigger", ("slot_start", admin.DateFieldListFilter)]
    search_fields = ["=agent__agent_id"]


@admin.register(Mitigation)
class MitigationAdmin(RecordAdmin):
    list_display = ["agent", "task_type", "failure_class", "adjustment", "state", "rate_before", "rate_after",
                    "activated_at", "concluded_at"]
    list_select_related = ["agent"]
    list_filter = ["state", "failure_class", "adjustment"]
    search_fields = ["=agent__agent_id", "task_type"]

