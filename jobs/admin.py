"""Per-campaign schedules; edits keep Celery beat's PeriodicTask in step. Beat's own pages,
audited, with their actions behind permissions."""

from django.contrib import admin
from django.db import transaction
from django_celery_beat.admin import PeriodicTaskAdmin
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from core.admin_actions import TaskActionsMixin
from core.admin_audit import AuditedAdmin, admin_register_audited
from core.audit import audit_record, audit_target
from jobs.models import CampaignSchedule
from jobs.schedules import campaign_schedule_delete, campaign_schedule_save


@admin.register(CampaignSchedule)
class CampaignScheduleAdmin(AuditedAdmin):
    """Edits here keep the Celery beat PeriodicTask in step (see jobs.schedules)."""

    list_display = ["campaign", "action", "every_hours", "enabled", "psi_threshold"]
    list_filter = ["action", "enabled"]
    readonly_fields = ["periodic_task"]

    def save_model(self, request, obj, form, change):
        campaign_schedule_save(obj)

    def delete_model(self, request, obj):
        campaign_schedule_delete(obj)

    def delete_queryset(self, request, queryset):
        for schedule in queryset:
            campaign_schedule_delete(schedule)


class GuardedPeriodicTaskAdmin(TaskActionsMixin, AuditedAdmin, PeriodicTaskAdmin):
    """django-celery-beat's page. Its actions declare no permissions, so Django would
    offer them to anyone who may view the list: here enabling and disabling need the
    change permission and running a task now needs ``core.run_tasks``, as elsewhere."""

    def _audited(self, request, queryset, action: str, run):
        tasks = list(queryset)
        with transaction.atomic():
            run(request, queryset)
            for task in tasks:
                audit_record(action, audit_target(task), request=request,
                             detail={"task": task.task})

    @admin.action(description="Enable selected tasks", permissions=["change"])
    def enable_tasks(self, request, queryset):
        self._audited(request, queryset, "change", super().enable_tasks)

    @admin.action(description="Disable selected tasks", permissions=["change"])
    def disable_tasks(self, request, queryset):
        self._audited(request, queryset, "change", super().disable_tasks)

    @admin.action(description="Toggle activity of selected tasks", permissions=["change"])
    def toggle_tasks(self, request, queryset):
        self._audited(request, queryset, "change", super().toggle_tasks)

    @admin.action(description="Run selected tasks", permissions=["run_tasks"])
    def run_tasks(self, request, queryset):
        self._audited(request, queryset, "run", super().run_tasks)


admin.site.unregister(PeriodicTask)
admin.site.register(PeriodicTask, GuardedPeriodicTaskAdmin)
for _model in (ClockedSchedule, CrontabSchedule, IntervalSchedule, SolarSchedule):
    admin_register_audited(admin.site, _model)
