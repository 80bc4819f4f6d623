"""The fault suite's shared parts: shoppers placing orders while a test breaks something,
the books settled and audited afterwards, and one line of figures per scenario.

Every figure is read the way a user or an operator would: the shopper's answers (status
codes), the order status URL (`is_final`), the emails the shop delivered, and the product's
own `manage.py audit_invariants --all`. Nothing reads the database directly, so a scenario
runs the same on the test database and on a private PostgreSQL server it restarts.

The figures are printed and kept as the test's `fault_figures` property; the terminal
summary lists every scenario's line, so the CI log shows them whether a test passed or not.

`FAULT_PROFILE=full` (`make faults`) runs the scenarios at full size; the default is the
bounded profile CI runs.
"""

import json
import os
import random
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
import requests

from tests.support import PROJECT_DIR
from tests.support.processes import PYTHON, START_TIMEOUT, Shop

FULL_PROFILE = os.environ.get("FAULT_PROFILE", "").lower() == "full"
# What a shopper's page does when the shop does not answer: wait, then send the same order
# again under the same Idempotency-Key, for up to this long.
SHOPPER_PATIENCE_SECONDS = 120
CONNECTION_FAILED = 0  # the status recorded for an answer that never came (reset, refused, timed out)


def scenario_size(*, full: int, bounded: int) -> int:
    """How many orders a scenario places: `full` under FAULT_PROFILE=full, else `bounded`."""
    return full if FULL_PROFILE else bounded


class Shoppers:
    """Shoppers placing `count` orders over HTTP from `concurrency` threads, each order under
    its own Idempotency-Key and retried with it after a 503 or a lost connection, as the shop
    page does. Every answer's status is counted (0: no answer); `placed` holds each order's
    reference as the 202 gave it."""

    def __init__(
        self,
        base_url: Callable[[], str] | str,
        skus: list[str],
        count: int,
        *,
        concurrency: int = 4,
        payment_methods: tuple[str, ...] = ("pm_card_visa",),
        per_second: float | None = None,
        seed: int = 15,
        timeout: float = 20,
    ):
        self._base_url = base_url if callable(base_url) else (lambda: base_url)
        self.skus = skus
        self.count = count
        self.concurrency = concurrency
        self.payment_methods = payment_methods  # each order pays with one of these, drawn at random
        self.timeout = timeout
        self.per_second = per_second  # the pace of new orders over all threads; None: as fast as answered
        self.random = random.Random(seed)
        self.answers: Counter[int] = Counter()
        self.in_flight = 0  # requests sent and not answered yet
        self.placed: list[str] = []
        self.given_up = 0  # orders the shopper stopped retrying: never accepted, never charged
        self.errors: list[str] = []  # bodies of 5xx answers, to show what broke
        self.error_types: Counter[str] = Counter()  # every 5xx answer, by status and content type
        self._next = 0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.placing_done = threading.Event()

    def start(self) -> "Shoppers":
        self._started = time.monotonic()
        self._threads = [threading.Thread(target=self._shop, daemon=True) for _ in range(self.concurrency)]
        for thread in self._threads:
            thread.start()
        return self

    def wait_for_placed(self, how_many: int, timeout: float = 120) -> None:
        """Wait until at least `how_many` orders were accepted (a point to break something at)."""
        deadline = time.monotonic() + timeout
        while len(self.placed) < how_many:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(self.placed)} of {how_many} orders accepted within {timeout}s")
            if not any(thread.is_alive() for thread in self._threads):
                return
            time.sleep(0.05)

    def join(self, timeout: float = SHOPPER_PATIENCE_SECONDS + 60) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        assert not any(thread.is_alive() for thread in self._threads), "shoppers still placing orders"
        self.placing_done.set()

    def _take(self) -> tuple[int, float, list[tuple[str, int]], str] | None:
        with self._lock:
            if self._next >= self.count:
                return None
            self._next += 1
            due = self._started + (self._next - 1) / self.per_second if self.per_second else 0
            lines = [
                (sku, 1) for sku in self.random.sample(self.skus, k=self.random.randint(1, min(2, len(self.skus))))
            ]
            return self._next, due, lines, self.random.choice(self.payment_methods)

    def _shop(self) -> None:
        session = requests.Session()
        while (job := self._take()) is not None:
            number, due, lines, payment_method = job
            time.sleep(max(0.0, due - time.monotonic()))
            self._place(session, number, lines, payment_method)

    def _place(self, session: requests.Session, number: int, lines: list[tuple[str, int]], payment_method: str) -> None:
        key = str(uuid.uuid4())
        give_up_at = time.monotonic() + SHOPPER_PATIENCE_SECONDS
        while True:
            with self._lock:
                self.in_flight += 1
            try:
                response = session.post(
                    f"{self._base_url()}/api/orders/",
                    json={
                        "email": f"shopper{number}@example.com",
                        "lines": [{"sku": sku, "quantity": quantity} for sku, quantity in lines],
                        "payment_method": payment_method,
                    },
                    headers={"Idempotency-Key": key},
                    timeout=self.timeout,
                )
                status = response.status_code
            except requests.RequestException:
                status, response = CONNECTION_FAILED, None
                session = requests.Session()  # the connection is gone; a page would open a new one
            with self._lock:
                self.in_flight -= 1
                self.answers[status] += 1
                if status >= 500 and response is not None:
                    self.error_types[f"{status} {response.headers.get('Content-Type')}"] += 1
                    if len(self.errors) < 5:
                        self.errors.append(f"{status} {response.headers.get('Content-Type')}: {response.text[:300]}")
            if status == 202:
                with self._lock:
                    self.placed.append(response.json()["reference"])
                return
            if status not in (CONNECTION_FAILED, 502, 503, 504) or time.monotonic() > give_up_at:
                with self._lock:
                    self.given_up += 1
                return
            retry_after = response.headers.get("Retry-After", "") if response is not None else ""
            time.sleep(min(float(retry_after), 2.0) if retry_after.isdigit() else 0.5)


