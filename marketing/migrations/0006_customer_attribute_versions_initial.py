"""One first version per existing customer, valid from the customer's created_at.

Customers stored before the attribute history existed have only their
current state; it becomes their first version (``is_first``), which readers
also use for any time before it (see CustomerAttributeVersion): what was
known about them earliest. Written with INSERT ... SELECT in id ranges, so
no customer row passes through Python and each statement stays short.
"""

from django.db import migrations

CHUNK = 50_000


def versions_create(apps, schema_editor):
    Customer = apps.get_model("marketing", "Customer")
    Version = apps.get_model("marketing", "CustomerAttributeVersion")
    connection = schema_editor.connection
    quote = connection.ops.quote_name
    customers, versions = quote(Customer._meta.db_table), quote(Version._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MAX(id) FROM {customers}")
        (last,) = cursor.fetchone()
        for low in range(0, (last or 0), CHUNK):
            # Customers that have a version already (none, unless re-run) are left alone.
            cursor.execute(
                f"INSERT INTO {versions} (customer_id, attributes, marketing_consent, valid_from, "
                f"valid_to, is_first) "
                f"SELECT c.id, c.attributes, c.marketing_consent, c.created_at, NULL, %s "
                f"FROM {customers} c WHERE c.id > %s AND c.id <= %s AND NOT EXISTS ("
                f"SELECT 1 FROM {versions} v WHERE v.customer_id = c.id)",
                [True, low, low + CHUNK])


class Migration(migrations.Migration):

    dependencies = [
        ("marketing", "0005_customer_attribute_versions"),
    ]

    operations = [
        migrations.RunPython(versions_create, migrations.RunPython.noop, elidable=True),
    ]
