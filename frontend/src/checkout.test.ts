import { describe, expect, it } from "vitest";
import { CheckoutAttempt } from "./checkout";

const body = (quantity = 1, email = "shopper@example.com") => ({
  email,
  lines: [{ sku: "MUG", quantity }],
  payment_method: "pm_card_visa",
});

describe("one idempotency key per checkout attempt", () => {
  it("keeps the key across a retry of the same request (a double click, a network error)", () => {
    let n = 0;
    const attempt = new CheckoutAttempt(() => `key-${++n}`);
    expect(attempt.keyFor(body())).toBe("key-1");
    expect(attempt.keyFor(body())).toBe("key-1");
    expect(attempt.keyFor(body(1, " Shopper@Example.com "))).toBe("key-1"); // the same address, as the API reads it
  });

  it("takes a new key for a changed request, and after the order was placed", () => {
    let n = 0;
    const attempt = new CheckoutAttempt(() => `key-${++n}`);
    attempt.keyFor(body());
    expect(attempt.keyFor(body(2))).toBe("key-2");
    attempt.settle();
    expect(attempt.pendingKey).toBeNull();
    expect(attempt.keyFor(body(2))).toBe("key-3");
  });
});
