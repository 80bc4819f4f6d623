"""An admin page that shows rows and never writes them."""

from django.contrib import admin

from framework.permissions import NamedActionRefusals


class ReadOnlyAdmin(NamedActionRefusals, admin.ModelAdmin):
    """For rows that change through services only (the stock ledger, payments): admin shows them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
