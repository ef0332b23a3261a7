"""The Django admin for the swarm memory: the 15 tables and the agents' tokens.

- Every list stays fast on large tables: no full COUNT(*) (the paginator counts
  at most CappedPaginator.cap + 1 rows), no facet counts, and no date
  hierarchy on the big time-series tables.
- Expiring tables show rows that have expired but are not swept yet.
- Memory entries (and consensus proposals) carry a version: the change form
  remembers the version it was loaded at and refuses to save over a newer
  one; every save bumps it.
- System-level records are changed and deleted by superusers only, and only
  superusers may move a record to the system level or make an agent a system
  agent.
- API tokens are issued by an action that shows the plain token once, on a
  page that is never cached; only the digest is stored and it is never shown.
"""

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.widgets import AdminSplitDateTime
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import models, transaction
from django.db.models import F
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.functional import cached_property

from . import access, fleet
from .errors import Invalid
from .keys import validate_key, validate_partition
from .models import (
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
    Permission,
    PerformanceMetric,
    SwarmSession,
    WorkflowState,
    validate_agent_list,
    validate_grants,
)

# --- shared pieces -------------------------------------------------------------


class CappedPaginator(Paginator):
    """Counts at most `cap + 1` rows, so a list page never scans a whole table.

    Past the cap the list shows `cap` rows of pagination and says "cap+";
    filters, search and sorting still reach every row.
    """

    cap = 10_000
    is_capped = False

    @cached_property
    def count(self):
        rows = self.object_list
        if isinstance(rows, models.QuerySet):
            # Order does not change a count; dropping it spares a sort.
            seen = rows.order_by().values("pk")[: self.cap + 1].count()
        else:
            seen = len(rows)
        self.is_capped = seen > self.cap
        return min(seen, self.cap)


class PrettyJSONField(forms.JSONField):
    """Shows JSON indented; an empty box means the column's default ({} or [])."""

    def __init__(self, *args, empty_factory=None, **kwargs):
        self.empty_factory = empty_factory
        super().__init__(*args, **kwargs)

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, cls=self.encoder, indent=2)

    def to_python(self, value):
        if self.empty_factory is not None and not self.disabled and value in self.empty_values:
            return self.empty_factory()
        return super().to_python(value)


class JSONFieldsMixin:
    """Readable JSON boxes for ModelAdmins and inlines alike."""

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, models.JSONField):
            kwargs.setdefault("form_class", PrettyJSONField)
            kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 6, "cols": 80, "class": "vLargeTextField"}))
            if not db_field.null and db_field.blank and db_field.has_default():
                # NOT NULL columns: a cleared box stores the default, never NULL.
                kwargs.setdefault("empty_factory", db_field.get_default)
        return super().formfield_for_dbfield(db_field, request, **kwargs)


def is_expiring(model):
    return hasattr(model, "with_expired")


def json_preview(value, length=80):
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= length else text[: length - 1] + "…"


class ExpiryFilter(admin.SimpleListFilter):
    title = "expiry"
    parameter_name = "expiry"

    def lookups(self, request, model_admin):
        return [("expired", "expired"), ("expires", "expires"), ("never", "never expires")]

    def queryset(self, request, queryset):
        now = timezone.now()
        value = self.value()
        if value == "expired":
            return queryset.filter(expires_at__lte=now)
        if value == "expires":
            return queryset.filter(expires_at__gt=now)
        if value == "never":
            return queryset.filter(expires_at__isnull=True)
        return queryset


class MemoryModelAdmin(JSONFieldsMixin, admin.ModelAdmin):
    """Base of every memory admin: bounded counts, expired rows visible."""

    paginator = CappedPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts scan the table once per filter
    list_per_page = 50

    def lookup_allowed(self, lookup, value, request=None):
        # PostgreSQL refuses NUL in text (a 500); a refused lookup is a 400.
        return "\x00" not in str(value) and super().lookup_allowed(lookup, value, request)

    def get_queryset(self, request):
        if not is_expiring(self.model):
            return super().get_queryset(request)
        # Expired rows are hidden from `objects` but stay until swept: show them.
        queryset = self.model.with_expired.get_queryset()
        ordering = self.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset

    @admin.display(boolean=True, description="expired", ordering="expires_at")
    def expired(self, obj):
        return obj.is_expired