@dataclass
class Settled:
    """Where the accepted orders ended: by reference, the final state or the last state seen."""

    states: dict[str, str] = field(default_factory=dict)
    final: set[str] = field(default_factory=set)
    missing: set[str] = field(default_factory=set)  # a 202 pointing at no order: lost
    ended_at: float = 0.0  # time.monotonic() when every order was final (or the deadline passed)


def settle(base_url: str, references: list[str], *, timeout: float) -> Settled:
    """Poll each accepted order's status URL until all are final or `timeout` passes."""
    settled = Settled()
    started = time.monotonic()
    waiting = list(dict.fromkeys(references))
    session = requests.Session()
    while waiting:
        still = []
        for reference in waiting:
            try:
                response = session.get(f"{base_url}/api/orders/{reference}/", timeout=10)
            except requests.RequestException:
                still.append(reference)
                continue
            if response.status_code == 404:
                settled.missing.add(reference)
                continue
            if response.status_code != 200:
                still.append(reference)
                continue
            body = response.json()
            settled.states[reference] = body["state"]
            if body["is_final"]:
                settled.final.add(reference)
            else:
                still.append(reference)
        waiting = still
        if waiting and time.monotonic() - started > timeout:
            break
        if waiting:
            time.sleep(0.5)
    settled.ended_at = time.monotonic()
    return settled


