"""Each access request keeps the version of the consent matcher that checked it (issue 14,
item 6). Requests checked before versions existed were checked by the first matcher."""

from django.db import migrations, models


def backfill(apps, schema_editor):  # type: ignore[no-untyped-def]
    request_model = apps.get_model("marketplace", "AccessRequest")
    request_model.objects.exclude(duo_match={}).update(consent_matcher_version="1")


class Migration(migrations.Migration):
    dependencies = [("marketplace", "0011_anchor_records")]

    operations = [
        migrations.AddField(
            model_name="accessrequest",
            name="consent_matcher_version",
            field=models.CharField(blank=True, max_length=100),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