def is_system_level(obj):
    return getattr(obj, "access_level", None) == AccessLevel.SYSTEM


# --- owned records -------------------------------------------------------------


class OwnedForm(forms.ModelForm):
    """Guards the system level; team and swarm follow a new owner."""

    allow_system_level = False  # set per request by OwnedAdmin.get_form

    def clean_access_level(self):
        level = self.cleaned_data.get("access_level")
        if level == AccessLevel.SYSTEM and not self.allow_system_level:
            raise ValidationError("Only superusers may set the system access level.", code="system_level")
        return level

    def clean(self):
        cleaned = super().clean()
        owner = cleaned.get("owner")
        if owner is not None and (self.instance.pk is None or "owner" in self.changed_data):
            # As Owned.assign_owner does, unless the admin typed other values.
            for name in ("team", "swarm"):
                if name in self.fields and name not in self.changed_data:
                    cleaned[name] = getattr(owner, name)
        if is_expiring(self._meta.model):
            self._check_unique_with_expired(cleaned)
        return cleaned

    def _check_unique_with_expired(self, cleaned):
        """Unique checks use the live manager, which hides expired rows; a clash
        with an expired, unswept row would only surface as an IntegrityError."""
        model = self._meta.model
        for constraint in model._meta.constraints:
            if not isinstance(constraint, models.UniqueConstraint) or not constraint.fields or constraint.condition:
                continue
            values = {}
            for name in constraint.fields:
                field = model._meta.get_field(name)
                value = cleaned.get(name) if name in self.fields else getattr(self.instance, field.attname)
                if value is None:
                    break
                values[name] = value
            else:
                clash = model.with_expired.expired().filter(**values)
                if self.instance.pk is not None:
                    clash = clash.exclude(pk=self.instance.pk)
                if clash.exists():
                    names = " and ".join(constraint.fields)
                    raise ValidationError(
                        f"An expired {model._meta.verbose_name} with this {names} has not been swept yet; "
                        "delete it first.",
                        code="unique_expired",
                    )


class VersionedForm(OwnedForm):
    """Optimistic lock: the form carries the version it was loaded at."""

    loaded_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["loaded_version"].initial = self.instance.version
        self.locked_version = None

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is not None:
            rows = self._meta.model._base_manager.filter(pk=self.instance.pk)
            if not transaction.get_autocommit():
                # Inside the admin's transaction: hold the row until the save,
                # so two concurrent saves cannot both pass this check.
                rows = rows.select_for_update()
            current = rows.values_list("version", flat=True).first()
            loaded = cleaned.get("loaded_version")
            if current is None:
                raise ValidationError("This record was deleted meanwhile.", code="deleted")
            if loaded != current:
                raise ValidationError(
                    f"Someone else changed this {self._meta.model._meta.verbose_name} meanwhile "
                    f"(version {loaded} when you opened it, now {current}). "
                    "Reload the page and make your changes again.",
                    code="stale_version",
                )
            self.locked_version = current
        return cleaned


class OwnedAdmin(MemoryModelAdmin):
    """Admin of an Owned table: system-level rows are for superusers only."""

    form = OwnedForm
    autocomplete_fields = ["owner"]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.allow_system_level = request.user.is_superuser  # a fresh class per call
        return form

    def has_change_permission(self, request, obj=None):
        if obj is not None and is_system_level(obj) and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and is_system_level(obj) and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        locked = getattr(form, "locked_version", None)
        if change and locked is not None:
            obj.version = locked + 1
        # Read back from the database: the form has already changed `obj`.
        form.access_before = self.model._base_manager.get(pk=obj.pk).access_state() if change else None
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # After the inlines: a memory entry's grants and blocks are one of them.
        after = self.model._base_manager.get(pk=form.instance.pk).access_state()
        if after != form.access_before:
            AuditEvent.record(request.user.get_username(), "acl_change", access.target_of(form.instance), request,
                              before=form.access_before, after=after)

    @admin.display(description="owner", ordering="owner_id")
    def owner_agent(self, obj):
        return obj.owner_id  # the agent id itself: no join needed


