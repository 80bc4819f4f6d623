from django.apps import AppConfig


class StaffConfig(AppConfig):
    name = "staff"
    verbose_name = "Staff"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from framework.activity import register_tracked_models
        from staff.roles import apply_roles

        register_tracked_models()

        # The data migration staff/0001 made the groups; after every migrate (and flush) the
        # groups are brought back to the table in staff/roles.py, so a role changed in code (or
        # a group changed by hand) agrees with the table again.
        post_migrate.connect(apply_roles, dispatch_uid="staff.apply_roles")
