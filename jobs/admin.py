"""Per-campaign schedules; edits keep Celery beat's PeriodicTask in step."""

from django.contrib import admin

from jobs.models import CampaignSchedule
from jobs.schedules import campaign_schedule_delete, campaign_schedule_save


@admin.register(CampaignSchedule)
class CampaignScheduleAdmin(admin.ModelAdmin):
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
