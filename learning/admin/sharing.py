"""The Django admin of cross-agent sharing.

Shared patterns and imports are records of what the sharing job did:
browsable only. One action changes them: quarantining shared patterns by
hand (what a rollback of the source does automatically), open to whoever
may roll agents back, audited.
"""

from django.contrib import admin, messages

from learning import operations
from learning.models import PatternImport, SharedPattern

from .base import RecordAdmin


@admin.register(SharedPattern)
class SharedPatternAdmin(RecordAdmin):
    list_display = ["__str__", "source", "confidence", "success_rate", "lower_bound", "uses", "source_version",
                    "status", "published_at", "quarantined_at"]
    list_filter = ["status", "strategy"]
    list_select_related = ["source", "strategy"]
    search_fields = ["=source__agent_id", "task_type"]
    ordering = ["-published_at"]
    actions = ["quarantine_selected"]

    @admin.action(description="Quarantine selected shared patterns", permissions=["quarantine"])
    def quarantine_selected(self, request, queryset):
        count = len(operations.quarantine_shared(queryset, request.user, request))
        self.message_user(request, f"Quarantined {count} shared pattern{'s' if count != 1 else ''} and their imports.",
                          messages.SUCCESS)

    def has_quarantine_permission(self, request):
        # Quarantine is what a rollback does to shared patterns.
        return request.user.has_perm("learning.rollback_agent")


@admin.register(PatternImport)
class PatternImportAdmin(RecordAdmin):
    list_display = ["agent", "shared", "source", "status", "confidence", "imported_at", "decided_at"]
    list_filter = ["status"]
    list_select_related = ["agent", "shared__source", "shared__strategy"]
    search_fields = ["=agent__agent_id", "=shared__source__agent_id", "shared__task_type"]
    ordering = ["-imported_at"]

    @admin.display(description="source", ordering="shared__source__agent_id")
    def source(self, obj):
        return obj.shared.source
