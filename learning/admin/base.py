"""The base classes of the learning admin: the memory admin's fast lists,
and read-only records."""

from django.contrib import admin

from qefleet.memory.admin import MemoryModelAdmin


class LearningModelAdmin(MemoryModelAdmin):
    """Base of every learning admin (the memory admin's fast lists)."""

    list_select_related = ["agent"]


class RecordAdmin(LearningModelAdmin):
    """What the engine records: browsable, never added or changed here;
    superusers alone may delete."""

    list_select_related = ["agent", "strategy"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # Also asked when an agent (or strategy) is deleted with its records.
        return request.user.is_superuser and super().has_delete_permission(request, obj)


CREATED_RANGE = ("created_at", admin.DateFieldListFilter)