OWNED_FILTERS = ["access_level", "owner"]


# --- agents and tokens ---------------------------------------------------------


class AgentTokenInline(admin.TabularInline):
    """An agent's tokens, read-only; the digest is never shown."""

    model = AgentToken
    fields = readonly_fields = ["prefix", "label", "created_at", "expires_at", "revoked_at", "last_used_at"]
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class IssueTokenForm(forms.Form):
    label = forms.CharField(
        max_length=100, required=False, help_text="What the token is for; defaults to who issued it."
    )
    expires_at = forms.SplitDateTimeField(
        required=False, widget=AdminSplitDateTime, help_text="Leave empty for a token that does not expire (UTC)."
    )

    def clean_expires_at(self):
        expires_at = self.cleaned_data.get("expires_at")
        if expires_at is not None and expires_at <= timezone.now():
            raise ValidationError("The expiry must be in the future.")
        return expires_at


@admin.register(Agent)
class AgentAdmin(MemoryModelAdmin):
    list_display = ["agent_id", "type", "team", "swarm", "status", "is_system", "last_heartbeat_at"]
    list_filter = ["status", "is_system", "team", "swarm", "type"]
    search_fields = ["agent_id", "type", "team", "swarm"]
    fields = [
        "agent_id", "type", "status", "team", "swarm", "is_system", "capabilities", "performance",
        "last_heartbeat_at", "created_at", "updated_at",
    ]
    inlines = [AgentTokenInline]
    actions = ["issue_token"]

    def get_readonly_fields(self, request, obj=None):
        readonly = ["last_heartbeat_at", "created_at", "updated_at"]
        if obj is not None:
            readonly.append("agent_id")  # records refer to it by value
        if not request.user.is_superuser:
            readonly.append("is_system")  # system agents hold every permission
        return readonly

    def has_issue_token_permission(self, request):
        return request.user.has_perm("memory.add_agenttoken")

    @admin.action(description="Issue a new API token", permissions=["issue_token"])
    def issue_token(self, request, queryset):
        agents = list(queryset)
        if not request.user.is_superuser:
            refused = [agent for agent in agents if agent.is_system]
            if refused:
                self.message_user(
                    request,
                    "Only superusers may issue tokens for system agents: "
                    + ", ".join(agent.agent_id for agent in refused) + ".",
                    messages.ERROR,
                )
                return None
        form = IssueTokenForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            label = form.cleaned_data["label"] or f"issued in the admin by {request.user.get_username()}"
            issued = []
            with transaction.atomic():
                for agent in agents:
                    token, plain = fleet.issue_token(agent, label=label, expires_at=form.cleaned_data["expires_at"],
                                                     actor=request.user.get_username(), request=request)
                    self.log_change(request, agent, f"Issued API token {token.prefix}… ({label}).")
                    issued.append((agent, token, plain))
            context = {
                **self.admin_site.each_context(request),
                "title": "New API tokens",
                "opts": self.model._meta,
                "issued": issued,
            }
            response = TemplateResponse(request, "admin/memory/agent/issued_tokens.html", context)
            add_never_cache_headers(response)  # the page holds the only copy of the tokens
            return response
        context = {
            **self.admin_site.each_context(request),
            "title": "Issue a new API token",
            "opts": self.model._meta,
            "agents": agents,
            "form": form,
            "media": self.media + form.media,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/memory/agent/issue_token.html", context)


class TokenStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("usable", "usable"), ("revoked", "revoked"), ("expired", "expired")]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "usable":
            return queryset.usable()
        if value == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        if value == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=timezone.now())
        return queryset


