"""Third-party admin pages made to follow the roles: a list action that writes needs a write
permission (Django offers an action without `permissions` to whoever may see the list, so an
Auditor or an Order manager could resubmit tasks), and a refused one names it."""

from axes import admin as axes_admin
from axes.models import AccessAttempt
from django.contrib import admin
from django_q import admin as django_q_admin
from django_q.models import Failure, Success

from framework.permissions import NamedActionRefusals


@admin.action(description=django_q_admin.resubmit_task.short_description, permissions=["change"])
def resubmit_task(model_admin, request, queryset):
    """django_q's resubmit, for who may change the tasks (a failed one is deleted once resubmitted)."""
    django_q_admin.resubmit_task(model_admin, request, queryset)


class SuccessAdmin(NamedActionRefusals, django_q_admin.TaskAdmin):
    actions = [resubmit_task]


class FailureAdmin(NamedActionRefusals, django_q_admin.FailAdmin):
    actions = [resubmit_task]


class AccessAttemptAdmin(NamedActionRefusals, axes_admin.AccessAttemptAdmin):
    # Without axes' "Clean up expired attempts": it fails (axes reads a request attribute only
    # its login path sets), and axes cleans up expired attempts on every login anyway.
    actions: list[str] = []


for model, model_admin in ((Success, SuccessAdmin), (Failure, FailureAdmin), (AccessAttempt, AccessAttemptAdmin)):
    admin.site.unregister(model)
    admin.site.register(model, model_admin)
