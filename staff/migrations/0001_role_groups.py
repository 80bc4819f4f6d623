"""The four staff roles as Django groups, with their permissions (the table in staff/roles.py)."""

from django.db import migrations


def create_role_groups(apps, schema_editor):
    from staff.roles import create_all_permissions, sync_role_groups

    # Django creates permissions only after migrate ends; the groups need them now, on a
    # fresh database too. Historical app configs carry no models module, which
    # create_permissions takes to mean "no models": mark them for the call.
    app_configs = list(apps.get_app_configs())
    for app_config in app_configs:
        app_config.models_module = True
    try:
        create_all_permissions(app_configs, apps=apps, using=schema_editor.connection.alias)
    finally:
        for app_config in app_configs:
            app_config.models_module = None
    sync_role_groups(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"), strict=False)


def remove_role_groups(apps, schema_editor):
    from staff.roles import ROLE_GROUPS

    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("orders", "0005_manager_and_stock_permissions"),
        ("inventory", "0005_ledger_restock_and_submission_key"),
        ("payments", "0003_reconciler_schedule"),
        ("receipts", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create_role_groups, remove_role_groups)]
