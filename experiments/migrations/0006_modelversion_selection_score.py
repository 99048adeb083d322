from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("experiments", "0005_targetinglist_targetingentry")]

    operations = [
        migrations.RenameField("modelversion", "qini", "selection_score"),
    ]
