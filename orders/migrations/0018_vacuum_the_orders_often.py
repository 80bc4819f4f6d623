"""Vacuum and analyse the orders table after a small share of its rows change.

Each order's row is written anew four to five times on its way (every state change and
lease), so the table's indexes carry a dead entry for every version until a VACUUM, and the
pipeline tick reads the open orders through one of them every second. PostgreSQL's default
waits for a fifth of the table's rows to die (200,000 versions at a million orders), and
for a tenth to change before it analyses, so a sale's unpaid orders stayed unknown to the
planner until 100,000 orders had changed (docs/deployment.md, "The database").
"""

from django.db import migrations

OPTIONS = {"autovacuum_vacuum_scale_factor": "0.01", "autovacuum_analyze_scale_factor": "0.005"}


def vacuum_often(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        settings = ", ".join(f"{name} = {value}" for name, value in OPTIONS.items())
        schema_editor.execute(f"ALTER TABLE orders_order SET ({settings})")


def vacuum_by_default(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE orders_order RESET ({', '.join(OPTIONS)})")


class Migration(migrations.Migration):
    dependencies = [("orders", "0017_unpaid_by_age_by_its_own_column")]

    operations = [migrations.RunPython(vacuum_often, vacuum_by_default)]
