from django.db import migrations


class Migration(migrations.Migration):
    """Entries no longer copy each arm's uplift: it is joined from the scores
    (modelling.targeting.targeting_entries)."""

    dependencies = [
        ("modelling", "0006_modelversion_explanations"),
    ]

    operations = [
        migrations.RemoveField(model_name="targetingentry", name="uplift_by_arm"),
    ]
