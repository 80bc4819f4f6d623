import { useEffect, useMemo, useState } from "react";
import { getOrder, listProducts, placeOrder } from "./api.js";

const PAYMENT_METHODS = [
  ["pm_card_visa", "Visa (succeeds)"],
  ["pm_card_mastercard", "Mastercard (succeeds)"],
  ["pm_card_chargeDeclined", "Card declined"],
  ["pm_card_chargeDeclinedInsufficientFunds", "Insufficient funds"],
];

function flattenErrors(errors, prefix = "") {
  // DRF field errors, possibly nested per line, as "field: message" strings.
  if (Array.isArray(errors)) {
    return errors.flatMap((item, index) =>
      typeof item === "string" ? [`${prefix}${item}`] : flattenErrors(item, `${prefix}line ${index + 1} `),
    );
  }
  if (errors && typeof errors === "object") {
    // Errors of one line come keyed by its position: {"lines": {"0": {"sku": [...]}}}.
    return Object.entries(errors).flatMap(([field, value]) =>
      flattenErrors(value, /^\d+$/.test(field) ? `line ${Number(field) + 1} ` : `${prefix}${field}: `),
    );
  }
  return [];
}

function OrderStatus({ reference }) {
  const [order, setOrder] = useState(null);
  const [error, setError] = useState("");

  useEffect(() => {
    let stopped = false;
    let timer;
    async function poll() {
      try {
        const current = await getOrder(reference);
        if (stopped) return;
        setOrder(current);
        if (!current.is_final) timer = setTimeout(poll, 500);
      } catch (e) {
        if (!stopped) setError(e.message);
      }
    }
    poll();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [reference]);

  if (error) return <p role="alert">{error}</p>;
  if (!order) return <p>Loading order {reference}...</p>;
  return (
    <section aria-label="Your order">
      <h2>
        Order <code>{order.reference}</code>: <span data-testid="order-state">{order.state}</span>
      </h2>
      <p>
        Total {order.total} {order.currency}
      </p>
      {order.failure_reason && <p role="alert">{order.failure_reason}</p>}
      {order.receipt_url && (
        <p>
          <a href={order.receipt_url}>Download your receipt (PDF)</a>
        </p>
      )}
      <ol className="history">
        {order.history.map((event, index) => (
          <li key={index}>
            {event.step} #{event.attempt}: {event.outcome}
            {event.to_state && ` -> ${event.to_state}`}
          </li>
        ))}
      </ol>
    </section>
  );
}

export default function App() {
  const [products, setProducts] = useState([]);
  const [quantities, setQuantities] = useState({});
  const [email, setEmail] = useState("");
  const [paymentMethod, setPaymentMethod] = useState(PAYMENT_METHODS[0][0]);
  const [errors, setErrors] = useState([]);
  const [reference, setReference] = useState("");
  const [submitting, setSubmitting] = useState(false);
  const idempotencyKey = useMemo(() => crypto.randomUUID(), [reference]);

  useEffect(() => {
    listProducts().then(setProducts, (e) => setErrors([e.message]));
  }, [reference]);

  const lines = Object.entries(quantities)
    .filter(([, quantity]) => quantity > 0)
    .map(([sku, quantity]) => ({ sku, quantity }));

  async function submit(event) {
    event.preventDefault();
    setSubmitting(true);
    setErrors([]);
    const result = await placeOrder({ email, lines, paymentMethod, idempotencyKey });
    setSubmitting(false);
    if (result.ok) {
      setReference(result.body.reference);
      setQuantities({});
    } else {
      setErrors(flattenErrors(result.body));
    }
  }

  return (
    <main>
      <h1>Shop</h1>
      <form onSubmit={submit} aria-label="Place an order">
        <table>
          <thead>
            <tr>
              <th>Product</th>
              <th>Price</th>
              <th>Available</th>
              <th>Quantity</th>
            </tr>
          </thead>
          <tbody>
            {products.map((product) => (
              <tr key={product.sku}>
                <td>
                  {product.name} <small>{product.sku}</small>
                </td>
                <td>
                  {product.price} {product.currency}
                </td>
                <td>{product.available}</td>
                <td>
                  <input
                    type="number"
                    min="0"
                    step="1"
                    aria-label={`Quantity of ${product.sku}`}
                    value={quantities[product.sku] ?? ""}
                    onChange={(e) =>
                      setQuantities({ ...quantities, [product.sku]: Number.parseInt(e.target.value, 10) || 0 })
                    }
                  />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        <label>
          Email <input type="email" value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
        <label>
          Payment{" "}
          <select value={paymentMethod} onChange={(e) => setPaymentMethod(e.target.value)}>
            {PAYMENT_METHODS.map(([id, label]) => (
              <option key={id} value={id}>
                {label}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" disabled={submitting}>
          Place order
        </button>
        {errors.length > 0 && (
          <ul role="alert" className="errors">
            {errors.map((message) => (
              <li key={message}>{message}</li>
            ))}
          </ul>
        )}
      </form>
      {reference && <OrderStatus reference={reference} />}
    </main>
  );
}
