// One idempotency key per checkout attempt. A retry of the same request (a double click, a
// retry after a network error) carries the same key, so the API makes one order; a changed
// request, or a new attempt after an order was placed, gets a new key.
import type { PlaceOrderBody } from "./types";

const fingerprint = (body: PlaceOrderBody) =>
  JSON.stringify({ ...body, email: body.email.trim().toLowerCase() });

export class CheckoutAttempt {
  private key: string | null = null;
  private body = "";

  constructor(private readonly newKey: () => string = () => crypto.randomUUID()) {}

  /** The key to send with this request: the pending attempt's while the request is the same. */
  keyFor(body: PlaceOrderBody): string {
    const print = fingerprint(body);
    if (this.key === null || print !== this.body) {
      this.key = this.newKey();
      this.body = print;
    }
    return this.key;
  }

  /** The API accepted the order under the current key: the next checkout is a new attempt. */
  settle(): void {
    this.key = null;
    this.body = "";
  }

  get pendingKey(): string | null {
    return this.key;
  }
}
