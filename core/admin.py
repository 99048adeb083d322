"""Background job runs, API keys and the audit log."""

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from core.admin_audit import AuditedAdmin, admin_register_audited
from core.admin_readonly import SnapshotAdmin
from core.api_keys import api_key_deactivate
from core.audit import audit_record, audit_target
from core.models import ApiKey, AuditEntry, TaskRun


@admin.register(TaskRun)
class TaskRunAdmin(SnapshotAdmin):
    list_display = ["id", "name", "status", "attempts", "progress", "step", "created_at",
                    "finished_at"]
    list_filter = ["name", "status"]
    readonly_fields = [f.name for f in TaskRun._meta.fields]


@admin.register(ApiKey)
class ApiKeyAdmin(AuditedAdmin):
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

    def has_delete_permission(self, request, obj=None):
        # Revoked, never deleted: deactivation refuses the key at once in every
        # process (core.api_keys), and the row keeps what the audit log names.
        return False

    @admin.action(description="Deactivate", permissions=["change"])
    def deactivate(self, request, queryset):
        keys = list(queryset)
        for key in keys:
            with transaction.atomic():
                api_key_deactivate(key=key)
                audit_record("revoke", audit_target(key), request=request,
                             detail={"name": key.name})
        messages.info(request, f"Deactivated {len(keys)} API key(s).")


@admin.register(AuditEntry)
class AuditEntryAdmin(SnapshotAdmin):
    list_display = ["at", "actor", "action", "target"]
    list_filter = ["action"]
    search_fields = ["actor", "target"]
    date_hierarchy = "at"
    readonly_fields = ["at", "actor", "user", "action", "target", "detail"]


# Who may do what is itself audited: users and groups changed here get entries too.
admin_register_audited(admin.site, get_user_model())
admin_register_audited(admin.site, Group)
