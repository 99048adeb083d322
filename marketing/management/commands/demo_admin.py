import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from core.groups import ANALYST, CAMPAIGN_MANAGER

# username -> group (None: superuser)
DEMO_USERS = {"manager": CAMPAIGN_MANAGER, "analyst": ANALYST}


class Command(BaseCommand):
    help = ("Create the demo users and print their credentials: the admin (superuser), "
            "`manager` (Campaign manager) and `analyst` (Analyst). A user who exists keeps "
            "their password unless --reset is given (a second `make run` must not lock "
            "anyone out). DEBUG only.")

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--reset", action="store_true",
                            help="Give users who already exist a new password too.")

    def _user(self, username: str, *, group: str | None, reset: bool) -> tuple[str | None, bool]:
        """Create or update the user; return the new password (None: unchanged) and created."""
        user, created = get_user_model().objects.get_or_create(
            username=username, defaults={"is_staff": True})
        user.is_staff = True
        user.is_superuser = group is None
        password = None
        if created or reset:
            password = secrets.token_urlsafe(9)
            user.set_password(password)
        user.save()
        if group is not None:
            # The groups are created after every migrate (core.groups).
            user.groups.set([Group.objects.get(name=group)])
        return password, created

    def handle(self, *args, username: str, reset: bool, **options):
        if not settings.DEBUG:
            raise CommandError("demo_admin refuses to run with DEBUG off: create real users "
                               "with `manage.py createsuperuser`")
        for name, group in [(username, None), *DEMO_USERS.items()]:
            password, created = self._user(name, group=group, reset=reset)
            role = "admin" if group is None else group
            if password is None:
                self.stdout.write(f"Demo {role} exists: username={name}, password unchanged "
                                  "(`manage.py demo_admin --reset` sets new ones)")
                continue
            self.stdout.write(self.style.SUCCESS(
                f"Demo {role} {'created' if created else 'reset'}: username={name} "
                f"password={password}  (http://127.0.0.1:8000/admin/)"))
