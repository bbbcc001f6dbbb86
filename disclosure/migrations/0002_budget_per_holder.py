"""The budget's ledger per holder instead of per holder and dataset, and a query's stored
answers in one range of their unique index, without a foreign-key check per answer
(bench/beacon.py: a Beacon query over 1,000 datasets wrote up to 3,000 ledger rows; it now
writes one charge per holder).

The ledger is carried over: one account per holder, and one charge per holder, query and
time with the datasets the old per-dataset charges of that moment named.
"""

from collections import defaultdict

import django.db.models.deletion
from django.db import migrations, models


def carry_over(apps, schema_editor):
    old_charge = apps.get_model("disclosure", "OldBudgetCharge")
    account = apps.get_model("disclosure", "BudgetAccount")
    charge = apps.get_model("disclosure", "BudgetCharge")
    grouped: dict[tuple[str, str, object], list[str]] = defaultdict(list)
    for holder, query_sha256, charged_at, dataset_id in old_charge.objects.values_list(
        "account__holder", "query_sha256", "charged_at", "account__dataset_id"
    ).iterator(chunk_size=10_000):
        grouped[(holder, query_sha256, charged_at)].append(str(dataset_id))
    holders = sorted({holder for holder, _, _ in grouped})
    account.objects.bulk_create([account(holder=h) for h in holders], batch_size=5000)
    ids = dict(account.objects.values_list("holder", "id"))
    charge.objects.bulk_create(
        [
            charge(account_id=ids[h], query_sha256=q, charged_at=at, datasets=sorted(d))
            for (h, q, at), d in grouped.items()
        ],
        batch_size=5000,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("disclosure", "0001_privacy_disclosure"),
    ]

    operations = [
        migrations.RenameModel("BudgetCharge", "OldBudgetCharge"),
        migrations.RenameModel("BudgetAccount", "OldBudgetAccount"),
        migrations.CreateModel(
            name="BudgetAccount",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("holder", models.CharField(max_length=80, unique=True)),
            ],
        ),
        migrations.CreateModel(
            name="BudgetCharge",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("query_sha256", models.CharField(max_length=64)),
                ("charged_at", models.DateTimeField()),
                ("datasets", models.JSONField()),
                (
                    "account",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="charges",
                        to="disclosure.budgetaccount",
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(fields=["account", "charged_at"], name="disclosure_charge_window"),
                    models.Index(
                        fields=["account", "query_sha256"], name="disclosure_charge_query"
                    ),
                ],
            },
        ),
        migrations.RunPython(carry_over, migrations.RunPython.noop),
        migrations.DeleteModel("OldBudgetCharge"),
        migrations.DeleteModel("OldBudgetAccount"),
        migrations.AlterField(
            model_name="releasedanswer",
            name="dataset",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="released_answers",
                to="marketplace.dataset",
            ),
        ),
        migrations.RemoveConstraint(
            model_name="releasedanswer", name="disclosure_one_answer_per_query"
        ),
        migrations.AddConstraint(
            model_name="releasedanswer",
            constraint=models.UniqueConstraint(
                fields=("query_sha256", "dataset"), name="disclosure_one_answer_per_query"
            ),
        ),
    ]
