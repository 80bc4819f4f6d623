"""Scenario 8: orders while a partner's webhook receiver hangs, against no webhooks at all.

A receiver that accepts connections and never answers is the worst a partner can do: every
delivery waits for WEBHOOK_READ_TIMEOUT_SECONDS. The outbox is written with each fact and
delivered by the cluster with per-endpoint backoff (docs/webhooks.md), so the accept rate
and the completed rate should stay within 10% of a run without webhooks. Runs alternate,
`repeats` times each, so a drift of the shared machine falls on both; each side's median counts.
"""

import base64
import json
import secrets
import socket
import threading

from bench.log import log
from bench.scenarios import ScenarioContext, measure_sustained_e2e, pick_median_run

EVENTS = ["order.placed", "order.paid", "order.completed"]


class HangingReceiver:
    """Accepts every connection, reads nothing, answers nothing, until closed."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/hooks"
        self.held: list[socket.socket] = []
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.held.append(connection)

    def close(self) -> None:
        self.closed.set()
        self.server.close()
        for connection in self.held:
            connection.close()


def _subscribe(ctx: ScenarioContext, url: str) -> None:
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    ctx.db.run(
        "INSERT INTO webhooks_webhookendpoint (url, description, secret, event_types, active, disabled_reason, "
        "consecutive_failures, created_at) VALUES (%s, 'bench: hangs', %s, %s, true, '', 0, now())",
        url,
        secret,
        json.dumps(EVENTS),
    )


def _forget_webhooks(ctx: ScenarioContext) -> None:
    ctx.db.run(
        "TRUNCATE webhooks_webhookattempt, webhooks_webhookdelivery, webhooks_webhookevent, "
        "webhooks_webhookendpoint RESTART IDENTITY CASCADE"
    )


def measure_webhooks_hanging(ctx: ScenarioContext, rate: float) -> dict:
    """Accepted/s and completed/s at `rate` with no endpoint, and with one that hangs."""
    from bench.scenarios import _restart_stack

    ctx.stack.env.update(WEBHOOK_ALLOW_PRIVATE_ADDRESSES="true")  # the receiver is on loopback
    _restart_stack(ctx, metrics=True)
    receiver = HangingReceiver()
    runs: dict[str, list[dict]] = {"without": [], "hanging": []}
    try:
        for repeat in range(ctx.plan.repeats):
            for mode in ("without", "hanging") if repeat % 2 == 0 else ("hanging", "without"):
                _forget_webhooks(ctx)
                if mode == "hanging":
                    _subscribe(ctx, receiver.url)
                    # Each process reads the subscriptions once per WEBHOOK_SUBSCRIPTIONS_SECONDS.
                    _restart_stack(ctx, metrics=True)
                run = measure_sustained_e2e(ctx, rate, ctx.plan.e2e_seconds)
                run["accepted_per_s"] = run["load"]["accepted_per_s"]
                if mode == "hanging":
                    (run["events_written"],) = ctx.db.one("SELECT count(*) FROM webhooks_webhookevent")
                runs[mode].append(run)
    finally:
        _forget_webhooks(ctx)
        receiver.close()
    without = pick_median_run(runs["without"], "completed_per_s")
    hanging = pick_median_run(runs["hanging"], "completed_per_s")
    accepted = [pick_median_run(runs[m], "accepted_per_s")["accepted_per_s"] for m in ("without", "hanging")]
    result = {
        "offered_per_s": round(rate, 2),
        "accepted_per_s": {"without": accepted[0], "hanging": accepted[1]},
        "completed_per_s": {"without": without["completed_per_s"], "hanging": hanging["completed_per_s"]},
        "accepted_ratio": round(accepted[1] / accepted[0], 3) if accepted[0] else None,
        "completed_ratio": round(hanging["completed_per_s"] / without["completed_per_s"], 3)
        if without["completed_per_s"]
        else None,
        "p50_ms": {"without": without["p50_ms"], "hanging": hanging["p50_ms"]},
        "events_written": hanging.get("events_written"),
    }
    log(
        f"[{ctx.broker}] webhooks, receiver hanging vs none at {rate:.1f}/s: accepted "
        f"{accepted[1]} vs {accepted[0]}/s (x{result['accepted_ratio']}), completed "
        f"{hanging['completed_per_s']} vs {without['completed_per_s']}/s (x{result['completed_ratio']})"
    )
    return result
