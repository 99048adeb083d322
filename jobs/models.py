"""Schedules of recurring work per campaign (run by Celery beat)."""

from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models
from django_celery_beat.models import PeriodicTask

from marketing.models import Campaign


class CampaignSchedule(models.Model):
    """A recurring job for a campaign, run by Celery beat (django-celery-beat).

    Saving one through jobs.schedules keeps its PeriodicTask in step,
    so managers edit schedules here and beat picks them up from the database.
    """

    class Action(models.TextChoices):
        ANALYSE = "analyse", "Refresh the analysis of running experiments"
        RETRAIN = "retrain", "Retrain the uplift model"
        RESCORE = "rescore", "Rescore customers with the champion"
        DRIFT_CHECK = "drift_check", "Check feature drift; retrain when it is large"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="schedules")
    action = models.CharField(max_length=16, choices=Action.choices)
    every_hours = models.PositiveIntegerField(default=24, validators=[MinValueValidator(1)])
    enabled = models.BooleanField(default=True)
    # Drift check only: retrain when any feature's PSI exceeds this.
    psi_threshold = models.FloatField(default=0.2, validators=[MinValueValidator(0.0)])
    periodic_task = models.OneToOneField(PeriodicTask, null=True, blank=True,
                                         on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "action"], name="schedule_one_per_action"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign}: {self.get_action_display()} every {self.every_hours} h"
