"""The health endpoints and the monitoring page: thin views over monitoring/health.py and the selectors."""

from django.contrib import admin
from django.http import JsonResponse
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from framework.metrics_token import bears_metrics_token
from framework.permissions import require_permission
from monitoring import dashboard
from monitoring.health import run_readiness_checks

MONITORING_PERMISSION = "orders.view_monitoring"


@never_cache
@require_safe
def health_live(request):
    """The process is up and answers; nothing behind it is asked."""
    return JsonResponse({"status": "ok"})


def may_read_health_details(request) -> bool:
    """The checks' details name folders, buckets and cluster ids: they are for operators
    (a bearer of METRICS_TOKEN, or staff who may open the monitoring page), not for anyone
    who can reach the address; a load balancer needs only the status code."""
    if bears_metrics_token(request):
        return True
    user = getattr(request, "user", None)
    return bool(user and user.is_active and user.is_staff and user.has_perm(MONITORING_PERMISSION))


@never_cache
@require_safe
def health_ready(request):
    """200 when every dependency answers and no order is stuck past its limit, else 503;
    what failed and why only for operators (`may_read_health_details`)."""
    results = run_readiness_checks()
    failing = [r.name for r in results if not r.ok]
    body: dict[str, object] = {"status": "failing" if failing else "ok"}
    if may_read_health_details(request):
        body["failing"] = failing
        body["checks"] = {r.name: {"ok": r.ok, "detail": r.detail} for r in results}
    response = JsonResponse(body, status=503 if failing else 200)
    # Polled every second: a 503 is the answer, not an error of this view, so Django's
    # request log does not write an ERROR line per poll (the alarms tell people instead).
    response._has_been_logged = True  # type: ignore[attr-defined]  # Django's private flag, read by log_response
    return response


@never_cache
def monitoring_page(request):
    """The pipeline at a glance, for staff with orders.view_monitoring (wrapped by admin_view in config/urls.py)."""
    require_permission(request.user, MONITORING_PERMISSION)
    context = {**admin.site.each_context(request), "title": "Monitoring", **dashboard.build_dashboard()}
    return TemplateResponse(request, "monitoring/page.html", context)
