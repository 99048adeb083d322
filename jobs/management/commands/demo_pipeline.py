import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.models import TaskRun
from experiments.demo import EXPERIMENT_KEY
from experiments.models import AnalysisResult, Experiment
from jobs.requests import (
    customers_score_request,
    experiment_analyse_request,
    uplift_model_train_request,
)
from modelling.models import CustomerScore, ModelVersion, TargetingList
from modelling.targeting import targeting_list_create


class Command(BaseCommand):
    help = ("Run the pipeline on the demo experiment: analyse, train, score, target. "
            "Tasks run in process unless a broker is configured; then it waits for the worker. "
            "Steps already done (an analysis, a champion, its scores, its list) are reused "
            "unless --force is given, so a second `make run` starts serving at once.")

    def add_arguments(self, parser):
        parser.add_argument("--max-epochs", type=int, default=40,
                            help="Epoch cap for the demo's training run (keeps make run short).")
        parser.add_argument("--timeout", type=float, default=1800,
                            help="Seconds to wait for each queued run when a worker runs tasks.")
        parser.add_argument("--poll", type=float, default=1.0,
                            help="Seconds between looks at a queued run's status.")
        parser.add_argument("--force", action="store_true",
                            help="Run every step again even when its result exists.")

    def _run(self, request, **kwargs) -> TaskRun:
        """Queue through the same request as the admin, then wait for the run.

        Eager (no broker): the run has finished when the request returns. With
        a worker (``make run``): poll the TaskRun row, the only status that
        people and this command share, printing each change of step.
        """
        run = request(**kwargs)
        run.refresh_from_db()
        if not settings.CELERY_TASK_ALWAYS_EAGER:
            run = self._wait(run)
        if run.status != TaskRun.Status.SUCCEEDED:
            raise CommandError(f"{run.name} (task run {run.id}) ended {run.status}: {run.error}")
        return run

    def _wait(self, run: TaskRun) -> TaskRun:
        deadline = time.monotonic() + self.timeout
        last = None
        while run.status in (TaskRun.Status.QUEUED, TaskRun.Status.RUNNING):
            line = (f"  {run.name} #{run.id}: {run.status}, {run.progress:.0%}"
                    f"{' - ' + run.step if run.step else ''}")
            if line != last:
                self.stdout.write(line)
                last = line
            if time.monotonic() > deadline:
                raise CommandError(
                    f"{run.name} (task run {run.id}) still {run.status} after {self.timeout} s: "
                    "is the worker running? (see var/worker.log)")
            time.sleep(self.poll)
            run.refresh_from_db()
        return run

    def handle(self, *args, max_epochs: int, timeout: float, poll: float, force: bool,
               **options):
        self.timeout, self.poll = timeout, poll
        experiment = Experiment.objects.filter(key=EXPERIMENT_KEY).first()
        if experiment is None:
            raise CommandError("no demo experiment: run `manage.py seed_demo` first")

        started = time.monotonic()
        result = None if force else experiment.analyses.order_by("-id").first()
        if result is None:
            run = self._run(experiment_analyse_request, experiment=experiment)
            result = AnalysisResult.objects.get(id=run.result["analysis_result_id"])
        else:
            self.stdout.write(f"Reusing analysis {result.id} (--force runs it again).")
        self.stdout.write(self.style.SUCCESS(
            f"Analysis of {experiment.key}: {result.customers} customers, decision "
            f"{result.decision.upper()}"))
        for reason in result.decision_reasons:
            self.stdout.write(f"  - {reason}")

        champion = None if force else self._champion(experiment)
        if champion is None:
            self._train(experiment, max_epochs)
            champion = self._champion(experiment)
        else:
            self.stdout.write(f"Reusing champion model version {champion.id} "
                              "(--force trains again).")
        if champion is None:
            self.stdout.write("No champion model; skipping scoring and targeting.")
            return
        if force or not CustomerScore.objects.filter(model_version=champion).exists():
            run = self._run(customers_score_request, model_version=champion)
            self.stdout.write(f"Scored {run.result['customers_scored']} customers.")
        else:
            self.stdout.write(f"Reusing the scores of model version {champion.id}.")
        target = None if force else (
            TargetingList.objects.filter(model_version=champion).order_by("-id").first())
        if target is None:
            target = targeting_list_create(campaign=experiment.campaign, model_version=champion)
        else:
            self.stdout.write(f"Reusing targeting list {target.id}.")
        self.stdout.write(self.style.SUCCESS(
            f"Targeting list {target.id}: contact {target.size} customers for "
            f"{target.total_cost:.2f}, expected profit {target.expected_profit:.2f}"))
        self.stdout.write(f"Demo pipeline ready in {time.monotonic() - started:.0f} s.")

    @staticmethod
    def _champion(experiment: Experiment) -> ModelVersion | None:
        return ModelVersion.objects.filter(
            campaign=experiment.campaign, kind="uplift", is_champion=True).first()

    def _train(self, experiment: Experiment, max_epochs: int) -> None:
        run = self._run(uplift_model_train_request, experiment=experiment, baselines=["X"],
                        estimator_params={"default": {"max_epochs": max_epochs}})
        for version in ModelVersion.objects.filter(id__in=run.result["model_version_ids"]):
            arms = version.metrics.get("arms", {})
            self.stdout.write(self.style.SUCCESS(
                f"Model version {version.id} ({version.estimator}): {version.status}, "
                f"champion={version.is_champion}, held-out Qini {version.selection_score}"))
            for arm, m in arms.items():
                self.stdout.write(f"  {arm}: Qini {m['qini']:.4f}, AUUC {m['auuc']:.4f}, "
                                  f"sqrt(PEHE) {m.get('sqrt_pehe', float('nan')):.4f}")
            for name, m in version.metrics.get("baselines", {}).items():
                self.stdout.write(f"  baseline {name}: Qini {m['qini']:.4f}, "
                                  f"sqrt(PEHE) {m.get('sqrt_pehe', float('nan')):.4f}")
