// The shop's REST API, as the page uses it.

export async function listProducts() {
  const response = await fetch("/api/products/");
  if (!response.ok) throw new Error(`Could not load products (${response.status})`);
  return response.json();
}

export async function placeOrder({ email, lines, paymentMethod, idempotencyKey }) {
  const response = await fetch("/api/orders/", {
    method: "POST",
    headers: { "Content-Type": "application/json", "Idempotency-Key": idempotencyKey },
    body: JSON.stringify({ email, lines, payment_method: paymentMethod }),
  });
  const body = await response.json().catch(() => ({}));
  return { ok: response.ok, status: response.status, body };
}

export async function getOrder(reference) {
  const response = await fetch(`/api/orders/${encodeURIComponent(reference)}/`);
  if (!response.ok) throw new Error(`Could not load order (${response.status})`);
  return response.json();
}
