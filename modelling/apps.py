from django.apps import AppConfig


class ModellingConfig(AppConfig):
    name = "modelling"
    verbose_name = "Models and targeting"

    def ready(self) -> None:
        from core.task_runs import task_run_lost
        from experiments.results import model_insight_register
        from marketing.customer_panels import customer_panel_register
        from marketing.privacy import personal_data_eraser_register, personal_data_section_register
        from modelling.admin_panels import customer_explanation_panel, customer_scores_panel
        from modelling.insights import experiment_model_insight
        from modelling.privacy import (
            customer_behaviour_export,
            customer_model_rows_erase,
            customer_scores_export,
            customer_targeting_entries_export,
        )
        from modelling.registry import model_versions_abandon

        personal_data_section_register("scores", customer_scores_export)
        personal_data_section_register("targeting_entries", customer_targeting_entries_export)
        personal_data_eraser_register("scores_and_targeting_entries", customer_model_rows_erase)
        personal_data_section_register("behaviour", customer_behaviour_export)
        customer_panel_register("scores", customer_scores_panel)
        customer_panel_register("model_explanation", customer_explanation_panel)
        model_insight_register(experiment_model_insight)
        task_run_lost.connect(model_versions_abandon, dispatch_uid="model_versions_abandon")
