from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from core.api_keys import api_key_create
from core.audit import audit_record, audit_target
from core.models import ApiKey


class Command(BaseCommand):
    help = ("Create an API key for a CRM integration and print it once: only its hash is "
            "stored, so a lost key is replaced, not recovered.")

    def add_arguments(self, parser):
        parser.add_argument("name", help="The integration's name, e.g. crm-prod")
        parser.add_argument("--scope", choices=ApiKey.Scope.values, default=ApiKey.Scope.READ,
                            help="read: GET only; write: every method (default: read)")

    def handle(self, *args, name: str, scope: str, **options):
        try:
            with transaction.atomic():
                key, raw = api_key_create(name=name, scope=scope)
                audit_record("create", audit_target(key), system="manage.py create_api_key",
                             detail={"name": key.name, "scope": key.scope})
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(f"API key {key.name!r} ({key.scope} scope) created. It is shown once:")
        self.stdout.write(raw)
        self.stdout.write("Send it as the header  Authorization: Api-Key <key>")