@admin.register(AgentToken)
class AgentTokenAdmin(MemoryModelAdmin):
    """Tokens come only from the agents' issue action; the digest never shows."""

    list_display = ["prefix", "agent", "label", "created_at", "expires_at", "revoked_at", "last_used_at", "usable"]
    list_filter = [TokenStatusFilter, "agent"]
    list_select_related = ["agent"]
    search_fields = ["=prefix", "label", "=agent__agent_id"]
    date_hierarchy = "created_at"
    fields = ["agent", "prefix", "label", "created_at", "expires_at", "revoked_at", "last_used_at"]
    readonly_fields = ["agent", "prefix", "created_at", "revoked_at", "last_used_at"]
    actions = ["revoke_tokens"]

    def has_add_permission(self, request):
        return False

    @admin.display(boolean=True, description="usable")
    def usable(self, obj):
        return obj.is_usable

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke_tokens(self, request, queryset):
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True).select_related("agent"):
            token.revoke(request.user.get_username(), request)
            self.log_change(request, token, "Revoked.")
            revoked += 1
        self.message_user(request, f"Revoked {revoked} token{'s' if revoked != 1 else ''}.", messages.SUCCESS)


# --- memory entries and their ACLs ------------------------------------------------


class MemoryACLForm(forms.ModelForm):
    """Grants and blocks, checked before the model validators and clean()."""

    class Meta:
        model = MemoryACL
        fields = ["granted_permissions", "blocked_agents"]
        help_texts = {
            "granted_permissions": 'Agent id → permissions, e.g. {"bob": ["read", "write"]}. '
            f"Permissions: {', '.join(Permission.values)}. System-level entries ignore grants.",
            "blocked_agents": 'Agent ids denied every operation, e.g. ["mallory"]. A block wins over any grant.',
        }

    def clean_granted_permissions(self):
        grants = self.cleaned_data.get("granted_permissions")
        if not isinstance(grants, dict):
            raise ValidationError("Grants must be a JSON object mapping agent ids to lists of permissions.")
        order = Permission.values
        for agent_id, perms in grants.items():
            if not isinstance(perms, list) or not perms or not all(isinstance(perm, str) for perm in perms):
                raise ValidationError(f"Grants for {agent_id!r} must be a non-empty list of: {', '.join(order)}.")
            unknown = sorted(set(perms) - set(order))
            if unknown:
                raise ValidationError(
                    f"Unknown permission(s) for {agent_id!r}: {', '.join(unknown)}; allowed: {', '.join(order)}."
                )
        validate_grants(grants)
        return {agent_id: sorted(set(perms), key=order.index) for agent_id, perms in grants.items()}

    def clean_blocked_agents(self):
        blocks = self.cleaned_data.get("blocked_agents")
        validate_agent_list(blocks)
        return sorted(set(blocks))


class MemoryACLInline(JSONFieldsMixin, admin.StackedInline):
    model = MemoryACL
    form = MemoryACLForm
    fields = ["granted_permissions", "blocked_agents", "created_at", "updated_at"]
    readonly_fields = ["created_at", "updated_at"]
    extra = 1
    max_num = 1
    verbose_name = verbose_name_plural = "access control list (grants and blocks)"


class MemoryEntryForm(VersionedForm):
    def clean_partition(self):
        return self._checked(validate_partition, "partition")

    def clean_key(self):
        return self._checked(validate_key, "key")

    def _checked(self, validate, name):
        value = self.cleaned_data.get(name)
        try:
            validate(value)
        except Invalid as error:
            raise ValidationError(error.message) from None
        return value


