from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Operations"

    def ready(self):
        from core.groups import groups_sync_after_migrate

        # Once per migrate (core's signal), after the permissions exist: see core.groups.
        post_migrate.connect(groups_sync_after_migrate, sender=self,
                             dispatch_uid="core.groups_sync")
