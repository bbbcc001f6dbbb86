"""Every dataset names its committee (issue 19 §1), now that 0016 gave each one."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("marketplace", "0020_dac_committees"),
    ]

    operations = [
        migrations.AlterField(
            model_name="dataset",
            name="dac",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="datasets",
                to="marketplace.dataaccesscommittee",
            ),
        ),
    ]
