"""Every add, change and delete made through the admin writes an audit entry.

Django calls ``log_addition``, ``log_change`` and ``log_deletions`` inside the
save's or the deletion's transaction (the delete action's, for a bulk
delete), so the entry commits with the change. The entry names the row by
table and id and, for a change, the names of the fields changed, never
their values.
"""

from __future__ import annotations

from django.contrib import admin

from core.audit import audit_record, audit_target


def _changed_fields(message) -> list[str]:
    """Field names from the admin's change message (a list of {"changed": {"fields"}} ...)."""
    fields: list[str] = []
    for part in message if isinstance(message, list) else []:
        for kind, what in part.items():
            if kind == "changed":
                fields += [str(f) for f in what.get("fields", [])]
            else:  # an inline row added or deleted: its model, not its text
                fields.append(f"{kind} {what.get('name', '')}".strip())
    return fields


class AuditedAdmin(admin.ModelAdmin):
    def log_addition(self, request, obj, message):
        entry = super().log_addition(request, obj, message)
        audit_record("create", audit_target(obj), request=request)
        return entry

    def log_change(self, request, obj, message):
        entry = super().log_change(request, obj, message)
        audit_record("change", audit_target(obj), request=request,
                     detail={"fields": _changed_fields(message)})
        return entry

    def log_deletions(self, request, queryset):
        entries = super().log_deletions(request, queryset)
        for obj in queryset:
            audit_record("delete", audit_target(obj), request=request)
        return entries


def audited(admin_class: type[admin.ModelAdmin]) -> type[admin.ModelAdmin]:
    """A third-party ModelAdmin (auth's, beat's) with the audit added, to register instead."""
    return type(f"Audited{admin_class.__name__}", (AuditedAdmin, admin_class), {})


def admin_register_audited(site: admin.AdminSite, model) -> None:
    """Swap the ModelAdmin another app registered for ``model`` for its audited subclass."""
    current = type(site.get_model_admin(model))
    if not issubclass(current, AuditedAdmin):
        site.unregister(model)
        site.register(model, audited(current))
