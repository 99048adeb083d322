"""Stored exposure idempotency keys become their keyed pseudonyms (core.pseudonyms)."""

from django.db import migrations

CHUNK = 5_000


def forwards(apps, schema_editor):
    from core.pseudonyms import idempotency_key_pseudonym

    Exposure = apps.get_model("experiments", "Exposure")
    last = 0
    while True:
        chunk = list(Exposure.objects.filter(id__gt=last).order_by("id")
                     .values_list("id", "idempotency_key")[:CHUNK])
        if not chunk:
            break
        last = chunk[-1][0]
        Exposure.objects.bulk_update(
            [Exposure(id=pk, idempotency_key=idempotency_key_pseudonym(key)) for pk, key in chunk],
            ["idempotency_key"])


class Migration(migrations.Migration):

    dependencies = [
        ("experiments", "0009_arm_costs"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop, elidable=False)]
