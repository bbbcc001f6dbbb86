"""On PostgreSQL, what makes the catalogue fast at 100,000 datasets (bench/catalogue.py):
a stored full-text vector of each dataset's title (weight A) and description (B) with a
GIN index, so search does not compute to_tsvector for every row; and GIN indexes on the
format, DUO and reference tokens as arrays, so the filters are index lookups instead of
LIKE scans. SQLite, the embedded default, filters with LIKE and gets none of them."""

from django.db import migrations

UP = """
ALTER TABLE marketplace_dataset ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A') ||
    setweight(to_tsvector('english'::regconfig, coalesce(description, '')), 'B')
) STORED;
CREATE INDEX marketplace_dataset_search ON marketplace_dataset USING gin (search);
CREATE INDEX marketplace_dataset_duo_tokens ON marketplace_dataset
    USING gin (string_to_array(btrim(duo_index), ' '));
CREATE INDEX marketplace_dataset_format_tokens ON marketplace_dataset
    USING gin (string_to_array(lower(btrim(format_index)), ' '));
CREATE INDEX marketplace_dataset_reference_tokens ON marketplace_dataset
    USING gin (string_to_array(lower(btrim(reference_index)), ' '));
"""
DOWN = """
DROP INDEX marketplace_dataset_duo_tokens;
DROP INDEX marketplace_dataset_format_tokens;
DROP INDEX marketplace_dataset_reference_tokens;
ALTER TABLE marketplace_dataset DROP COLUMN search;
"""


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UP)


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DOWN)


class Migration(migrations.Migration):
    dependencies = [("marketplace", "0009_notifications")]
    operations = [migrations.RunPython(forwards, backwards)]
