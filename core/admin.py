"""Background job runs, API keys and the audit log."""

from django.contrib import admin, messages

from core.admin_readonly import SnapshotAdmin
from core.api_keys import api_key_deactivate
from core.models import ApiKey, AuditEntry, TaskRun


@admin.register(TaskRun)
class TaskRunAdmin(SnapshotAdmin):
    list_display = ["id", "name", "status", "attempts", "progress", "step", "created_at",
                    "finished_at"]
    list_filter = ["name", "status"]
    readonly_fields = [f.name for f in TaskRun._meta.fields]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are created with ``manage.py create_api_key`` (the secret is shown once, there);
    here they are listed and revoked. The secret's hash is never shown."""

    list_display = ["name", "prefix", "scope", "is_active", "created_at", "last_used_at"]
    list_filter = ["scope", "is_active"]
    search_fields = ["name", "prefix"]
    fields = list_display
    readonly_fields = list_display
    actions = ["deactivate"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Deactivate", permissions=["change"])
    def deactivate(self, request, queryset):
        keys = list(queryset)
        for key in keys:
            api_key_deactivate(key=key)
        messages.info(request, f"Deactivated {len(keys)} API key(s).")


@admin.register(AuditEntry)
class AuditEntryAdmin(SnapshotAdmin):
    list_display = ["at", "actor", "action", "target"]
    list_filter = ["action"]
    search_fields = ["actor", "target"]
    date_hierarchy = "at"
    readonly_fields = ["at", "actor", "user", "action", "target", "detail"]
