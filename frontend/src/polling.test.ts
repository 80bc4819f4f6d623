import { describe, expect, it } from "vitest";
import { HttpError, NetworkError, type OrderPoll } from "./api";
import { pollOrder, retryDelay } from "./polling";
import type { Order } from "./types";

const order = (state: Order["state"], is_final = false) => ({ reference: "ord_1", state, is_final }) as Order;

/** A clock the test moves by hand: scheduled runs wait until `runNext()`. */
function manualClock() {
  const queue: { run: () => void; ms: number }[] = [];
  return {
    delays: [] as number[],
    schedule(run: () => void, ms: number) {
      this.delays.push(ms);
      queue.push({ run, ms });
      return queue.length;
    },
    async runNext() {
      const next = queue.shift();
      next?.run();
      await new Promise((resolve) => setTimeout(resolve, 0));
    },
  };
}

describe("following an order", () => {
  it("backs off after failures, 1 s doubling to at most 15 s", () => {
    expect([1, 2, 3, 4, 5, 6, 10].map(retryDelay)).toEqual([1000, 2000, 4000, 8000, 15000, 15000, 15000]);
  });

  it("sends back the ETag, keeps polling through errors, says when it recovered and stops at the end", async () => {
    const answers: (OrderPoll | Error)[] = [
      { kind: "changed", order: order("VALIDATED"), etag: 'W/"a"' },
      { kind: "unchanged" },
      new NetworkError(),
      new HttpError(503),
      { kind: "changed", order: order("COMPLETED", true), etag: 'W/"b"' },
    ];
    const sentEtags: (string | null)[] = [];
    const seen: string[] = [];
    const clock = manualClock();
    pollOrder("ord_1", {
      fetchOrder: async (_reference, etag) => {
        sentEtags.push(etag);
        const answer = answers.shift()!;
        if (answer instanceof Error) throw answer;
        return answer;
      },
      onOrder: (current) => seen.push(current.state),
      onTrouble: (_error, retryInMs) => seen.push(`trouble, retry in ${retryInMs}`),
      onRecovered: () => seen.push("recovered"),
      onMissing: () => seen.push("missing"),
      schedule: (run, ms) => clock.schedule(run, ms),
      cancel: () => {},
      intervalMs: 500,
    });
    for (let i = 0; i < 6; i++) await clock.runNext();

    expect(sentEtags).toEqual([null, 'W/"a"', 'W/"a"', 'W/"a"', 'W/"a"']);
    expect(seen).toEqual(["VALIDATED", "trouble, retry in 1000", "trouble, retry in 2000", "recovered", "COMPLETED"]);
    expect(clock.delays).toEqual([0, 500, 500, 1000, 2000]); // nothing scheduled after the final state
  });

  it("stops and says so when the order does not exist", async () => {
    const seen: string[] = [];
    const clock = manualClock();
    pollOrder("ord_nobody", {
      fetchOrder: async () => {
        throw new HttpError(404);
      },
      onOrder: () => seen.push("order"),
      onTrouble: () => seen.push("trouble"),
      onRecovered: () => {},
      onMissing: () => seen.push("missing"),
      schedule: (run, ms) => clock.schedule(run, ms),
      cancel: () => {},
    });
    await clock.runNext();
    expect(seen).toEqual(["missing"]);
    expect(clock.delays).toEqual([0]);
  });
});
