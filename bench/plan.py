"""How much of everything one run does: the full plan and the quick one."""

import os
from dataclasses import dataclass, field


def quick_from_env() -> bool:
    """BENCH_QUICK set (and not 0): a few seconds per scenario, to prove the harness works."""
    return os.environ.get("BENCH_QUICK", "") not in ("", "0")


@dataclass
class Plan:
    """How much of everything one run does."""

    quick: bool
    brokers: list[str]
    repeats: int = 3
    pgbench_clients: list[int] = field(default_factory=lambda: [8, 32])
    pgbench_seconds: int = 10
    concurrencies: list[int] = field(default_factory=lambda: [8, 32, 128])
    accept_seconds: int = 10
    receipt_renders: int = 30
    idle_orders: int = 7
    saturate_seconds: int = 10
    e2e_seconds: int = 20
    sustained_fraction: float = 0.6
    hot_stock: int = 1000
    hot_seconds: float = 10
    soak_orders: int = 10_000
    monitoring_orders: int = 1_000_000  # history under the monitoring page
    backoffice_seconds: float = 20  # shoppers' run beside the slow admin requests (each routing)
    web_workers: int = int(os.environ.get("BENCH_WEB_WORKERS", "3"))
    web_threads: int = int(os.environ.get("BENCH_WEB_THREADS", "1"))
    cluster_workers: int = int(os.environ.get("BENCH_CLUSTER_WORKERS", "2"))
    settle_timeout: float = 900
    # Scenario 8: offered to one app host, then split between two; more than one host takes.
    scale_out_rate: float = float(os.environ.get("BENCH_SCALE_OUT_RATE", "30"))
    scale_out_seconds: float = 10

    @classmethod
    def for_mode(cls, quick: bool, brokers: list[str]) -> "Plan":
        """The full plan (with the BENCH_* overrides), or the quick one that proves the harness."""
        if not quick:
            plan = cls(quick=False, brokers=brokers)
            plan.repeats = int(os.environ.get("BENCH_REPEATS", plan.repeats))
            plan.soak_orders = int(os.environ.get("BENCH_SOAK_ORDERS", plan.soak_orders))
            plan.monitoring_orders = int(os.environ.get("BENCH_MONITORING_ORDERS", plan.monitoring_orders))
            return plan
        return cls(
            quick=True,
            brokers=brokers,
            repeats=1,
            pgbench_clients=[8],
            pgbench_seconds=2,
            accept_seconds=2,
            receipt_renders=3,
            idle_orders=2,
            saturate_seconds=2,
            e2e_seconds=3,
            hot_stock=10,
            hot_seconds=2,
            soak_orders=50,
            monitoring_orders=10_000,
            backoffice_seconds=5,
            settle_timeout=120,
            scale_out_rate=10,
            scale_out_seconds=2,
        )
