// What the shopper reads: errors and order states in plain words, never field names or
// internal step labels.
import { HttpError, NetworkError } from "./api";
import type { LineProblem } from "./cart";
import { toCents } from "./money";
import type { FieldErrors, Order, OrderStateName } from "./types";

export const NETWORK_DOWN_PLACING =
  "We couldn't reach the shop, so your order may not have been sent. Check your connection and press the button again: you will not be charged twice.";
export const NETWORK_DOWN_FOLLOWING = "Connection lost. Your order goes on; we'll show its progress as soon as we're back online.";
export const SERVER_TROUBLE = "Something went wrong on our side. Please try again in a moment.";
export const TOO_MANY = "We're getting a lot of requests right now. Please wait a few seconds and try again.";
export const CATALOG_DOWN = "We couldn't load the products. Check your connection; we'll keep trying.";

/** An error from a call to the shop, in words, whatever threw it. */
export function describeError(error: unknown, whilePlacing = false): string {
  if (error instanceof NetworkError) return whilePlacing ? NETWORK_DOWN_PLACING : NETWORK_DOWN_FOLLOWING;
  if (error instanceof HttpError && error.status === 429) return TOO_MANY;
  return SERVER_TROUBLE;
}

export function lineProblemText(problem: LineProblem): string {
  switch (problem.kind) {
    case "sold_out":
      return "Sold out. Remove it to place your order.";
    case "short":
      return `Only ${problem.available} left.`;
    case "unavailable":
      return "No longer sold. Remove it to place your order.";
    case "other_currency":
      return `Priced in ${problem.currency}, and your cart is paid in ${problem.cartCurrency}. Remove it to place your order, then order it on its own.`;
  }
}

export interface PlacementProblems {
  email?: string;
  payment?: string;
  general: string[];
  bySku: Record<string, string>;
}

const messagesOf = (errors: FieldErrors | undefined): string[] =>
  !errors ? [] : Array.isArray(errors) ? errors : Object.values(errors).flatMap(messagesOf);

/** The API's 4xx answer to a placement, mapped onto the form's fields and the cart's lines. */
export function placementProblems(status: number, errors: FieldErrors, skus: string[]): PlacementProblems {
  const problems: PlacementProblems = { general: [], bySku: {} };
  if (status === 409 && !Array.isArray(errors) && "Idempotency-Key" in errors) {
    problems.general.push("This checkout was already used for a different order. Please press the button again.");
    return problems;
  }
  if (Array.isArray(errors)) {
    problems.general.push(SERVER_TROUBLE);
    return problems;
  }
  for (const [field, value] of Object.entries(errors)) {
    if (field === "email") {
      problems.email = "Enter a valid email address, such as name@example.com, for your receipt.";
    } else if (field === "payment_method") {
      problems.payment = messagesOf(value)[0] ?? "Choose a payment method.";
    } else if (field === "lines" && Array.isArray(value)) {
      problems.general.push(value.some((m) => /empty|at least/i.test(m)) ? "Your cart is empty." : value.join(" "));
    } else if (field === "lines") {
      // Errors of single lines come keyed by their position in what we sent.
      for (const [position, lineErrors] of Object.entries(value)) {
        const sku = skus[Number(position)];
        const text = messagesOf(lineErrors).join(" ");
        if (sku) problems.bySku[sku] = /unknown|not for sale/i.test(text) ? "No longer sold. Remove it to place your order." : text;
      }
    } else {
      problems.general.push(SERVER_TROUBLE);
    }
  }
  return problems;
}

export const STATE_WORDS: Record<OrderStateName, string> = {
  PENDING: "Received",
  VALIDATED: "Items reserved, taking payment",
  PAID: "Paid, preparing your order",
  CONFIRMED: "Confirmed, preparing your receipt",
  COMPLETED: "Complete",
  REJECTED: "Not placed: some items ran out",
  PAYMENT_FAILED: "Payment failed",
  FAILED: "We could not complete this order",
  CANCELLED: "Cancelled",
};

/** The one sentence that says where the order stands, as the status region announces it. */
export function orderHeadline(order: Order): string {
  if (order.state === "VALIDATED" && order.payment_action) return "Waiting for you to confirm the payment with your bank";
  if (!order.is_final && order.waiting) return order.waiting;
  if (order.state === "COMPLETED" && toCents(order.amount_refunded ?? "0") > 0) {
    return toCents(order.amount_refunded) >= toCents(order.total) ? "Complete, refunded in full" : "Complete, partly refunded";
  }
  return STATE_WORDS[order.state] ?? order.state;
}

const MONEY_AFTER: Partial<Record<OrderStateName, string>> = {
  REJECTED: "No payment was taken.",
  PAYMENT_FAILED: "No payment was taken.",
  FAILED: "You will not be charged: any amount held or taken is released or refunded.",
  CANCELLED: "You will not be charged: any amount held or taken is released or refunded.",
};

/** A reason typed by a person ("Customer asked to cancel") as a sentence that ends before the next begins. */
export function asSentence(text: string): string {
  const trimmed = text.trim();
  return !trimmed || /[.!?…]$/.test(trimmed) ? trimmed : `${trimmed}.`;
}

export interface FailureExplanation {
  reason: string;
  shortLines: string[]; // for an order refused for stock: each short line, what was asked and what was left
  money: string;
}

/** What went wrong with a failed order, line by line where stock ran out, and what it means for the shopper's money. */
export function failureExplanation(order: Order): FailureExplanation {
  const money = MONEY_AFTER[order.state] ?? "";
  if (order.failure_code === "out_of_stock") {
    const shortLines = order.lines
      .filter((line) => line.units_left !== null && line.units_left !== undefined)
      .map((line) =>
        line.units_left === 0
          ? `${line.name}: sold out (you asked for ${line.quantity}).`
          : `${line.name}: you asked for ${line.quantity}, only ${line.units_left} left.`,
      );
    const reason = shortLines.length
      ? `${shortLines.length === 1 ? "This item" : "These items"} ran out before we could reserve them:`
      : "Some items ran out before we could reserve them.";
    return { reason, shortLines, money };
  }
  return { reason: asSentence(order.failure_reason) || "The order could not be completed.", shortLines: [], money };
}
