from django.db import migrations


class Migration(migrations.Migration):
    """Entries no longer copy each arm's uplift: it is joined from the scores
    (modelling.targeting.targeting_entries)."""

    dependencies = [
        ("modelling", "0005_guardrail_scores_targeting_evaluation"),
    ]

    operations = [
        migrations.RemoveField(model_name="targetingentry", name="uplift_by_arm"),
    ]
