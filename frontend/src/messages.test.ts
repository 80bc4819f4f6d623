import { describe, expect, it } from "vitest";
import { HttpError, NetworkError } from "./api";
import { describeError, failureExplanation, orderHeadline, placementProblems } from "./messages";
import { orderProgress } from "./progress";
import type { Order } from "./types";

const order = (fields: Partial<Order>) =>
  ({ reference: "ord_1", state: "PENDING", is_final: false, payment_action: null, failure_code: "", failure_reason: "", lines: [], history: [], ...fields }) as Order;
const line = (name: string, quantity: number, units_left: number | null) =>
  ({ sku: name.toUpperCase(), name, quantity, unit_price: "1.00", line_total: "1.00", units_left });

describe("errors in plain words", () => {
  it("names what happened to the network or the server, never a status code", () => {
    expect(describeError(new NetworkError(), true)).toMatch(/couldn't reach the shop.*not be charged twice/);
    expect(describeError(new NetworkError())).toMatch(/^Connection lost/);
    expect(describeError(new HttpError(429))).toMatch(/wait a few seconds/);
    expect(describeError(new HttpError(500))).toBe("Something went wrong on our side. Please try again in a moment.");
  });

  it("maps the API's field errors onto the form and the cart's lines", () => {
    const problems = placementProblems(
      400,
      { email: ["Enter a valid email address."], lines: { "1": { sku: ["Unknown product 'OLD'."] } }, payment_method: ["Unknown payment method 'pm_x'."] },
      ["MUG", "OLD"],
    );
    expect(problems.email).toMatch(/valid email address/);
    expect(problems.payment).toBe("Unknown payment method 'pm_x'.");
    expect(problems.bySku).toEqual({ OLD: "No longer sold. Remove it to place your order." });
    expect(placementProblems(400, { lines: ["This list may not be empty."] }, []).general).toEqual(["Your cart is empty."]);
    expect(JSON.stringify(placementProblems(400, { lines: ["x"] }, []))).not.toMatch(/lines:/);
  });

  it("shows the shop's limits on unpaid holds on the line, or as the wait, not as a used checkout", () => {
    const share = "You can hold at most 10 of MUG until your payment goes through: lower the quantity.";
    expect(placementProblems(409, { lines: { "0": { quantity: [share] } } }, ["MUG"]).bySku).toEqual({ MUG: share });
    const wait = "Your earlier order was not paid in time, so its items went back on sale. You can place a new order in 2 minutes.";
    expect(placementProblems(429, { lines: [wait] }, ["MUG"]).general).toEqual([wait]);
    expect(placementProblems(409, { "Idempotency-Key": ["used"] }, ["MUG"]).general[0]).toMatch(/already used/);
  });

  it("tells a decline, an authentication failure and a stock-out apart, with what it means for the money", () => {
    expect(failureExplanation(order({ state: "PAYMENT_FAILED", failure_reason: "Your card was declined." }))).toEqual({
      reason: "Your card was declined.",
      shortLines: [],
      money: "No payment was taken.",
    });
    const rejected = order({
      state: "REJECTED",
      failure_code: "out_of_stock",
      failure_reason: "Not enough stock: MUG: 2 requested, 1 available.",
      lines: [line("Mug", 2, 1), line("Tee", 1, 0), line("Cap", 1, null)],
    });
    expect(failureExplanation(rejected)).toEqual({
      reason: "These items ran out before we could reserve them:",
      shortLines: ["Mug: you asked for 2, only 1 left.", "Tee: sold out (you asked for 1)."],
      money: "No payment was taken.",
    });
    // A reason a manager typed without a full stop still ends before the money's sentence.
    expect(failureExplanation(order({ state: "CANCELLED", failure_reason: "Customer asked to cancel" })).reason).toBe(
      "Customer asked to cancel.",
    );
    expect(orderHeadline(order({ state: "VALIDATED", payment_action: { type: "authenticate", client_secret: "s" } }))).toBe(
      "Waiting for you to confirm the payment with your bank",
    );
    const waiting = "Your payment is waiting to go through; there is nothing you need to do.";
    expect(orderHeadline(order({ state: "VALIDATED", waiting }))).toBe(waiting);
  });
});

describe("the order's progress", () => {
  it("shows the steps done, the one running and the one that failed", () => {
    const paid = orderProgress(order({ state: "PAID" })).map((s) => s.status);
    expect(paid).toEqual(["done", "done", "current", "todo", "todo"]);
    const declined = orderProgress(order({ state: "PAYMENT_FAILED", is_final: true })).map((s) => s.status);
    expect(declined).toEqual(["done", "failed", "todo", "todo", "todo"]);
    const waiting = orderProgress(order({ state: "VALIDATED", payment_action: { type: "authenticate", client_secret: "s" } }));
    expect(waiting[1]).toMatchObject({ step: "process_payment", status: "current", note: "Waiting for you to confirm with your bank" });
  });
});
