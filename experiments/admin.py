from django.contrib import admin

from experiments.models import Arm, CampaignSchedule, Experiment, Metric, TaskRun
from experiments.schedules import campaign_schedule_delete, campaign_schedule_save


class ArmInline(admin.TabularInline):
    model = Arm
    extra = 0


class MetricInline(admin.TabularInline):
    model = Metric
    extra = 0


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ["name", "key", "campaign", "status", "layer", "started_at", "ended_at"]
    list_filter = ["status", "layer"]
    readonly_fields = ["salt", "started_at", "ended_at", "created_at"]
    inlines = [ArmInline, MetricInline]


@admin.register(TaskRun)
class TaskRunAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "status", "progress", "step", "created_at", "finished_at"]
    list_filter = ["name", "status"]
    readonly_fields = [f.name for f in TaskRun._meta.fields]


@admin.register(CampaignSchedule)
class CampaignScheduleAdmin(admin.ModelAdmin):
    """Edits here keep the Celery beat PeriodicTask in step (see experiments.schedules)."""

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
