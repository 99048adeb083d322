from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from experiments.demo import EXPERIMENT_KEY
from experiments.models import AnalysisResult, Experiment, TaskRun
from experiments.services import experiment_analyse_request


class Command(BaseCommand):
    help = "Run the platform's pipeline on the demo experiment (analysis; in process by default)."

    def handle(self, *args, **options):
        experiment = Experiment.objects.filter(key=EXPERIMENT_KEY).first()
        if experiment is None:
            raise CommandError("no demo experiment: run `manage.py seed_demo` first")
        with transaction.atomic():
            run = experiment_analyse_request(experiment=experiment)
        run.refresh_from_db()
        if run.status != TaskRun.Status.SUCCEEDED:
            self.stdout.write(f"Analysis queued as task run {run.id} (status {run.status}).")
            return
        result = AnalysisResult.objects.get(id=run.result["analysis_result_id"])
        self.stdout.write(self.style.SUCCESS(
            f"Analysis of {experiment.key}: {result.customers} customers, decision "
            f"{result.decision.upper()}"))
        for reason in result.decision_reasons:
            self.stdout.write(f"  - {reason}")
        for metric in result.payload["metrics"]:
            for c in metric["comparisons"]:
                effect = c["cuped"]["effect"] if c.get("cuped") else c["unadjusted"]
                self.stdout.write(
                    f"  {metric['metric']:>13} {c['arm']:<15} "
                    f"{effect['absolute_effect']:+.4f} "
                    f"[{effect['absolute_ci_low']:+.4f}, {effect['absolute_ci_high']:+.4f}]")