def audit_books(env: dict[str, str]) -> dict:
    """The product's own audit of every order (`manage.py audit_invariants --all`), its JSON report."""
    done = subprocess.run(
        [PYTHON, "manage.py", "audit_invariants", "--all"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
    )
    start = done.stdout.find("{")
    assert done.returncode in (0, 1) and start >= 0, f"the audit did not run:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout[start:])


def duplicated_emails(messages: list[EmailMessage]) -> int:
    """Emails delivered more than once: the same order and kind (one Message-ID) seen again."""
    seen = Counter(message["Message-ID"] for message in messages)
    return sum(times - 1 for times in seen.values() if times > 1)


# The audit's checks whose findings are an effect taken twice (money, an email).
DUPLICATE_CHECKS = {
    "every completed order has one captured payment and one receipt",
    "at most one confirmation email per order",
}


@dataclass
class FaultFigures:
    """One scenario's outcome, as the CI log prints it."""

    scenario: str
    orders: int  # accepted (202)
    given_up: int  # shoppers who never got an answer they could act on
    final: int
    lost: int
    stuck: int
    duplicated: int
    violations: int
    server_errors: dict[int, int]
    recovered_seconds: float
    recovery_budget: float
    states: dict[str, int]
    audit_findings: list[str]
    error_samples: list[str]
    server_error_types: dict[str, int]  # "503 application/json": how many

    def line(self) -> str:
        errors = ", ".join(f"{code}: {n}" for code, n in sorted(self.server_errors.items())) or "none"
        states = ", ".join(f"{state} {n}" for state, n in sorted(self.states.items()))
        return (
            f"{self.scenario}: orders {self.orders}, final {self.final}, lost {self.lost}, stuck {self.stuck}, "
            f"duplicated {self.duplicated}, violations {self.violations}, 5xx {{{errors}}}, "
            f"given up {self.given_up}, all final {self.recovered_seconds:.1f} s after the fault "
            f"(budget {self.recovery_budget:.0f} s); {states}"
        )

    def assert_held(self, *, allowed_server_errors: frozenset[int] = frozenset()) -> None:
        """Nothing lost, stuck or doubled, the audit clean, no 5xx but those allowed (503 while
        the database is away), each of those with a JSON body a shop page can act on, every
        order final within the budget."""
        unexpected = {code: n for code, n in self.server_errors.items() if code not in allowed_server_errors}
        not_json = {kind: n for kind, n in self.server_error_types.items() if not kind.endswith(" application/json")}
        problems = [
            f"{self.lost} lost" if self.lost else "",
            f"{self.stuck} stuck" if self.stuck else "",
            f"{self.duplicated} duplicated" if self.duplicated else "",
            f"{self.violations} violations: {self.audit_findings}" if self.violations else "",
            f"unexpected 5xx {unexpected}: {self.error_samples}" if unexpected else "",
            f"5xx without a JSON body {not_json}: {self.error_samples}" if not_json else "",
            "no order was accepted" if not self.orders else "",
        ]
        problems = [p for p in problems if p]
        assert not problems, f"{self.scenario}: " + "; ".join(problems)


def figures_of(
    scenario: str,
    shoppers: Shoppers,
    shop: Shop,
    *,
    recovery_budget: float,
    fault_over_at: float | None = None,
    base_url: str = "",
    emails: Callable[[], list[EmailMessage]] | None = None,
) -> FaultFigures:
    """Settle the accepted orders (waiting up to `recovery_budget` from `fault_over_at`, a
    `time.monotonic()`; by default now) through `base_url` (the shop's own by default), audit
    the shop's books, count. The audit reads every order of the shop's database, whichever
    it is: any beyond those accepted were placed twice (a retry that did not find its first
    attempt's order). `emails` are those delivered (the shop's email files by default)."""
    fault_over_at = time.monotonic() if fault_over_at is None else fault_over_at
    timeout = max(1.0, fault_over_at + recovery_budget - time.monotonic())
    settled = settle(base_url or shop.url, shoppers.placed, timeout=timeout)
    report = audit_books(shop.env())
    findings = [f"{c['name']}: {c['examples'][:3]}" for c in report["checks"] if c["violations"]]
    delivered = (emails or shop.emails)()
    doubled_by_audit = sum(c["violations"] for c in report["checks"] if c["name"] in DUPLICATE_CHECKS)
    accepted = set(shoppers.placed)
    placed_twice = max(0, report["orders_read"] - len(accepted))
    return FaultFigures(
        scenario=scenario,
        orders=len(accepted),
        given_up=shoppers.given_up,
        final=len(settled.final),
        lost=len(settled.missing),
        stuck=len(accepted - settled.final - settled.missing),
        duplicated=duplicated_emails(delivered) + doubled_by_audit + placed_twice,
        violations=report["violations"],
        server_errors={code: n for code, n in shoppers.answers.items() if code >= 500},
        recovered_seconds=settled.ended_at - fault_over_at,
        recovery_budget=recovery_budget,
        states=dict(Counter(settled.states.values())),
        audit_findings=findings,
        error_samples=shoppers.errors,
        server_error_types=dict(shoppers.error_types),
    )


@pytest.fixture
def report_fault(request) -> Callable[[FaultFigures], None]:
    """Print a scenario's figures and keep them for the run's summary."""

    def report(figures: FaultFigures) -> None:
        print(f"FAULT {figures.line()}")
        request.node.user_properties.append(("fault_figures", figures.line()))

    return report


def pytest_terminal_summary(terminalreporter) -> None:
    lines = [
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        for name, value in getattr(report, "user_properties", ())
        if name == "fault_figures"
    ]
    if lines:
        terminalreporter.section("fault figures")
        for line in lines:
            terminalreporter.write_line(line)


def break_receipt_storage(settings) -> Path:
    """Put a plain file where the receipts' folder goes: every store fails until it is removed."""
    folder = Path(settings.STORAGES["receipts"]["OPTIONS"]["location"])
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_text("not a folder")
    return folder


def reached_at(base_url: str, references: list[str], state: str) -> tuple[list[float], list[float]]:
    """When each order was placed, and when it first entered `state` (orders that never did
    are left out), by what its status URL shows: POSIX seconds on the shop's clock, which is
    this machine's."""
    session = requests.Session()
    placed, entered = [], []
    for reference in references:
        body = session.get(f"{base_url}/api/orders/{reference}/", timeout=30).json()
        placed.append(datetime.fromisoformat(body["created_at"]).timestamp())
        into = [event["at"] for event in body["history"] if event["to_state"] == state]
        if into:
            entered.append(datetime.fromisoformat(min(into)).timestamp())
    return placed, entered


@dataclass(frozen=True)
class Window:
    """A stretch of the run, in POSIX seconds (the clock the shop stamps its history with)."""

    start: float
    end: float

    def rate(self, times: list[float]) -> float:
        """How many of `times` fall in the window, per second."""
        return sum(1 for t in times if self.start <= t < self.end) / (self.end - self.start)


@dataclass(frozen=True)
class SalesRates:
    """The pace of sales (orders reaching PAID, which every further state follows) in two
    equal windows of one run, everything up and then the outage, beside the pace orders
    were placed at in each (the offered load, the same in both)."""

    placed_baseline: float
    placed_outage: float
    baseline: float
    outage: float

    @property
    def ratio(self) -> float:
        return self.outage / self.baseline if self.baseline else 0.0

    def words(self) -> str:
        return (
            f"paid {self.baseline:.2f}/s with everything up, {self.outage:.2f}/s during the outage "
            f"({self.ratio:.0%}); placed {self.placed_baseline:.2f}/s, {self.placed_outage:.2f}/s"
        )


def sales_rates(base_url: str, references: list[str], *, baseline: Window, outage: Window) -> SalesRates:
    """The rates of orders placed and reaching PAID in each window (from the orders' histories)."""
    placed, paid = reached_at(base_url, references, "PAID")
    return SalesRates(baseline.rate(placed), outage.rate(placed), baseline.rate(paid), outage.rate(paid))
