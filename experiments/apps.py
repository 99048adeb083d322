from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "experiments"
    verbose_name = "Experiments"

    def ready(self) -> None:
        from experiments.admin_panels import customer_assignments_panel
        from experiments.privacy import customer_assignments_export, customer_exposures_export
        from marketing.customer_panels import customer_panel_register
        from marketing.privacy import personal_data_section_register

        personal_data_section_register("assignments", customer_assignments_export)
        personal_data_section_register("exposures", customer_exposures_export)
        customer_panel_register("assignments", customer_assignments_panel)
