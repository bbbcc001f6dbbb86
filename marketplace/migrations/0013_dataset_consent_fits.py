"""The catalogue's consent filter answers by the consent matcher's rule, index-backed (issue
16, item 2): per dataset, the purposes that fit (`duo_fits`) and what a purpose must commit
to (`duo_requires`), computed from the consent by marketplace.consent.index and kept up to
date on every save. On PostgreSQL both are GIN-indexed as token arrays, like the tokens of
migration 0010, so "fits" (@>, &&) and "requires within" (<@) are index lookups."""

from django.db import migrations, models

UP = """
CREATE INDEX marketplace_dataset_fits_tokens ON marketplace_dataset
    USING gin (string_to_array(btrim(duo_fits), ' '));
CREATE INDEX marketplace_dataset_requires_tokens ON marketplace_dataset
    USING gin (string_to_array(btrim(duo_requires), ' '));
"""
DOWN = """
DROP INDEX marketplace_dataset_fits_tokens;
DROP INDEX marketplace_dataset_requires_tokens;
"""


def backfill(apps, schema_editor):  # type: ignore[no-untyped-def]
    # The historical model has no save() of its own: compute with the same function.
    from marketplace.consent.codes import ConsentCode
    from marketplace.consent.index import consent_tokens

    dataset_model = apps.get_model("marketplace", "Dataset")
    batch = []
    for dataset in dataset_model.objects.only("pk", "duo_codes", "access_days").iterator():
        fits, requires = consent_tokens(
            [ConsentCode(c["code"], c.get("value", "")) for c in dataset.duo_codes],
            access_days=dataset.access_days,
        )
        dataset.duo_fits = " " + " ".join(fits) + " " if fits else ""
        dataset.duo_requires = " " + " ".join(requires) + " " if requires else ""
        batch.append(dataset)
        if len(batch) == 2000:
            dataset_model.objects.bulk_update(batch, ["duo_fits", "duo_requires"])
            batch = []
    dataset_model.objects.bulk_update(batch, ["duo_fits", "duo_requires"])


def indexes(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UP)


def drop_indexes(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DOWN)


class Migration(migrations.Migration):
    dependencies = [("marketplace", "0012_consent_matcher_version")]

    operations = [
        migrations.AddField(
            model_name="dataset",
            name="duo_fits",
            field=models.TextField(blank=True, default=""),
        ),
        migrations.AddField(
            model_name="dataset",
            name="duo_requires",
            field=models.TextField(blank=True, default=""),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.RunPython(indexes, drop_indexes),
    ]
