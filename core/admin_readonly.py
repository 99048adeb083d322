"""Admin pages for records that are snapshots: written by services and tasks, only read here."""

from core.admin_audit import AuditedAdmin


class SnapshotAdmin(AuditedAdmin):
    """No add, save or delete: a snapshot edited by hand would no longer be what was computed.

    The change page still renders (Django shows it read-only to users with
    view permission), with whatever context a subclass's change_view adds.
    """

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
