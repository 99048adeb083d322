"""Stored idempotency keys become their keyed pseudonyms; erased customers lose their CRM id.

Both use core.pseudonyms with the PRIVACY_ID_KEY of the environment the
migration runs in, which must be the one the platform then runs with.
"""

from django.db import migrations

CHUNK = 5_000


def forwards(apps, schema_editor):
    from core.pseudonyms import idempotency_key_pseudonym
    from marketing.crm_ids import erased_external_id

    Event = apps.get_model("marketing", "Event")
    Customer = apps.get_model("marketing", "Customer")
    last = 0
    while True:
        chunk = list(Event.objects.filter(id__gt=last, idempotency_key__isnull=False)
                     .order_by("id").values_list("id", "idempotency_key")[:CHUNK])
        if not chunk:
            break
        last = chunk[-1][0]
        Event.objects.bulk_update(
            [Event(id=pk, idempotency_key=idempotency_key_pseudonym(key)) for pk, key in chunk],
            ["idempotency_key"])
    for customer in Customer.objects.filter(erased_at__isnull=False).exclude(
            external_id__startswith="erased:").only("id", "external_id"):
        customer.external_id = erased_external_id(customer.external_id)
        customer.save(update_fields=["external_id"])


class Migration(migrations.Migration):

    dependencies = [
        ("marketing", "0008_customer_consent_history_and_privacy_permissions"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop, elidable=False)]
