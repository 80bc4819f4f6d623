// The shop's REST API, as the page uses it. Every call either answers or throws one of two
// errors the page can put in words: the network failed, or the server said no.
import type { FieldErrors, Order, PlaceOrderBody, Product, ShopConfig } from "./types";

/** The request never got an answer: offline, the connection dropped, the server unreachable. */
export class NetworkError extends Error {
  constructor(cause?: unknown) {
    super("network error", { cause });
    this.name = "NetworkError";
  }
}

/** The server answered with an error status the caller did not expect. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown = null,
  ) {
    super(`HTTP ${status}`);
    this.name = "HttpError";
  }
}

async function send(url: string, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (error) {
    throw new NetworkError(error);
  }
}

async function json<T>(response: Response): Promise<T> {
  try {
    return (await response.json()) as T;
  } catch (error) {
    throw new NetworkError(error); // a body cut off mid-way
  }
}

async function getJson<T>(url: string): Promise<T> {
  const response = await send(url, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new HttpError(response.status);
  return json<T>(response);
}

export const listProducts = () => getJson<Product[]>("/api/products/");
export const getShopConfig = () => getJson<ShopConfig>("/api/shop-config");

export type Placement =
  | { kind: "placed"; reference: string; replayed: boolean }
  | { kind: "refused"; status: number; errors: FieldErrors };

/** POST the order. 4xx answers are the shopper's to fix and come back as `refused`. */
export async function placeOrder(body: PlaceOrderBody, idempotencyKey: string): Promise<Placement> {
  const response = await send("/api/orders/", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json", "Idempotency-Key": idempotencyKey },
    body: JSON.stringify(body),
  });
  if (response.status === 202) {
    const placed = await json<{ reference: string }>(response);
    return { kind: "placed", reference: placed.reference, replayed: response.headers.has("Idempotent-Replayed") };
  }
  if (response.status >= 400 && response.status < 500) {
    const errors = await response.json().catch(() => ({}));
    // A 429 is the rate limits' ("wait a few seconds") unless it names the order's lines:
    // a shopper whose unpaid order lapsed is told how long to wait.
    if (response.status !== 429 || (errors && typeof errors === "object" && "lines" in errors)) {
      return { kind: "refused", status: response.status, errors: errors as FieldErrors };
    }
  }
  throw new HttpError(response.status);
}

export type OrderPoll = { kind: "changed"; order: Order; etag: string | null } | { kind: "unchanged" };

/** The order, or `unchanged` when the server's ETag still matches the one we hold (304). */
export async function fetchOrder(reference: string, etag: string | null = null): Promise<OrderPoll> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (etag) headers["If-None-Match"] = etag;
  // no-store: the browser's cache must not answer for the server, nor turn our 304 into a 200.
  const response = await send(`/api/orders/${encodeURIComponent(reference)}/`, { headers, cache: "no-store" });
  if (response.status === 304) return { kind: "unchanged" };
  if (!response.ok) throw new HttpError(response.status);
  return { kind: "changed", order: await json<Order>(response), etag: response.headers.get("ETag") };
}

/** A stable address that redirects to a freshly signed receipt link on every click. */
export const receiptHref = (reference: string) => `/api/orders/${encodeURIComponent(reference)}/receipt`;

export const orderPagePath = (reference: string) => `/orders/${encodeURIComponent(reference)}`;
