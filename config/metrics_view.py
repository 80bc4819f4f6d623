"""GET /metrics: the shop's Prometheus metrics, for a bearer of METRICS_TOKEN.

Counters and histograms are summed over every process's files (prometheus_client's
multiprocess collector; they are recorded where the facts happen, see framework/metrics.py).
The gauges that describe the present are read from the database when scraped, through the
same selectors the back office uses: open orders per state with the age of the oldest, the
orders retrying now by step, the queue's depth and the age of its oldest task, products low
on stock.
"""

import logging

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from framework.breakers import BreakerState, read_breakers
from framework.metrics import PREFIX
from framework.metrics_token import bearer_token, bears_metrics_token
from framework.queue import queue_backlog
from inventory.selectors import products_low_on_stock
from orders.holds import holds_on
from orders.models import FINAL_STATES, HoldSide, OrderState
from orders.selectors import open_orders_by_state, retrying_by_step

logger = logging.getLogger(__name__)

OPEN_STATES = [state for state in OrderState.values if state not in FINAL_STATES]
# Products listed one by one, fewest available first; the count covers all of them.
LOW_STOCK_LISTED = 100


class ShopFactsCollector(Collector):
    """The gauges read at scrape time. A fact that cannot be read (the database or the
    broker down) is left out and `shop_facts_up{fact}` says 0, so the rest still scrapes."""

    def collect(self):
        up = GaugeMetricFamily(f"{PREFIX}_facts_up", "Whether a fact could be read at this scrape.", labels=["fact"])
        facts = (
            ("open_orders", self._open_orders),
            ("queue", self._queue),
            ("stock", self._stock),
            ("breakers", self._breakers),
        )
        for fact, read in facts:
            try:
                families = list(read())
            except Exception:
                logger.exception("metrics: could not read %s", fact)
                up.add_metric([fact], 0)
                continue
            up.add_metric([fact], 1)
            yield from families
        yield up

    def _open_orders(self):
        count = GaugeMetricFamily(f"{PREFIX}_open_orders", "Orders standing in each non-final state.", labels=["state"])
        oldest = GaugeMetricFamily(
            f"{PREFIX}_open_order_oldest_age_seconds",
            "Seconds since the oldest order in each non-final state last changed: a stuck order shows here.",
            labels=["state"],
        )
        by_state = open_orders_by_state()
        for state in OPEN_STATES:
            standing = by_state.get(state)
            count.add_metric([state], standing.count if standing else 0)
            oldest.add_metric([state], standing.oldest_age_seconds if standing else 0)
        retrying = GaugeMetricFamily(
            f"{PREFIX}_orders_retrying",
            "Orders whose current step is failing and being retried right now, by step (the back office's "
            '"Retrying now").',
            labels=["step"],
        )
        for step, orders in sorted(retrying_by_step().items()):
            retrying.add_metric([step], orders)
        return count, oldest, retrying

    def _queue(self):
        backlog = queue_backlog()
        return (
            GaugeMetricFamily(f"{PREFIX}_queue_depth", "Tasks waiting in the queue.", value=backlog.depth),
            GaugeMetricFamily(
                f"{PREFIX}_queue_oldest_task_age_seconds",
                "Seconds the oldest waiting task has been in the queue.",
                value=backlog.oldest_age_seconds,
            ),
        )

    def _stock(self):
        low = products_low_on_stock()
        listed = GaugeMetricFamily(
            f"{PREFIX}_low_stock_available_units",
            f"Units available of each product at or under its low-stock threshold (the {LOW_STOCK_LISTED} lowest).",
            labels=["sku"],
        )
        for sku, available in low.values_list("sku", "available")[:LOW_STOCK_LISTED]:
            listed.add_metric([sku], available)
        return (
            GaugeMetricFamily(
                f"{PREFIX}_products_low_on_stock",
                "Active products at or under their low-stock threshold.",
                value=low.count(),
            ),
            listed,
        )

    def _breakers(self):
        state = GaugeMetricFamily(
            f"{PREFIX}_circuit_breaker_state",
            "Each provider's circuit breaker: 0 closed, 1 half-open (one probe may go), 2 open (its steps wait).",
            labels=["provider"],
        )
        for reading in read_breakers():
            state.add_metric([reading.provider], BREAKER_GAUGE[reading.state])
        held = GaugeMetricFamily(
            f"{PREFIX}_pipeline_held", "1 while a manager holds this side of the pipeline.", labels=["side"]
        )
        on = set(holds_on())
        for side in HoldSide.values:
            held.add_metric([side], 1 if side in on else 0)
        return state, held


BREAKER_GAUGE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


def shop_registry() -> CollectorRegistry:
    """Every process's counters and histograms, and the facts read now."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(ShopFactsCollector())
    return registry


def refusal(request: HttpRequest) -> HttpResponse | None:
    """Why this request may not read the metrics (401, 403), or None when it may."""
    token = settings.METRICS_TOKEN
    if not token:
        if settings.DEBUG:
            return None
        return HttpResponse("Metrics are off: set METRICS_TOKEN.\n", status=403, content_type="text/plain")
    if bearer_token(request) is None:
        response = HttpResponse("A bearer token is required.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if not bears_metrics_token(request):
        return HttpResponse("This token may not read the metrics.\n", status=403, content_type="text/plain")
    return None


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """The text exposition format, for Prometheus."""
    if not settings.METRICS_ENABLED:
        raise Http404("Metrics are off (METRICS_ENABLED=0).")
    if refused := refusal(request):
        return refused
    return HttpResponse(generate_latest(shop_registry()), content_type=CONTENT_TYPE_LATEST)
