// Following an order: a poll every POLL_INTERVAL_MS with the last ETag (the server answers
// 304 while nothing changed), backing off after errors and never giving up for good; the
// first success after trouble says so. Stops once the order is final.
import { HttpError, type OrderPoll } from "./api";
import type { Order } from "./types";

export const POLL_INTERVAL_MS = 500;
export const MAX_RETRY_DELAY_MS = 15_000;

/** How long to wait after the n-th failure in a row: 1 s, 2 s, 4 s ... at most 15 s. */
export function retryDelay(failures: number): number {
  return Math.min(1000 * 2 ** Math.max(failures - 1, 0), MAX_RETRY_DELAY_MS);
}

export interface PollHandlers {
  fetchOrder: (reference: string, etag: string | null) => Promise<OrderPoll>;
  onOrder: (order: Order) => void;
  onTrouble: (error: unknown, retryInMs: number) => void;
  onRecovered: () => void;
  onMissing: () => void;
  schedule?: (run: () => void, ms: number) => unknown;
  cancel?: (handle: unknown) => void;
  intervalMs?: number;
}

export interface OrderPoller {
  stop: () => void;
  /** Poll at once (the network came back, Stripe.js finished, the shopper asked). */
  pollNow: () => void;
}

export function pollOrder(reference: string, handlers: PollHandlers): OrderPoller {
  const schedule = handlers.schedule ?? ((run, ms) => setTimeout(run, ms));
  const cancel = handlers.cancel ?? ((handle) => clearTimeout(handle as ReturnType<typeof setTimeout>));
  const interval = handlers.intervalMs ?? POLL_INTERVAL_MS;
  let etag: string | null = null;
  let failures = 0;
  let stopped = false;
  let inFlight = false;
  let timer: unknown = null;

  const next = (ms: number) => {
    if (stopped) return;
    timer = schedule(tick, ms);
  };

  async function tick(): Promise<void> {
    timer = null;
    if (stopped || inFlight) return;
    inFlight = true;
    try {
      const poll = await handlers.fetchOrder(reference, etag);
      if (stopped) return;
      if (failures > 0) handlers.onRecovered();
      failures = 0;
      if (poll.kind === "changed") {
        etag = poll.etag;
        handlers.onOrder(poll.order);
        if (poll.order.is_final) {
          stopped = true;
          return;
        }
      }
      next(interval);
    } catch (error) {
      if (stopped) return;
      if (error instanceof HttpError && error.status === 404) {
        stopped = true;
        handlers.onMissing();
        return;
      }
      failures += 1;
      const delay = retryDelay(failures);
      handlers.onTrouble(error, delay);
      next(delay);
    } finally {
      inFlight = false;
    }
  }

  next(0);
  return {
    stop() {
      stopped = true;
      if (timer !== null) cancel(timer);
    },
    pollNow() {
      if (stopped || inFlight) return;
      if (timer !== null) cancel(timer);
      next(0);
    },
  };
}
