from django.contrib import admin

from experiments.models import Arm, Experiment, Metric, TaskRun


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
