import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from core.groups import ANALYST, CAMPAIGN_MANAGER

# username -> group (None: superuser)
DEMO_USERS = {"manager": CAMPAIGN_MANAGER, "analyst": ANALYST}


class Command(BaseCommand):
    help = ("Create (or reset) the demo users and print their credentials: the admin "
            "(superuser), `manager` (Campaign manager) and `analyst` (Analyst). DEBUG only.")

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def _user(self, username: str, *, group: str | None) -> tuple[str, bool]:
        password = secrets.token_urlsafe(9)
        user, created = get_user_model().objects.get_or_create(
            username=username, defaults={"is_staff": True})
        user.is_staff = True
        user.is_superuser = group is None
        user.set_password(password)
        user.save()
        if group is not None:
            # The groups are created after every migrate (core.groups).
            user.groups.set([Group.objects.get(name=group)])
        return password, created

    def handle(self, *args, username: str, **options):
        if not settings.DEBUG:
            raise CommandError("demo_admin refuses to run with DEBUG off: create real users "
                               "with `manage.py createsuperuser`")
        for name, group in [(username, None), *DEMO_USERS.items()]:
            password, created = self._user(name, group=group)
            role = "admin" if group is None else group
            self.stdout.write(self.style.SUCCESS(
                f"Demo {role} {'created' if created else 'reset'}: username={name} "
                f"password={password}  (http://127.0.0.1:8000/admin/)"))