@admin.register(MemoryEntry)
class MemoryEntryAdmin(OwnedAdmin):
    form = MemoryEntryForm
    list_display = ["__str__", "owner_agent", "access_level", "version", "value_preview", "updated_at", "expires_at",
                    "expired"]
    list_filter = [*OWNED_FILTERS, ExpiryFilter]
    search_fields = ["key", "=partition", "=owner__agent_id"]
    inlines = [MemoryACLInline]
    fieldsets = [
        (None, {"fields": ["partition", "key", "value", "metadata"]}),
        (
            "Access",
            {
                "fields": ["owner", "access_level", "team", "swarm"],
                "description": "Team and swarm follow a new owner unless you change them too. "
                "Grants and blocks are in the access control list below.",
            },
        ),
        ("Lifetime and version", {"fields": ["expires_at", "version", "created_at", "updated_at", "loaded_version"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        readonly = ["version", "created_at", "updated_at"]
        if obj is not None:
            readonly[:0] = ["partition", "key"]  # an entry is identified by them
        return readonly

    @admin.display(description="value")
    def value_preview(self, obj):
        return json_preview(obj.value)


@admin.register(MemoryACL)
class MemoryACLAdmin(MemoryModelAdmin):
    """A browsable list; grants and blocks are edited on their entry, where the
    entry's version guards concurrent edits."""

    list_display = ["entry", "grants", "blocks", "updated_at"]
    list_select_related = ["entry"]
    search_fields = ["=entry__partition", "entry__key"]
    fields = ["entry", "granted_permissions", "blocked_agents", "created_at", "updated_at"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # Also asked when an entry or agent is deleted with its ACLs.
        if obj is not None and is_system_level(obj.entry) and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)

    def delete_model(self, request, obj):
        self.delete_queryset(request, MemoryACL.objects.filter(pk=obj.pk))

    def delete_queryset(self, request, queryset):
        acls = list(queryset.select_related("entry"))
        super().delete_queryset(request, queryset)
        MemoryEntry.with_expired.filter(pk__in=[acl.entry_id for acl in acls]).update(version=F("version") + 1)
        for acl in acls:
            AuditEvent.record(request.user.get_username(), "acl_change", access.target_of(acl.entry), request,
                              before=acl.to_dict(), after={"grants": {}, "blocks": []})

    @admin.display(description="grants")
    def grants(self, obj):
        return json_preview(obj.granted_permissions)

    @admin.display(description="blocks")
    def blocks(self, obj):
        return json_preview(obj.blocked_agents)


# --- the other owned tables ------------------------------------------------------
# date_hierarchy only on the smaller tables: on SQLite it truncates the date of
# every row in Python, which the big time series (events, metrics) cannot afford;
# those get a date range filter instead.


@admin.register(Event)
class EventAdmin(OwnedAdmin):
    list_display = ["id", "type", "owner_agent", "access_level", "payload_preview", "timestamp", "expires_at",
                    "expired"]
    list_filter = [*OWNED_FILTERS, ExpiryFilter, ("timestamp", admin.DateFieldListFilter)]
    search_fields = ["=type", "=owner__agent_id"]

    @admin.display(description="payload")
    def payload_preview(self, obj):
        return json_preview(obj.payload)


@admin.register(Pattern)
class PatternAdmin(OwnedAdmin):
    list_display = ["pattern", "owner_agent", "confidence", "usage_count", "access_level", "updated_at", "expires_at",
                    "expired"]
    list_filter = [*OWNED_FILTERS, ExpiryFilter]
    search_fields = ["pattern", "=owner__agent_id"]
    readonly_fields = ["created_at", "updated_at"]


@admin.register(PerformanceMetric)
class PerformanceMetricAdmin(OwnedAdmin):
    list_display = ["metric", "value", "unit", "owner_agent", "access_level", "timestamp"]
    list_filter = [*OWNED_FILTERS, ("timestamp", admin.DateFieldListFilter)]
    search_fields = ["=metric", "=owner__agent_id"]


@admin.register(WorkflowState)
class WorkflowStateAdmin(OwnedAdmin):
    list_display = ["name", "step", "status", "owner_agent", "access_level", "updated_at"]
    list_filter = [*OWNED_FILTERS, "status"]
    search_fields = ["name", "=sha", "=owner__agent_id"]
    readonly_fields = ["created_at", "updated_at"]
    date_hierarchy = "created_at"


class ConsensusProposalForm(VersionedForm):
    pass


@admin.register(ConsensusProposal)
class ConsensusProposalAdmin(OwnedAdmin):
    form = ConsensusProposalForm
    list_display = ["id", "owner_agent", "status", "quorum", "tally_display", "version", "created_at", "decided_at",
                    "expires_at", "expired"]
    list_filter = [*OWNED_FILTERS, "status", ExpiryFilter]
    search_fields = ["=owner__agent_id"]
    readonly_fields = ["version", "created_at"]
    date_hierarchy = "created_at"

    @admin.display(description="approve / reject")
    def tally_display(self, obj):
        approvals, rejections = obj.tally()
        return f"{approvals} / {rejections}"


@admin.register(Artifact)
class ArtifactAdmin(OwnedAdmin):
    list_display = ["path", "kind", "owner_agent", "access_level", "short_sha", "created_at"]
    list_filter = [*OWNED_FILTERS, "kind"]
    search_fields = ["path", "=sha256", "=owner__agent_id"]
    readonly_fields = ["created_at"]
    date_hierarchy = "created_at"

    @admin.display(description="sha256", ordering="sha256")
    def short_sha(self, obj):
        return obj.sha256[:12]


@admin.register(SwarmSession)
class SwarmSessionAdmin(OwnedAdmin):
    list_display = ["__str__", "mode", "owner_agent", "access_level", "checkpoint_count", "created_at", "last_resumed"]
    list_filter = [*OWNED_FILTERS, "mode"]
    search_fields = ["=owner__agent_id"]
    readonly_fields = ["created_at"]
    date_hierarchy = "created_at"

    @admin.display(description="checkpoints")
    def checkpoint_count(self, obj):
        return len(obj.checkpoints) if isinstance(obj.checkpoints, list) else "-"


@admin.register(GoapGoal)
class GoapGoalAdmin(OwnedAdmin):
    list_display = ["name", "owner_agent", "access_level", "priority", "cost", "created_at"]
    list_filter = OWNED_FILTERS
    search_fields = ["name", "=owner__agent_id"]
    readonly_fields = ["created_at"]


@admin.register(GoapAction)
class GoapActionAdmin(OwnedAdmin):
    list_display = ["name", "owner_agent", "access_level", "agent_type", "cost", "created_at"]
    list_filter = [*OWNED_FILTERS, "agent_type"]
    search_fields = ["name", "=agent_type", "=owner__agent_id"]
    readonly_fields = ["created_at"]


@admin.register(GoapPlan)
class GoapPlanAdmin(OwnedAdmin):
    list_display = ["__str__", "goal", "owner_agent", "access_level", "total_cost", "created_at"]
    list_filter = OWNED_FILTERS
    list_select_related = ["goal"]
    search_fields = ["goal__name", "=owner__agent_id"]
    autocomplete_fields = ["owner", "goal"]
    readonly_fields = ["created_at"]


@admin.register(OodaCycle)
class OodaCycleAdmin(OwnedAdmin):
    list_display = ["__str__", "phase", "completed", "owner_agent", "access_level", "timestamp"]
    list_filter = [*OWNED_FILTERS, "phase", "completed"]
    search_fields = ["=owner__agent_id"]
    date_hierarchy = "timestamp"


@admin.register(Hint)
class HintAdmin(OwnedAdmin):
    list_display = ["key", "value_preview", "owner_agent", "access_level", "created_at", "expires_at", "expired"]
    list_filter = [*OWNED_FILTERS, ExpiryFilter]
    search_fields = ["key", "=owner__agent_id"]
    readonly_fields = ["created_at"]

    @admin.display(description="value")
    def value_preview(self, obj):
        return json_preview(obj.value)



@admin.register(AuditEvent)
class AuditEventAdmin(MemoryModelAdmin):
    """The audit trail: readable, never added, changed or deleted here."""

    list_display = ["at", "actor", "action", "target", "request_id", "remote_addr"]
    list_filter = ["action", "actor", ("at", admin.DateFieldListFilter)]
    search_fields = ["=actor", "target", "=request_id"]
    readonly_fields = ["actor", "action", "target", "detail", "request_id", "remote_addr", "at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
