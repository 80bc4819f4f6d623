"""Template context every page gets, admin view or not."""

from django.contrib import admin
from django.http import HttpRequest


def admin_site_names(request: HttpRequest) -> dict[str, object]:
    """The back office's header and title (config/urls.py sets them from SHOP_NAME), for the
    pages that extend admin/base_site.html outside the admin's own views: the login lockout
    and the refusal page would otherwise say "Django administration"."""
    return {"site_header": admin.site.site_header, "site_title": admin.site.site_title}
