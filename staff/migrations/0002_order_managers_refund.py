"""Order managers refund: the Refunds role (an order manager who may also refund) is merged
into Order manager, its members moved there, its group removed (docs/ROLES.md says why)."""

from django.db import migrations

MERGED, INTO = "Refunds", "Order manager"


def merge_refunds_into_order_manager(apps, schema_editor):
    from staff.roles import sync_role_groups

    Group = apps.get_model("auth", "Group")
    sync_role_groups(Group, apps.get_model("auth", "Permission"), strict=False)
    merged = Group.objects.filter(name=MERGED).first()
    if merged is None:
        return
    into = Group.objects.get(name=INTO)
    into.user_set.add(*merged.user_set.all())
    merged.delete()


class Migration(migrations.Migration):
    dependencies = [("staff", "0001_role_groups")]

    operations = [migrations.RunPython(merge_refunds_into_order_manager, migrations.RunPython.noop)]
